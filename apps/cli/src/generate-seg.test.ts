// vistune generate on a LISA model folder (a LLaVA with a [SEG] mask head, saved by saveLlava): the head is
// loaded with the model, --json prints one mask summary per generated [SEG] (size, area, bbox, COCO RLE
// counts), and --overlay tints the mask pixels.
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { register as registerAdapters } from '@vistune/adapters';
import {
  createRegistry,
  initBackend,
  type LlavaForConditionalGeneration,
  loadLlava,
  register as registerCore,
  saveLlava,
  Tokenizer,
  tf,
} from '@vistune/core';
import { decodeImage, type ImageProcessor, register as registerEncoders } from '@vistune/encoders';
import { attachLisaHead, register as registerGrounding } from '@vistune/tasks-grounding';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const bin = new URL('../dist/bin.js', import.meta.url).pathname;
const fixture = new URL('../../../fixtures/tiny-llava-hf/', import.meta.url).pathname;
const image = `${fixture}image_0.png`;
const run = promisify(execFile);
let dir: string;
let segTokenId: number;

interface MaskJson {
  size: [number, number];
  area: number;
  bbox: [number, number, number, number] | null;
  counts: number[];
}
interface GenerateJson {
  ids: number[];
  inputIds: number[];
  masks?: MaskJson[];
}

const generate = async (model: string, extra: string[] = []): Promise<GenerateJson> => {
  const args = [bin, 'generate', '--model', model, '--image', image, '--prompt', 'Segment the red circle.'];
  const { stdout } = await run(process.execPath, [...args, '--max-new-tokens', '1', '--json', ...extra]);
  return JSON.parse(stdout) as GenerateJson;
};

/** Column-major COCO counts → row-major mask (decoded here, independently of the package's maskToRle). */
function decodeCounts({ size: [h, w], counts }: MaskJson): Uint8Array {
  const mask = new Uint8Array(h * w);
  let at = 0;
  counts.forEach((run, i) => {
    for (let k = 0; k < run; k++, at++) if (i % 2) mask[(at % h) * w + Math.floor(at / h)] = 1;
  });
  return mask;
}

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  dir = await mkdtemp(join(tmpdir(), 'vistune-seg-'));
  const registry = createRegistry();
  registerCore(registry);
  registerEncoders(registry);
  registerAdapters(registry);
  registerGrounding(registry);
  // The HF LLaVA fixture plus a [SEG] head (its embedding table already has room for the new token).
  const tokenizer = await Tokenizer.fromDir(fixture);
  const base = await loadLlava(fixture, registry);
  const { model, segTokenId: seg } = await attachLisaHead(base, tokenizer, registry, {
    head: { readOffset: 0, decoder: { dim: 8, heads: 2, depth: 1, mlpDim: 16 } },
  });
  segTokenId = seg;
  const llava = model as LlavaForConditionalGeneration;
  const save = async () => {
    await saveLlava(llava, join(dir, 'lisa'));
    await tokenizer.saveTo(join(dir, 'lisa'));
    await copyFile(join(fixture, 'preprocessor_config.json'), join(dir, 'lisa', 'preprocessor_config.json'));
  };
  await save();
  // Make the model answer [SEG] first: its output row becomes the prompt's last hidden state, scaled so that
  // its logit (100·|h|) dwarfs every other.
  const { inputIds } = await generate(join(dir, 'lisa'));
  const processor = (await registry.create('processor', {
    type: 'clip',
    pretrained: join(dir, 'lisa'),
  })) as ImageProcessor;
  const processed = await processor.preprocess(image);
  tf.tidy(() => {
    const ids = tf.tensor2d([inputIds], undefined, 'int32');
    const img = tf.tensor3d(processed.pixelValues, [3, processed.height, processed.width]);
    const embeds = llava.embedInputs(ids, { image: [[img]] });
    const { hidden } = llava.llm.forward({ inputsEmbeds: embeds });
    const last = tf.reshape(tf.slice(hidden, [0, inputIds.length - 1, 0], [1, 1, -1]), [1, -1]);
    const params = new Map(llava.llm.namedParameters());
    const table = (params.get('lm_head.weight') ?? params.get('model.embed_tokens.weight')) as tf.Variable;
    const [rows, width] = table.shape as [number, number];
    const row = tf.mul(last, tf.div(100, tf.norm(last)));
    const above = tf.slice(table, [0, 0], [segTokenId, width]);
    const below = tf.slice(table, [segTokenId + 1, 0], [rows - segTokenId - 1, width]);
    table.assign(tf.concat([above, row, below]));
  });
  await save();
  model.dispose();
}, 60_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('vistune generate with a [SEG] head', () => {
  it('--json prints one mask per generated [SEG]: size, area, bbox and COCO RLE counts that agree', async () => {
    const out = await generate(join(dir, 'lisa'));
    const segs = out.ids.filter((id) => id === segTokenId).length;
    expect(segs).toBe(1);
    expect(out.masks).toHaveLength(segs);
    const m = out.masks?.[0] as MaskJson;
    expect(m.size).toEqual([32, 32]); // the image's own size (one mask value per pixel)
    expect(m.counts.reduce((a, b) => a + b, 0)).toBe(32 * 32);
    const mask = decodeCounts(m);
    expect(mask.reduce((a, b) => a + b, 0)).toBe(m.area);
    expect(m.area).toBeGreaterThan(0); // a mask with both object and background pixels (checks mean more)
    expect(m.area).toBeLessThan(32 * 32);
    const xs: number[] = [];
    const ys: number[] = [];
    mask.forEach((v, i) => {
      if (v) {
        xs.push(i % 32);
        ys.push(Math.floor(i / 32));
      }
    });
    expect(m.bbox).toEqual(
      xs.length ? [Math.min(...xs), Math.min(...ys), Math.max(...xs) + 1, Math.max(...ys) + 1] : null,
    );
  });

  it('--overlay tints exactly the mask pixels (no --codec needed)', async () => {
    const overlay = join(dir, 'overlay.png');
    const out = await generate(join(dir, 'lisa'), ['--overlay', overlay]);
    const mask = decodeCounts(out.masks?.[0] as MaskJson);
    const [original, drawn] = await Promise.all([decodeImage(image), decodeImage(overlay)]);
    const scale = drawn.width / original.width;
    expect(scale).toBe(1); // masks are blended at the image's own size (only box drawing upscales)
    let tinted = 0;
    let changedOutside = 0;
    for (let i = 0; i < mask.length; i++) {
      const x = (i % 32) * scale;
      const y = Math.floor(i / 32) * scale;
      const a = original.data.subarray(i * 3, i * 3 + 3);
      const at = (y * drawn.width + x) * 3;
      const b = drawn.data.subarray(at, at + 3);
      const same = a.every((v, c) => v === b[c]);
      if (mask[i] && !same) tinted++;
      if (!mask[i] && !same) changedOutside++;
    }
    expect(tinted).toBe(mask.reduce((s, v) => s + v, 0) - countRed(original, mask));
    expect(changedOutside).toBe(0);
  });
});

/** Mask pixels whose colour the red tint at opacity 0.5 leaves unchanged (none but pure tint colour). */
function countRed(img: { data: Uint8Array }, mask: Uint8Array): number {
  let n = 0;
  mask.forEach((v, i) => {
    if (v && img.data[i * 3] === 255 && img.data[i * 3 + 1] === 48 && img.data[i * 3 + 2] === 48) n++;
  });
  return n;
}
