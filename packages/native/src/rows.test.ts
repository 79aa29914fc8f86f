import { describe, expect, it } from 'vitest';
import { randomArray, requireKernels, suiteTitle } from './test-support.js';

const title = suiteTitle('rotary and column sum');

/** core's JS rotary kernel (ops/kernels/rotary.ts): float64 arithmetic, one rounding per element. */
function rotaryReference(
  x: Float32Array,
  cos: Float32Array,
  sin: Float32Array,
  [B, H, T, D]: number[],
  angleBatches: number,
  sign: 1 | -1,
): Float32Array {
  const out = new Float32Array(x.length);
  const half = D / 2;
  const perAngleBatch = angleBatches === 1 ? 0 : T * D;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let t = 0; t < T; t++) {
        const o = ((b * H + h) * T + t) * D;
        const a = b * perAngleBatch + t * D;
        for (let i = 0; i < half; i++) {
          const x1 = x[o + i];
          const x2 = x[o + half + i];
          out[o + i] = x1 * cos[a + i] - sign * x2 * sin[a + i];
          out[o + half + i] = x2 * cos[a + half + i] + sign * x1 * sin[a + half + i];
        }
      }
  return out;
}

describe(title, () => {
  it.for([
    { shape: [2, 3, 5, 8], angleBatches: 1 },
    { shape: [3, 4, 7, 34], angleBatches: 3 },
    { shape: [1, 2, 1, 2], angleBatches: 1 },
  ])(
    'rotary gives the JS kernel’s bits on every ISA, both signs ($shape, angles for $angleBatches)',
    ({ shape, angleBatches }, ctx) => {
      const kernels = requireKernels(ctx);
      const [B, H, T, D] = shape;
      const x = randomArray(B * H * T * D, 1);
      const cos = randomArray(angleBatches * T * D, 2);
      const sin = randomArray(angleBatches * T * D, 3);
      for (const sign of [1, -1] as const) {
        const want = rotaryReference(x, cos, sin, shape, angleBatches, sign);
        for (const isa of kernels.isas) {
          const out = new Float32Array(x.length).fill(Number.NaN);
          kernels.rotary({
            x,
            cos,
            sin,
            out,
            batch: B,
            heads: H,
            positions: T,
            dim: D,
            angleBatches,
            sign,
            isa,
          });
          expect(Array.from(out), `${isa}, sign ${sign}`).toEqual(Array.from(want));
        }
      }
    },
  );

  it.for([
    [1, 1],
    [7, 5],
    [64, 130],
  ])('column sum of a [%i, %i] matrix gives the JS kernel’s bits on every ISA', ([rows, dim], ctx) => {
    const kernels = requireKernels(ctx);
    const x = randomArray(rows * dim, 9);
    const acc = new Float64Array(dim);
    for (let r = 0; r < rows; r++) for (let j = 0; j < dim; j++) acc[j] += x[r * dim + j];
    const want = Float32Array.from(acc);
    for (const isa of kernels.isas) {
      const out = new Float32Array(dim).fill(Number.NaN);
      kernels.columnSum({ x, out, rows, dim, isa });
      expect(Array.from(out), isa).toEqual(Array.from(want));
    }
  });

  it('refuses mismatched lengths, odd dims, other angle batches and overlapping output, naming the argument', (ctx) => {
    const kernels = requireKernels(ctx);
    const x = new Float32Array(2 * 2 * 3 * 4);
    const angles = new Float32Array(3 * 4);
    const args = {
      x,
      cos: angles,
      sin: angles,
      out: new Float32Array(x.length),
      batch: 2,
      heads: 2,
      positions: 3,
      dim: 4,
      angleBatches: 1,
      sign: 1 as const,
    };
    expect(() => kernels.rotary({ ...args, out: new Float32Array(5) })).toThrow(
      /rotary: x and out must hold .* = 48 floats/,
    );
    expect(() => kernels.rotary({ ...args, cos: new Float32Array(5) })).toThrow(
      /rotary: cos and sin must hold/,
    );
    expect(() => kernels.rotary({ ...args, dim: 3, positions: 4 })).toThrow(/dim must be even/);
    expect(() => kernels.rotary({ ...args, angleBatches: 3 })).toThrow(/angleBatches must be 1 or batch/);
    expect(() => kernels.rotary({ ...args, out: x })).toThrow(/out overlaps x/);
    expect(() => kernels.columnSum({ x, out: new Float32Array(3), rows: 12, dim: 4 })).toThrow(
      /columnSum: out must hold dim = 4/,
    );
    expect(() => kernels.columnSum({ x, out: x.subarray(0, 4), rows: 12, dim: 4 })).toThrow(/out overlaps x/);
  });
});
