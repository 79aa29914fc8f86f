// The world's objects: one shape per cloud, sampled on its surface, in a colour and a size. The names are also
// what the shape_accuracy metric looks for in answers.
import { Rng } from '@vistune/core';
import type { PointCloud } from './ply.js';

export const SHAPES = ['sphere', 'cube', 'cone', 'cylinder', 'torus'] as const;
export type ShapeName = (typeof SHAPES)[number];

export const COLOURS = {
  red: [0.85, 0.15, 0.15],
  green: [0.2, 0.7, 0.25],
  blue: [0.15, 0.3, 0.85],
  yellow: [0.9, 0.85, 0.2],
  purple: [0.55, 0.25, 0.7],
  white: [0.92, 0.92, 0.92],
} as const satisfies Record<string, readonly [number, number, number]>;
export type ColourName = keyof typeof COLOURS;
export const COLOUR_NAMES = Object.keys(COLOURS) as ColourName[];

/** Scale of the object in world units (the processor normalises it away: size is not answerable from points). */
export const SIZES = { small: 0.5, medium: 1, large: 2 } as const;
export type SizeName = keyof typeof SIZES;
export const SIZE_NAMES = Object.keys(SIZES) as SizeName[];

/** Uniform draws in [0, 1) from core's seeded generator: the world is a pure function of its seed. */
export function seededRandom(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.nextFloat();
}

type Vec3 = [number, number, number];

/** One point on the unit-size surface of a shape (y is up). */
function surfacePoint(shape: ShapeName, rand: () => number): Vec3 {
  const angle = 2 * Math.PI * rand();
  switch (shape) {
    case 'sphere': {
      const y = 2 * rand() - 1;
      const r = Math.sqrt(1 - y * y);
      return [r * Math.cos(angle), y, r * Math.sin(angle)];
    }
    case 'cube': {
      const face = Math.floor(rand() * 6);
      const [u, v] = [2 * rand() - 1, 2 * rand() - 1];
      const side = face % 2 === 0 ? 1 : -1;
      const axis = Math.floor(face / 2);
      return axis === 0 ? [side, u, v] : axis === 1 ? [u, side, v] : [u, v, side];
    }
    case 'cone': {
      // Lateral surface (area ∝ slant) or the base disc, by area: slant √2 · π vs π for radius 1, height 2.
      if (rand() < Math.SQRT2 / (Math.SQRT2 + 1)) {
        const t = Math.sqrt(rand());
        return [t * Math.cos(angle), 1 - 2 * t, t * Math.sin(angle)];
      }
      const r = Math.sqrt(rand());
      return [r * Math.cos(angle), -1, r * Math.sin(angle)];
    }
    case 'cylinder': {
      // Side (area 4π) or one of the two caps (π each).
      if (rand() < 4 / 6) return [Math.cos(angle), 2 * rand() - 1, Math.sin(angle)];
      const r = Math.sqrt(rand());
      return [r * Math.cos(angle), rand() < 0.5 ? -1 : 1, r * Math.sin(angle)];
    }
    case 'torus': {
      const tube = 2 * Math.PI * rand();
      const ring = 1 + 0.35 * Math.cos(tube);
      return [ring * Math.cos(angle), 0.35 * Math.sin(tube), ring * Math.sin(angle)];
    }
  }
}

export interface ObjectSpec {
  shape: ShapeName;
  colour: ColourName;
  size: SizeName;
}

/**
 * `count` surface points of the object, turned by a random angle about the vertical axis, scaled by its size,
 * moved to a random place, with ±`jitter` noise on positions and colours.
 */
export function sampleObject(spec: ObjectSpec, count: number, rand: () => number, jitter = 0.02): PointCloud {
  const positions = new Float32Array(count * 3);
  const colors = new Float32Array(count * 3);
  const turn = 2 * Math.PI * rand();
  const [cos, sin] = [Math.cos(turn), Math.sin(turn)];
  const scale = SIZES[spec.size];
  const offset = [4 * rand() - 2, 4 * rand() - 2, 4 * rand() - 2];
  const noise = () => jitter * (2 * rand() - 1);
  const base = COLOURS[spec.colour];
  for (let i = 0; i < count; i++) {
    const [x, y, z] = surfacePoint(spec.shape, rand);
    const turned = [cos * x - sin * z, y, sin * x + cos * z];
    for (let c = 0; c < 3; c++) {
      positions[3 * i + c] = offset[c] + scale * (turned[c] + noise());
      colors[3 * i + c] = Math.min(1, Math.max(0, base[c] + 5 * noise()));
    }
  }
  return { positions, colors, count };
}
