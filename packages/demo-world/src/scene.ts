// Scene layouts: which objects are where. A layout is the ground truth every question is answered from.
import type { Rng } from './random.js';
import {
  COLOUR_NAMES,
  COLOURS,
  type ColourName,
  type PixelBox,
  type Rgb,
  SHAPES,
  type ShapeName,
  SIZE_RADIUS_FRACTION,
  type SizeName,
  shapeGeometry,
} from './shapes.js';

export const BACKGROUND_KINDS = ['plain', 'gradient', 'noisy'] as const;
export type BackgroundKind = (typeof BACKGROUND_KINDS)[number];

export interface SceneBackground {
  kind: BackgroundKind;
  /** Colour at the start of the gradient (the only colour of plain and noisy backgrounds). */
  from: Rgb;
  /** Colour at the end of the gradient (equal to `from` unless kind is gradient). */
  to: Rgb;
  /** Gradient direction in radians (0 = left to right). */
  angle: number;
  /** Per-pixel uniform noise amplitude in 0-255 units (0 unless kind is noisy). */
  noise: number;
  /** Seed of the noise stream, so a layout alone reproduces its image. */
  noiseSeed: number;
}

export interface SceneObject {
  shape: ShapeName;
  colour: ColourName;
  size: SizeName;
  /** The drawn colour: the named colour with a small jitter. */
  rgb: Rgb;
  /** Centre of the object's box, in pixels. */
  centre: readonly [number, number];
  /** Half-extent in pixels (radius of the circle, outer radius of the star …). */
  radius: number;
  /** Tight box of the drawn shape, in pixels, rounded to 2 decimals. */
  box: PixelBox;
}

export interface SceneLayout {
  /** Image size in pixels (scenes are square). */
  imageSize: number;
  background: SceneBackground;
  /** Objects, no two with the same (shape, colour), boxes at least `MIN_GAP_PX` apart. */
  objects: SceneObject[];
}

export interface LayoutOptions {
  imageSize: number;
  /** Fewest objects (default 1). */
  minObjects?: number;
  /** Most objects (default 5); fewer are placed when the image is too crowded. */
  maxObjects?: number;
  /**
   * Cells per side: each object sits near the centre of its own cell of a `grid`×`grid` grid (default: free
   * placement). With cells the size of a ViT patch, one image token sees one whole object (the demo's setting).
   */
  grid?: number;
}

/** Smallest gap between two object boxes, so objects never touch (and stay separate after antialiasing). */
export const MIN_GAP_PX = 2;
const PLACEMENT_TRIES = 60;

const round2 = (value: number): number => Math.round(value * 100) / 100;

function darkColour(rng: Rng): Rgb {
  // Dark, weakly tinted: every object colour has a channel above 160, every background channel stays below 90.
  const base = rng.int(18, 55);
  return [base + rng.int(0, 15), base + rng.int(0, 15), base + rng.int(0, 15)];
}

function generateBackground(rng: Rng): SceneBackground {
  const kind = rng.pick(BACKGROUND_KINDS);
  const from = darkColour(rng);
  return {
    kind,
    from,
    to: kind === 'gradient' ? darkColour(rng) : from,
    angle: kind === 'gradient' ? round2(rng.float(0, 2 * Math.PI)) : 0,
    noise: kind === 'noisy' ? rng.int(8, 16) : 0,
    noiseSeed: rng.int(0, 2 ** 31 - 1),
  };
}

function boxesApart(a: PixelBox, b: PixelBox, gap: number): boolean {
  return a[2] + gap <= b[0] || b[2] + gap <= a[0] || a[3] + gap <= b[1] || b[3] + gap <= a[1];
}

function jitter(rgb: Rgb, rng: Rng): Rgb {
  const channel = (v: number): number => Math.max(0, Math.min(255, v + rng.int(-12, 12)));
  return [channel(rgb[0]), channel(rgb[1]), channel(rgb[2])];
}

function tryPlace(
  rng: Rng,
  imageSize: number,
  shape: ShapeName,
  size: SizeName,
  placed: readonly SceneObject[],
): Omit<SceneObject, 'colour' | 'rgb'> | null {
  const [minFraction, maxFraction] = SIZE_RADIUS_FRACTION[size];
  for (let attempt = 0; attempt < PLACEMENT_TRIES; attempt++) {
    const radius = round2(rng.float(minFraction, maxFraction) * imageSize);
    const margin = radius + 1;
    const cx = round2(rng.float(margin, imageSize - margin));
    const cy = round2(rng.float(margin, imageSize - margin));
    const geometry = shapeGeometry(shape, cx, cy, radius);
    const box = geometry.box.map(round2) as unknown as PixelBox;
    if (placed.every((other) => boxesApart(box, other.box, MIN_GAP_PX))) {
      return { shape, size, centre: [cx, cy], radius, box };
    }
  }
  return null;
}

/** Object radius as a fraction of its cell (grid layouts): a large object fills most of a cell, a small one a third. */
export const GRID_RADIUS_FRACTION: Readonly<Record<SizeName, readonly [number, number]>> = {
  small: [0.26, 0.3],
  large: [0.4, 0.44],
};
/** Largest offset of an object from its cell's centre, as a fraction of the cell. */
const GRID_JITTER_FRACTION = 0.06;

function placeInCell(
  rng: Rng,
  imageSize: number,
  grid: number,
  cellIndex: number,
  shape: ShapeName,
  size: SizeName,
): Omit<SceneObject, 'colour' | 'rgb'> {
  const cell = imageSize / grid;
  const [minFraction, maxFraction] = GRID_RADIUS_FRACTION[size];
  const radius = round2(rng.float(minFraction, maxFraction) * cell);
  const jitter = GRID_JITTER_FRACTION * cell;
  const cx = round2((cellIndex % grid) * cell + cell / 2 + rng.float(-jitter, jitter));
  const cy = round2(Math.floor(cellIndex / grid) * cell + cell / 2 + rng.float(-jitter, jitter));
  const box = shapeGeometry(shape, cx, cy, radius).box.map(round2) as unknown as PixelBox;
  return { shape, size, centre: [cx, cy], radius, box };
}

/** A random layout: 1-5 non-overlapping objects with distinct (shape, colour) on a dark background. */
export function generateLayout(rng: Rng, options: LayoutOptions): SceneLayout {
  const { imageSize, grid } = options;
  const minObjects = options.minObjects ?? 1;
  const maxObjects = options.maxObjects ?? 5;
  if (!Number.isInteger(imageSize) || imageSize < 16) {
    throw new Error(`generateLayout: imageSize must be an integer >= 16 (got ${imageSize}).`);
  }
  if (minObjects < 1 || maxObjects < minObjects || maxObjects > SHAPES.length * COLOUR_NAMES.length) {
    throw new Error(`generateLayout: need 1 <= minObjects <= maxObjects (got ${minObjects}, ${maxObjects}).`);
  }
  if (
    grid !== undefined &&
    (!Number.isInteger(grid) || grid < 1 || grid * grid < maxObjects || imageSize / grid < 8)
  ) {
    throw new Error(
      `generateLayout: grid must be an integer with grid² >= maxObjects and cells of at least 8 px (got grid ${grid}, maxObjects ${maxObjects}, imageSize ${imageSize}).`,
    );
  }
  const background = generateBackground(rng);
  const wanted = rng.int(minObjects, maxObjects);
  // Grid layouts: distinct cells drawn up front (a partial Fisher–Yates shuffle of the cell indices).
  const cells = grid === undefined ? [] : Array.from({ length: grid * grid }, (_, i) => i);
  for (let i = 0; i < Math.min(wanted, cells.length); i++) {
    const j = rng.int(i, cells.length - 1);
    [cells[i], cells[j]] = [cells[j] as number, cells[i] as number];
  }
  const objects: SceneObject[] = [];
  const used = new Set<string>();
  while (objects.length < wanted) {
    let shape: ShapeName;
    let colour: ColourName;
    do {
      shape = rng.pick(SHAPES);
      colour = rng.pick(COLOUR_NAMES);
    } while (used.has(`${colour} ${shape}`));
    const size: SizeName = rng.chance(0.5) ? 'small' : 'large';
    // A crowded image first falls back to a small object, then stops adding objects.
    const placed =
      grid !== undefined
        ? placeInCell(rng, imageSize, grid, cells[objects.length] as number, shape, size)
        : (tryPlace(rng, imageSize, shape, size, objects) ??
          (size === 'large' ? tryPlace(rng, imageSize, shape, 'small', objects) : null));
    if (placed === null) break;
    used.add(`${colour} ${shape}`);
    objects.push({ ...placed, colour, rgb: jitter(COLOURS[colour], rng) });
  }
  if (objects.length < minObjects) {
    throw new Error(
      `generateLayout: could not place ${minObjects} objects in a ${imageSize}px image; use a larger imageSize or fewer objects.`,
    );
  }
  return { imageSize, background, objects };
}

/** Which third of the image a coordinate falls in: 0 (left/top), 1 (middle), 2 (right/bottom). */
export function thirdOf(value: number, imageSize: number): 0 | 1 | 2 {
  if (value < imageSize / 3) return 0;
  if (value > (2 * imageSize) / 3) return 2;
  return 1;
}
