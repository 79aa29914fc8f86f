import { initBackend, tf } from '@vistune/core';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Box } from '../box.js';
import { type RoIAlignOptions, roiAlign } from './roi-align.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

/** Deterministic feature map values [N][H·W][C]. */
function featureValues(N: number, H: number, W: number, C: number): number[][][] {
  return Array.from({ length: N }, (_, n) =>
    Array.from({ length: H * W }, (_, p) =>
      Array.from({ length: C }, (_, c) => Math.sin(1.3 * n + 0.7 * p + 2.1 * c)),
    ),
  );
}

/** torchvision's roi_align CPU loop, written directly over feature values (independent of roiAlignWeights). */
function naiveRoIAlign(
  f: number[][],
  H: number,
  W: number,
  box: Box,
  o: Required<RoIAlignOptions>,
): number[][] {
  const [sx, sy] = typeof o.spatialScale === 'number' ? [o.spatialScale, o.spatialScale] : o.spatialScale;
  const off = o.aligned ? 0.5 : 0;
  const x0 = box[0] * sx - off;
  const y0 = box[1] * sy - off;
  const rw = o.aligned ? box[2] * sx - off - x0 : Math.max(box[2] * sx - off - x0, 1);
  const rh = o.aligned ? box[3] * sy - off - y0 : Math.max(box[3] * sy - off - y0, 1);
  const s = o.outputSize;
  const gw = o.samplingRatio > 0 ? o.samplingRatio : Math.ceil(rw / s);
  const gh = o.samplingRatio > 0 ? o.samplingRatio : Math.ceil(rh / s);
  const C = f[0].length;
  const at = (y: number, x: number) => f[y * W + x];
  const sample = (yIn: number, xIn: number): number[] => {
    if (yIn < -1 || yIn > H || xIn < -1 || xIn > W) return new Array(C).fill(0);
    let y = Math.max(yIn, 0);
    let x = Math.max(xIn, 0);
    let y0i = Math.floor(y);
    let x0i = Math.floor(x);
    let y1i: number;
    let x1i: number;
    if (y0i >= H - 1) {
      y1i = y0i = H - 1;
      y = y0i;
    } else y1i = y0i + 1;
    if (x0i >= W - 1) {
      x1i = x0i = W - 1;
      x = x0i;
    } else x1i = x0i + 1;
    const ly = y - y0i;
    const lx = x - x0i;
    return Array.from(
      { length: C },
      (_, c) =>
        (1 - ly) * (1 - lx) * at(y0i, x0i)[c] +
        (1 - ly) * lx * at(y0i, x1i)[c] +
        ly * (1 - lx) * at(y1i, x0i)[c] +
        ly * lx * at(y1i, x1i)[c],
    );
  };
  const out: number[][] = [];
  for (let ph = 0; ph < s; ph++) {
    for (let pw = 0; pw < s; pw++) {
      const acc = new Array(C).fill(0);
      for (let iy = 0; iy < gh; iy++) {
        for (let ix = 0; ix < gw; ix++) {
          const v = sample(
            y0 + ph * (rh / s) + ((iy + 0.5) * (rh / s)) / gh,
            x0 + pw * (rw / s) + ((ix + 0.5) * (rw / s)) / gw,
          );
          for (let c = 0; c < C; c++) acc[c] += v[c];
        }
      }
      out.push(acc.map((v) => v / Math.max(gh * gw, 1)));
    }
  }
  return out;
}

function maxDiff(a: number[][][], b: number[][][]): number {
  return Math.max(...a.flatMap((x, i) => x.flatMap((y, j) => y.map((v, k) => Math.abs(v - b[i][j][k])))));
}

describe('roiAlign', () => {
  const [N, H, W, C] = [2, 5, 6, 3];
  const values = featureValues(N, H, W, C);
  const boxes: Box[][] = [
    [
      [3.2, 4.1, 30.5, 22.7],
      [-6, -3, 9, 8], // partly outside the map
      [40, 2, 47.9, 39.5], // touching the right edge
    ],
    [
      [0, 0, 48, 40],
      [10.25, 10.25, 10.75, 11.5], // smaller than a cell
      [20, 30, 28, 52], // below the map
    ],
  ];
  const cases: Required<RoIAlignOptions>[] = [
    { outputSize: 2, spatialScale: 1 / 8, samplingRatio: 2, aligned: true },
    { outputSize: 3, spatialScale: 1 / 8, samplingRatio: 0, aligned: true },
    { outputSize: 2, spatialScale: [1 / 8, 1 / 8], samplingRatio: 1, aligned: false },
    { outputSize: 4, spatialScale: 1 / 8, samplingRatio: -1, aligned: false },
  ];
  for (const o of cases) {
    it(`matches the per-sample bilinear loop (s=${o.outputSize}, ratio=${o.samplingRatio}, aligned=${o.aligned})`, () => {
      const features = tf.tensor3d(values);
      const out = roiAlign(features, [H, W], boxes, o);
      const s2 = o.outputSize * o.outputSize;
      expect(out.shape).toEqual([N, 3 * s2, C]);
      const expected = boxes.map((list, n) => list.flatMap((b) => naiveRoIAlign(values[n], H, W, b, o)));
      expect(maxDiff(out.arraySync(), expected)).toBeLessThan(1e-5);
      tf.dispose([features, out]);
    });
  }

  it('aligned=True samples a linear map at bin centres shifted by half a cell (analytic)', () => {
    // f(y, x) = 2x − 3y + 1 is reproduced exactly by bilinear interpolation, so each bin is f at its centre:
    // x = x1·scale − 0.5 + (pw + 0.5)·binW (aligned) or without the −0.5 (legacy).
    const [h, w] = [8, 8];
    const f = [Array.from({ length: h * w }, (_, p) => [2 * (p % w) - 3 * Math.floor(p / w) + 1])];
    const box: Box = [12, 16, 36, 40]; // cells 1.5..4.5 × 2..5 at scale 1/8
    for (const aligned of [true, false]) {
      const out = roiAlign(tf.tensor3d(f), [h, w], [[box]], { outputSize: 3, spatialScale: 1 / 8, aligned });
      const shift = aligned ? 0.5 : 0;
      const bin = 3 / 3;
      const expected = [0, 1, 2].flatMap((ph) =>
        [0, 1, 2].map((pw) => {
          const x = 12 / 8 - shift + (pw + 0.5) * bin;
          const y = 16 / 8 - shift + (ph + 0.5) * bin;
          return 2 * x - 3 * y + 1;
        }),
      );
      const got = (out.arraySync() as number[][][])[0].map((r) => r[0]);
      got.forEach((v, i) => {
        expect(v).toBeCloseTo(expected[i], 5);
      });
      out.dispose();
    }
  });

  it('gradient w.r.t. the features matches finite differences', () => {
    const features = tf.tensor3d(values);
    const opts = { outputSize: 2, spatialScale: 1 / 8, samplingRatio: 2 };
    const R = tf.tensor3d(featureValues(N, 3, 4, C)); // one weight per output row and channel
    const loss = (f: tf.Tensor3D) => tf.sum(tf.mul(roiAlign(f, [H, W], boxes, opts), R)) as tf.Scalar;
    const grad = tf.grad((f: tf.Tensor) => loss(f as tf.Tensor3D))(features);
    const g = grad.arraySync() as number[][][];
    const eps = 1e-2;
    for (const [n, p, c] of [
      [0, 0, 0],
      [0, 7, 1],
      [0, 14, 2],
      [1, 3, 0],
      [1, 20, 1],
      [1, 29, 2],
    ]) {
      const bumped = (delta: number) => {
        const v = values.map((m) => m.map((r) => [...r]));
        v[n][p][c] += delta;
        return tf.tidy(() => loss(tf.tensor3d(v)).dataSync()[0]);
      };
      const fd = (bumped(eps) - bumped(-eps)) / (2 * eps);
      expect(Math.abs(g[n][p][c] - fd)).toBeLessThan(2e-3);
    }
    expect(Math.max(...g.flat(2).map(Math.abs))).toBeGreaterThan(0.01);
    tf.dispose([features, R, grad]);
  });
});
