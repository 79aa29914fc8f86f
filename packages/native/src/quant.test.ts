import { describe, expect, it } from 'vitest';
import { randomArray, requireKernels, suiteTitle } from './test-support.js';

const title = suiteTitle('int8 product');

/** int8 rows with one scale each, from a seeded float matrix (what core's quantizer writes). */
function int8Rows(cols: number, depth: number, seed: number): { q: Int8Array; scales: Float32Array } {
  const values = randomArray(cols * depth, seed);
  const q = new Int8Array(cols * depth);
  for (let i = 0; i < q.length; i++) q[i] = Math.max(-127, Math.min(127, Math.round(values[i] * 127)));
  return { q, scales: randomArray(cols, seed + 1).map((s) => Math.abs(s) + 0.01) };
}

/** The product in float64: the kernel sums in float32, so it matches to a few ulps of the row's magnitude. */
function reference(
  x: Float32Array,
  q: Int8Array,
  scales: Float32Array,
  rows: number,
  cols: number,
  depth: number,
) {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < cols; j++) {
      let acc = 0;
      for (let i = 0; i < depth; i++) acc += x[r * depth + i] * q[j * depth + i];
      out[r * cols + j] = acc * scales[j];
    }
  return out;
}

describe(title, () => {
  it.for([
    { rows: 1, cols: 37, depth: 48 },
    { rows: 3, cols: 5, depth: 21 },
    { rows: 2, cols: 4100, depth: 256 },
  ])(
    'matches the float64 product on every ISA and thread count ($rows × $cols × $depth)',
    ({ rows, cols, depth }, ctx) => {
      const kernels = requireKernels(ctx);
      const x = randomArray(rows * depth, 7);
      const { q, scales } = int8Rows(cols, depth, 8);
      const want = reference(x, q, scales, rows, cols, depth);
      // Int32Array views of the same bytes: how a tfjs int32 tensor hands packed weights over.
      const packed = depth % 4 === 0 ? new Int32Array(q.buffer, q.byteOffset, q.length / 4) : null;
      for (const isa of kernels.isas)
        for (const threads of [1, 2])
          for (const weights of packed ? [q, packed] : [q]) {
            const out = new Float32Array(rows * cols).fill(Number.NaN);
            kernels.int8Product({ x, q: weights, scales, out, rows, cols, depth, isa, threads });
            for (let i = 0; i < out.length; i++) {
              const bound = 1e-5 * depth * scales[i % cols] * 127;
              expect(
                Math.abs(out[i] - want[i]),
                `${isa}, ${threads} thread(s), element ${i}`,
              ).toBeLessThanOrEqual(bound);
            }
          }
    },
  );

  it('throws a RangeError naming the array whose length disagrees', (ctx) => {
    const kernels = requireKernels(ctx);
    const { q, scales } = int8Rows(4, 8, 1);
    const args = { x: new Float32Array(16), q, scales, out: new Float32Array(8), rows: 2, cols: 4, depth: 8 };
    expect(() => kernels.int8Product(args)).not.toThrow();
    expect(() => kernels.int8Product({ ...args, x: new Float32Array(15) })).toThrow(
      /x must hold rows·depth = 16 floats/,
    );
    expect(() => kernels.int8Product({ ...args, q: new Int8Array(31) })).toThrow(
      /q must hold cols·depth = 32 int8 values/,
    );
    expect(() => kernels.int8Product({ ...args, scales: new Float32Array(3) })).toThrow(
      /scales must hold cols = 4/,
    );
    expect(() => kernels.int8Product({ ...args, out: new Float32Array(7) })).toThrow(RangeError);
    const shared = new Float32Array(16);
    expect(() => kernels.int8Product({ ...args, x: shared, out: shared.subarray(0, 8) })).toThrow(
      /out overlaps an input/,
    );
  });
});
