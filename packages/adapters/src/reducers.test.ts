import { createRegistry, Initializer, initBackend, tf } from '@vistune/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { CAbstractorConfigSchema, LdpConfigSchema } from './config.js';
import { adaptivePoolMatrix, CAbstractor, DepthwiseConv3x3, LdpProjector } from './reducers.js';
import { register } from './register.js';
import { compositionLoss, det, expectGradientsMatchFiniteDifferences, randomizeParameters, relativeError, tinyComposition } from './test-utils.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

const grid = { tokens: 16, prefixTokens: 0, grid: [4, 4] as const };

describe('token reducers (c_abstractor, ldp)', () => {
  it('adaptive average pooling uses PyTorch’s windows (5 → 2: rows 0–2 and 2–4)', () => {
    const m = adaptivePoolMatrix([5, 5], 2).arraySync();
    // Output (0, 1) averages rows 0..2 × cols 2..4: 9 inputs.
    const row = m[1] as number[];
    const picked = row.flatMap((v, i) => (v > 0 ? [[Math.floor(i / 5), i % 5]] : []));
    expect(picked).toEqual([0, 1, 2].flatMap((r) => [2, 3, 4].map((c) => [r, c])));
    expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    expect(adaptivePoolMatrix([4, 4], 2).arraySync()[3]).toEqual(
      Array.from({ length: 16 }, (_, i) => (Math.floor(i / 4) >= 2 && i % 4 >= 2 ? 0.25 : 0)),
    );
  });

  it('the depthwise 3×3 convolution matches a plain-JS zero-padded convolution', () => {
    const conv = new DepthwiseConv3x3(2, new Initializer({ seed: 1 }), true);
    randomizeParameters(conv, 1);
    const [rows, cols, D] = [3, 4, 2];
    const x = det([1, rows * cols, D], 2) as tf.Tensor3D;
    const got = conv.forward(x, [rows, cols]).dataSync();
    const xv = x.dataSync();
    const w = conv.weight.dataSync();
    const b = conv.bias?.dataSync() as Float32Array;
    const want = new Float32Array(rows * cols * D);
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++)
        for (let d = 0; d < D; d++) {
          let s = b[d] as number;
          for (let dy = -1; dy <= 1; dy++)
            for (let dx = -1; dx <= 1; dx++) {
              const rr = r + dy;
              const cc = c + dx;
              if (rr < 0 || rr >= rows || cc < 0 || cc >= cols) continue;
              s += (xv[(rr * cols + cc) * D + d] as number) * (w[((dy + 1) * 3 + dx + 1) * D + d] as number);
            }
          want[(r * cols + c) * D + d] = s;
        }
    expect(relativeError(got, want)).toBeLessThan(1e-6);
    conv.dispose();
  });

  it('reduce a 4×4 grid to numQueries slots; CLS, non-square numQueries and video are errors naming the fix', () => {
    const c = new CAbstractor(CAbstractorConfigSchema.parse({ inDim: 6, outDim: 16, numQueries: 4, depth: 1, hiddenSize: 8 }));
    const l = new LdpProjector(LdpConfigSchema.parse({ inDim: 6, outDim: 16, numQueries: 4 }));
    const x = det([2, 16, 6], 1) as tf.Tensor3D;
    for (const a of [c, l]) {
      expect(a.numSlots(grid)).toBe(4);
      expect(a.forward(x, { layout: grid }).shape).toEqual([2, 4, 16]);
      expect(() => a.numSlots({ tokens: 17, prefixTokens: 1, grid: [4, 4] })).toThrow(/strategy 'default'/);
    }
    expect(() => new LdpProjector(LdpConfigSchema.parse({ inDim: 6, outDim: 16, numQueries: 8 }))).toThrow(/not a square/);
    expect(c.namedParameters().map(([n]) => n)).toEqual(
      expect.arrayContaining(['s1.blocks.0.conv2.weight', 's1.blocks.0.se.fc1.weight', 's1.blocks.0.downsample.weight', 'readout.1.bias']),
    );
    expect(l.namedParameters().map(([n]) => n)).toEqual(['mlp.0.weight', 'mlp.0.bias', 'mlp.2.weight', 'mlp.2.bias', 'peg.0.weight', 'peg.0.bias']);
    tf.dispose([x]);
    c.dispose();
    l.dispose();
  });

  it('train on wasm through the LLM: gradients match finite differences', () => {
    for (const a of [
      new CAbstractor(CAbstractorConfigSchema.parse({ inDim: 6, outDim: 16, numQueries: 4, depth: 1, hiddenSize: 8 })),
      new LdpProjector(LdpConfigSchema.parse({ inDim: 6, outDim: 16, numQueries: 4 })),
    ]) {
      randomizeParameters(a, 5);
      const { model } = tinyComposition(a);
      model.trainOnly(['modalities.image.adapter.*']);
      const features = det([16, 6], 6);
      const { loss, dispose } = compositionLoss(model, features, 4);
      const names = a
        .namedParameters()
        .map(([n]) => `modalities.image.adapter.${n}`)
        .filter((n) => /conv2|se\.fc1\.weight|readout\.0\.weight|norm3\.bias|mlp\.0\.weight|peg/.test(n));
      expectGradientsMatchFiniteDifferences(model, loss, { names });
      model.dispose();
      dispose();
      features.dispose();
    }
  });

  it('are registered as c_abstractor and ldp', async () => {
    const registry = createRegistry();
    register(registry);
    for (const type of ['c_abstractor', 'ldp']) {
      const a = (await registry.create('adapter', { type, inDim: 8, outDim: 16, numQueries: 9 })) as CAbstractor;
      expect(a.numSlots({ tokens: 36, prefixTokens: 0, grid: [6, 6] })).toBe(9);
      a.dispose();
    }
  });
});
