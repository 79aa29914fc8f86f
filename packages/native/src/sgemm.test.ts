import { describe, expect, it } from 'vitest';
import { type NativeIsa, nativeKernelsStatus, type SgemmArgs } from './index.js';
import { kernels, randomArray, suiteTitle } from './test-support.js';

const title = suiteTitle('sgemm');

/** The product in float64 by the definition, reading the stored layouts directly. */
function reference(args: Required<Omit<SgemmArgs, 'isa' | 'threads' | 'c'>>): Float64Array {
  const { a, b, m, n, k, transposeA, transposeB, batch, strideA, strideB } = args;
  const out = new Float64Array(batch * m * n);
  for (let s = 0; s < batch; s++)
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let p = 0; p < k; p++) {
          const av = transposeA ? a[s * strideA + p * m + i] : a[s * strideA + i * k + p];
          const bv = transposeB ? b[s * strideB + j * k + p] : b[s * strideB + p * n + j];
          sum += av * bv;
        }
        out[(s * m + i) * n + j] = sum;
      }
  return out;
}

/** Largest |native − reference| over the scale of a k-term sum of products of values in [-1, 1]. */
function maxScaledError(
  shape: { m: number; n: number; k: number; batch?: number; broadcastA?: boolean; broadcastB?: boolean },
  transposeA: boolean,
  transposeB: boolean,
  isa: NativeIsa,
  threads = 1,
): number {
  const { m, n, k, batch = 1 } = shape;
  const strideA = shape.broadcastA ? 0 : m * k;
  const strideB = shape.broadcastB ? 0 : k * n;
  const a = randomArray(shape.broadcastA ? m * k : batch * m * k, m * 7 + k);
  const b = randomArray(shape.broadcastB ? k * n : batch * k * n, n * 13 + k + 1);
  const c = new Float32Array(batch * m * n).fill(Number.NaN);
  kernels!.sgemm({ a, b, c, m, n, k, transposeA, transposeB, batch, strideA, strideB, isa, threads });
  const want = reference({ a, b, m, n, k, transposeA, transposeB, batch, strideA, strideB, strideC: m * n });
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(c[i] - want[i]) / Math.sqrt(k + 1));
  return Number.isNaN(worst) ? Number.POSITIVE_INFINITY : worst;
}

const ODD_SHAPES = [
  { m: 1, n: 1, k: 1 },
  { m: 1, n: 129, k: 63 },
  { m: 4, n: 7, k: 300 },
  { m: 5, n: 33, k: 1 },
  { m: 7, n: 63, k: 129 },
  { m: 63, n: 7, k: 257 },
  { m: 129, n: 65, k: 31 },
  { m: 200, n: 300, k: 70 },
];

describe.skipIf(!kernels)(title, () => {
  for (const isa of kernels?.isas ?? []) {
    it(`${isa}: odd shapes × every transpose combination match a float64 reference`, () => {
      for (const shape of ODD_SHAPES)
        for (const transposeA of [false, true])
          for (const transposeB of [false, true]) {
            const error = maxScaledError(shape, transposeA, transposeB, isa);
            expect(error, `${JSON.stringify(shape)} tA=${transposeA} tB=${transposeB}`).toBeLessThan(1e-5);
          }
    });
  }

  it('batched and broadcast slices, on one and two threads', () => {
    const isa = kernels!.isa;
    for (const threads of [1, 2])
      for (const shape of [
        { m: 64, n: 64, k: 64, batch: 3 },
        { m: 7, n: 129, k: 17, batch: 4, broadcastB: true },
        { m: 33, n: 9, k: 65, batch: 2, broadcastA: true },
        { m: 300, n: 300, k: 300 }, // one slice, big enough for the two-thread column split
        { m: 300, n: 40, k: 600 }, // narrow: the row split
      ])
        for (const transposeB of [false, true])
          expect(maxScaledError(shape, true, transposeB, isa, threads), JSON.stringify(shape)).toBeLessThan(
            1e-5,
          );
  });

  it('zero inner size gives zeros; empty outputs are no-ops', () => {
    const c = new Float32Array(6).fill(Number.NaN);
    kernels!.sgemm({ a: new Float32Array(0), b: new Float32Array(0), c, m: 2, n: 3, k: 0 });
    expect([...c]).toEqual([0, 0, 0, 0, 0, 0]);
    kernels!.sgemm({
      a: new Float32Array(0),
      b: new Float32Array(3),
      c: new Float32Array(0),
      m: 0,
      n: 3,
      k: 1,
    });
  });

  it('reads and writes views into a SharedArrayBuffer at an offset (the threaded wasm heap)', () => {
    const heap = new Float32Array(new SharedArrayBuffer(4 * 64));
    heap.set([1, 2, 3, 4], 4);
    heap.set([5, 6, 7, 8], 12);
    const c = heap.subarray(20, 24);
    kernels!.sgemm({ a: heap.subarray(4, 8), b: heap.subarray(12, 16), c, m: 2, n: 2, k: 2 });
    expect([...c]).toEqual([19, 22, 43, 50]);
    expect(heap[24]).toBe(0); // nothing written past c
  });

  it('rejects arrays too short for the shape, and a kernel the CPU lacks, naming the argument', () => {
    const a = new Float32Array(5);
    const b = new Float32Array(6);
    expect(() => kernels!.sgemm({ a, b, c: new Float32Array(4), m: 2, n: 2, k: 3 })).toThrow(
      /a \(5 floats\)/,
    );
    expect(() =>
      kernels!.sgemm({ a: new Float32Array(6), b, c: new Float32Array(3), m: 2, n: 2, k: 3 }),
    ).toThrow(/c \(3 floats\)/);
    expect(() =>
      kernels!.sgemm({
        a: new Float32Array(6),
        b,
        c: new Float32Array(8),
        m: 2,
        n: 2,
        k: 3,
        batch: 2,
        strideC: 4,
      }),
    ).toThrow(/a \(6 floats\)/);
    if (kernels!.isa !== 'avx512')
      expect(() => kernels!.sgemm({ a, b, c: new Float32Array(4), m: 1, n: 1, k: 1, isa: 'avx512' })).toThrow(
        /isa/,
      );
  });
});

describe('native status', () => {
  it('is either kernels with a known instruction set or a reason to show the user', () => {
    const status = nativeKernelsStatus();
    if (status.available) expect(['generic', 'avx2', 'avx512']).toContain(status.kernels.isa);
    else expect(status.reason.length).toBeGreaterThan(10);
  });
});
