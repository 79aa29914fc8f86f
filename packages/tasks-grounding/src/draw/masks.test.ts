import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { MASK_COLOURS, overlayMasks } from './masks.js';

describe('overlayMasks', () => {
  it('blends each mask with its colour at half opacity and leaves other pixels alone', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'overlay-'));
    const input = join(dir, 'in.png');
    const grey = Buffer.alloc(2 * 2 * 3, 100);
    await sharp(grey, { raw: { width: 2, height: 2, channels: 3 } })
      .png()
      .toFile(input);
    const out = join(dir, 'out.png');
    await overlayMasks(input, [Uint8Array.from([1, 0, 0, 0]), Uint8Array.from([0, 0, 0, 1])], out);
    const { data } = await sharp(out).raw().toBuffer({ resolveWithObject: true });
    const [c0, c1] = [MASK_COLOURS[0] ?? [], MASK_COLOURS[1] ?? []];
    expect([...data.subarray(0, 3)]).toEqual(c0.map((v) => Math.round(50 + v / 2)));
    expect([...data.subarray(3, 9)]).toEqual([100, 100, 100, 100, 100, 100]);
    expect([...data.subarray(9, 12)]).toEqual(c1.map((v) => Math.round(50 + v / 2)));
    await expect(overlayMasks(input, [new Uint8Array(3)], out)).rejects.toThrow(
      /mask 0 has 3 pixels but .* is 2×2/,
    );
    await rm(dir, { recursive: true, force: true });
  });
});
