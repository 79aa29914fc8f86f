// The world's vocabulary of things (shapes, colours, sizes) and each shape's geometry: a point test and its tight box.

export const SHAPES = ['circle', 'square', 'triangle', 'star', 'cross'] as const;
export type ShapeName = (typeof SHAPES)[number];

export const SHAPE_PLURALS: Readonly<Record<ShapeName, string>> = {
  circle: 'circles',
  square: 'squares',
  triangle: 'triangles',
  star: 'stars',
  cross: 'crosses',
};

export type Rgb = readonly [number, number, number];

/** Saturated, bright colours: every one stands out against the dark backgrounds. */
export const COLOURS = {
  red: [220, 40, 40],
  green: [40, 185, 60],
  blue: [50, 95, 240],
  yellow: [240, 220, 40],
  purple: [165, 70, 225],
  orange: [245, 140, 30],
  white: [240, 240, 240],
} as const satisfies Record<string, Rgb>;
export type ColourName = keyof typeof COLOURS;
export const COLOUR_NAMES = Object.keys(COLOURS) as ColourName[];

export const SIZES = ['small', 'large'] as const;
export type SizeName = (typeof SIZES)[number];

/** Half-extent of an object as a fraction of the image side; the two ranges are far apart so size is visible. */
export const SIZE_RADIUS_FRACTION: Readonly<Record<SizeName, readonly [number, number]>> = {
  small: [0.085, 0.105],
  large: [0.15, 0.18],
};

/** [x1, y1, x2, y2] in pixels, x to the right, y down, (0, 0) the top-left corner of the image. */
export type PixelBox = readonly [number, number, number, number];

export interface ShapeGeometry {
  /** Tight bounding box of the shape. */
  box: PixelBox;
  /** Whether the point (x, y) in pixel coordinates lies inside the shape. */
  contains(x: number, y: number): boolean;
}

type Point = readonly [number, number];

// Even-odd crossing test: works for the concave star as well.
function polygonContains(vertices: readonly Point[], x: number, y: number): boolean {
  let inside = false;
  for (let i = 0, j = vertices.length - 1; i < vertices.length; j = i++) {
    const [xi, yi] = vertices[i] as Point;
    const [xj, yj] = vertices[j] as Point;
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

function boxOfPoints(points: readonly Point[]): PixelBox {
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

function polygon(vertices: readonly Point[]): ShapeGeometry {
  return { box: boxOfPoints(vertices), contains: (x, y) => polygonContains(vertices, x, y) };
}

/** Five-pointed star, point up, shifted vertically so its tight box is centred on (cx, cy). */
function star(cx: number, cy: number, r: number): ShapeGeometry {
  const inner = 0.5 * r; // fat enough that small stars keep visible points at 64 px
  const local: Point[] = [];
  for (let k = 0; k < 10; k++) {
    const angle = -Math.PI / 2 + (k * Math.PI) / 5;
    const radius = k % 2 === 0 ? r : inner;
    local.push([radius * Math.cos(angle), radius * Math.sin(angle)]);
  }
  const [, top, , bottom] = boxOfPoints(local);
  const shiftY = -(top + bottom) / 2;
  return polygon(local.map(([x, y]) => [cx + x, cy + y + shiftY] as const));
}

/** Geometry of `shape` centred on (cx, cy) with half-extent `r` (its box is centred on (cx, cy)). */
export function shapeGeometry(shape: ShapeName, cx: number, cy: number, r: number): ShapeGeometry {
  switch (shape) {
    case 'circle':
      return {
        box: [cx - r, cy - r, cx + r, cy + r],
        contains: (x, y) => (x - cx) ** 2 + (y - cy) ** 2 <= r * r,
      };
    case 'square': {
      // A square of the same half-extent looks bigger than a circle; 0.85 evens out their areas a little.
      const a = 0.85 * r;
      return {
        box: [cx - a, cy - a, cx + a, cy + a],
        contains: (x, y) => Math.abs(x - cx) <= a && Math.abs(y - cy) <= a,
      };
    }
    case 'triangle':
      return polygon([
        [cx, cy - r],
        [cx + r, cy + r],
        [cx - r, cy + r],
      ]);
    case 'star':
      return star(cx, cy, r);
    case 'cross': {
      const arm = 0.35 * r;
      return {
        box: [cx - r, cy - r, cx + r, cy + r],
        contains: (x, y) => {
          const dx = Math.abs(x - cx);
          const dy = Math.abs(y - cy);
          return (dx <= r && dy <= arm) || (dx <= arm && dy <= r);
        },
      };
    }
  }
}
