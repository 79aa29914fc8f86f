import { createRegistry, initBackend, tf } from '@vistune/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { register } from '../register.js';
import { ImagePatchesEncoder, imagePatchesConfigSchema, patchifyImages } from './encoder.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
});

/** Fuyu's patch order by hand: token (row, col), then pixel (y, x), channel innermost; outside the image = pad. */
function referencePatches(pixels: number[][][], p: number, pad: number): number[][] {
  const [C, H, W] = [pixels.length, pixels[0]!.length, pixels[0]![0]!.length];
  const rows = Math.ceil(H / p);
  const cols = Math.ceil(W / p);
  const out: number[][] = [];
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      const patch: number[] = [];
      for (let y = 0; y < p; y++)
        for (let x = 0; x < p; x++)
          for (let ch = 0; ch < C; ch++) {
            const [yy, xx] = [r * p + y, c * p + x];
            patch.push(yy < H && xx < W ? (pixels[ch]![yy]![xx] as number) : pad);
          }
      out.push(patch);
    }
  return out;
}

describe('image_patches (no encoder: Fuyu / OtterHD)', () => {
  it('cuts any size into raw patches in Fuyu’s order, padding the last row and column', () => {
    const [C, H, W, p] = [3, 5, 7, 3];
    const values = Array.from({ length: C * H * W }, (_, i) => i / 10);
    const image = tf.tensor4d(values, [1, C, H, W]);
    const got = patchifyImages(image, p, -1).arraySync()[0];
    const pixels = image.arraySync()[0] as number[][][];
    expect(got).toEqual(referencePatches(pixels, p, -1).map((row) => row.map((v) => Math.fround(v))));
    image.dispose();
  });

  it('reports the grid from the item shape alone and returns the patches as its one hidden state', () => {
    const e = new ImagePatchesEncoder(imagePatchesConfigSchema.parse({ patch_size: 8 }));
    expect(e.hiddenSize).toBe(192);
    expect(e.featureLayout([3, 20, 36])).toEqual({ tokens: 15, prefixTokens: 0, grid: [3, 5] });
    const batch = tf.zeros([2, 3, 20, 36]);
    const out = e.forward(batch);
    expect(out.hiddenStates[0]?.shape).toEqual([2, 15, 192]);
    expect(() => e.forward(batch, { hiddenStates: [1] })).toThrow(/select layer -1/);
    expect(() => e.featureLayout([1, 8, 8])).toThrow(/\[3, H, W\]/);
    expect(e.namedParameters()).toEqual([]);
    tf.dispose([batch, ...out.hiddenStates]);
  });

  it('is registered as image_patches and describes itself for saving', async () => {
    const registry = createRegistry();
    register(registry);
    const e = (await registry.create('encoder', { type: 'image_patches', patch_size: 16 })) as ImagePatchesEncoder;
    expect(e.componentConfig()).toEqual({ type: 'image_patches', patch_size: 16, num_channels: 3, padding_value: 0 });
  });
});
