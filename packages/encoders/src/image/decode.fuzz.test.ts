// Fuzzing image loading: PNG and JPEG files with bytes flipped (headers included, so declared sizes change)
// or cut short must decode and preprocess, or fail with a plain Error naming the file: no TypeError/RangeError,
// no multi-gigabyte allocation, no hang. Seeded and bounded.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { samplingRandom } from '@vistune/core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageProcessor } from './processor.js';

const fixtureDir = new URL('../../../../fixtures/tiny-llava-hf/', import.meta.url).pathname;
const clipConfig = JSON.parse(readFileSync(`${fixtureDir}preprocessor_config.json`, 'utf8'));

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vistune-image-fuzz-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function mutate(bytes: Uint8Array, next: () => number): Uint8Array {
  if (next() < 0.25) return bytes.slice(0, Math.floor(next() * bytes.length));
  const out = bytes.slice();
  const flips = 1 + Math.floor(next() * 3);
  for (let i = 0; i < flips; i++) {
    // Half the flips hit the first 64 bytes: signature, IHDR / SOF sizes.
    const span = next() < 0.5 ? Math.min(64, out.length) : out.length;
    out[Math.floor(next() * span)] ^= 1 + Math.floor(next() * 255);
  }
  return out;
}

describe('image decode fuzzing (seeded)', () => {
  it.each(['png', 'jpeg'] as const)(
    'mutated %s files load or fail cleanly, naming the file',
    async (format) => {
      const png = readFileSync(`${fixtureDir}image_0.png`);
      const original = new Uint8Array(
        format === 'png' ? png : await sharp(png).jpeg({ quality: 90 }).toBuffer(),
      );
      const processor = ImageProcessor.fromConfig(clipConfig);
      const next = samplingRandom(format === 'png' ? 101 : 202); // seeded: a failing case number reproduces
      const tally = { ok: 0, error: 0 };
      for (let i = 0; i < 80; i++) {
        const path = join(dir, `case-${i}.${format}`);
        await writeFile(path, mutate(original, next));
        try {
          const out = await processor.preprocess(path);
          expect(out.pixelValues.length).toBe(3 * 32 * 32);
          tally.ok++;
        } catch (err) {
          const e = err as Error;
          expect(e, `case ${i}`).toBeInstanceOf(Error);
          expect(['TypeError', 'RangeError'], `case ${i}: ${e.stack}`).not.toContain(e.name);
          expect(e.message, `case ${i}`).toContain(path);
          tally.error++;
        }
      }
      expect(tally.error).toBeGreaterThan(10);
      // PNG chunks carry CRCs, so every flipped PNG is refused; flipped JPEG data often still decodes.
      if (format === 'jpeg') expect(tally.ok).toBeGreaterThan(0);
    },
    30_000,
  );
});
