// A LISA model saved through its family (model.save) and loaded back with loadPretrained gives bit-identical
// logits and masks: a LLaVA with room for [SEG] stays a LLaVA (head weights under heads.lisa_seg.*, the head's
// registry config in config.json vistune_heads); one whose vocabulary grows becomes a vistune composition.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { register as registerAdapters } from '@vistune/adapters';
import {
  createModel,
  createRegistry,
  initBackend,
  loadPretrained,
  type MultimodalModel,
  type Registry,
  readSafetensorsHeader,
  register as registerCore,
  Tokenizer,
  tf,
} from '@vistune/core';
import { register as registerEncoders, VisionTransformer } from '@vistune/encoders';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { register } from '../register.js';
import { lisaSegHeadOptions, lisaSegHeadSchema } from './config.js';
import { LisaSegHead, type SegHeadOutput } from './head.js';
import { attachLisaHead } from './model.js';
import { det, TINY_VISION, tinyTokenizer } from './test-utils.js';

let dir: string;
let registry: Registry;

/** A tiny LLaVA config.json whose text vocabulary has `vocab` rows. */
const llava = (vocab: number) => ({
  model_type: 'llava',
  image_token_index: 4,
  vision_feature_layer: -1,
  text_config: {
    model_type: 'llama',
    vocab_size: vocab,
    hidden_size: 16,
    intermediate_size: 32,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 2,
    max_position_embeddings: 64,
    tie_word_embeddings: false,
  },
  vision_config: { model_type: 'clip_vision_model', ...TINY_VISION },
});
/** The tokenizer has 322 tokens: [SEG] becomes id 322. */
const FULL = 322;
const ROOMY = 330;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  dir = await mkdtemp(join(tmpdir(), 'lisa-save-'));
  registry = createRegistry();
  registerCore(registry);
  registerEncoders(registry);
  registerAdapters(registry);
  register(registry);
  await tinyTokenizer(FULL).saveTo(join(dir, 'tok'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function tinyLisa(
  vocab: number,
  onBase: (base: MultimodalModel) => void = () => undefined,
): Promise<{ model: MultimodalModel; head: LisaSegHead; tokenizer: Tokenizer; base: MultimodalModel }> {
  const tokenizer = await Tokenizer.fromDir(join(dir, 'tok'));
  const base = await createModel(llava(vocab), registry, { seed: 7 });
  onBase(base);
  const { model, head } = await attachLisaHead(base, tokenizer, registry, {
    head: { readOffset: 0, decoder: { dim: 8, heads: 2, depth: 1, mlpDim: 16, pixelSkip: true } },
  });
  return { model, head, tokenizer, base };
}

const IDS = (segId: number) => [1, ...Array(16).fill(4), 20, 21, segId, 30, segId, 2];

/** LM logits and the head's mask logits for a prompt with an image and two [SEG]. */
function outputs(
  model: MultimodalModel,
  head: LisaSegHead,
  segId: number,
): { lm: Float32Array; masks: Float32Array } {
  const ids = IDS(segId);
  const pixels = det([3, 16, 16], 3) as tf.Tensor3D;
  const inputIds = tf.tensor2d([ids], undefined, 'int32');
  const out = model.forward({ inputIds, media: { image: [[pixels]] } });
  const result = out.heads[head.name];
  if (!result) throw new Error('the head did not run');
  const masks = (result.output as SegHeadOutput).logits;
  const values = { lm: out.logits?.dataSync() as Float32Array, masks: masks.dataSync() as Float32Array };
  tf.dispose([pixels, inputIds, out.logits, masks, out.loss, out.lmLoss]);
  return values;
}

/** Saves through the model's family, checks the head entry and weights, loads back and compares outputs. */
async function roundTrip(model: MultimodalModel, head: LisaSegHead, tokenizer: Tokenizer, out: string) {
  await model.save(out, { tokenizer });
  await tokenizer.saveTo(out);
  const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
  expect(config.vistune_heads).toEqual([
    expect.objectContaining({
      type: 'lisa_seg',
      name: 'lisa_seg',
      triggerTokenId: 322,
      readOffset: 0,
      llmHiddenSize: 16,
      visionHiddenSize: 16,
      decoder: expect.objectContaining({ dim: 8, pixelSkip: true }),
    }),
  ]);
  const names = [...(await readSafetensorsHeader(join(out, 'model.safetensors'))).tensors.keys()];
  const headNames = names.filter((n) => n.startsWith('heads.lisa_seg.'));
  expect(headNames).toContain('heads.lisa_seg.text_hidden_fcs.0.0.weight');
  expect(headNames).toHaveLength(head.namedParameters().length);
  expect(names.filter((n) => n.startsWith('heads.lisa_seg.visual_model'))).toEqual([]); // the tower is shared

  const before = outputs(model, head, 322);
  const loaded = await loadPretrained(out, registry);
  const loadedHead = loaded.heads[0] as LisaSegHead;
  expect(loadedHead.triggerTokenId).toBe(322);
  expect(loaded.family?.name).toBe(model.family?.name);
  expect(loaded.numParameters()).toBe(model.numParameters());
  const after = outputs(loaded, loadedHead, 322);
  expect(Buffer.from(after.lm.buffer).equals(Buffer.from(before.lm.buffer))).toBe(true);
  expect(Buffer.from(after.masks.buffer).equals(Buffer.from(before.masks.buffer))).toBe(true);
  expect(after.masks.length).toBe(2 * 16 * 16);

  // Saving the loaded model again keeps one head entry (a loaded config's list is not duplicated).
  await loaded.save(join(out, 'again'));
  const again = JSON.parse(await readFile(join(out, 'again', 'config.json'), 'utf8'));
  expect(again.vistune_heads).toHaveLength(1);
  loaded.dispose();
  return config;
}

describe('saving and loading a LISA model (model.save / loadPretrained)', () => {
  it('a LLaVA with room for [SEG] gets the head in place and saves as a LLaVA with it', async () => {
    const { model, head, tokenizer, base } = await tinyLisa(ROOMY);
    expect(model).toBe(base);
    expect(model.family?.name).toBe('llava');
    expect(model.heads).toEqual([head]);
    const config = await roundTrip(model, head, tokenizer, join(dir, 'llava'));
    expect(config.model_type).toBe('llava');
    expect(config.text_config.vocab_size).toBe(ROOMY);
    model.dispose();
  });

  it('growing the vocabulary rebuilds the model as a vistune composition: old rows and logits kept', async () => {
    const ids = tf.tensor2d([[1, ...Array(16).fill(4), 20, 21, 30, 2]], undefined, 'int32');
    const pixels = det([3, 16, 16], 3) as tf.Tensor3D;
    const logits = (m: MultimodalModel) => {
      const out = m.forward({ inputIds: ids, media: { image: [[pixels]] } }, {});
      const kept = tf.slice(out.logits as tf.Tensor3D, [0, 0, 0], [-1, -1, FULL]);
      const values = Array.from(kept.dataSync());
      tf.dispose([out.logits, kept]);
      return values;
    };
    let baseLogits: number[] = [];
    let baseSelect: unknown;
    const { model, head, tokenizer, base } = await tinyLisa(FULL, (b) => {
      baseLogits = logits(b);
      baseSelect = b.composition?.modalities.image?.select;
    });
    expect(model).not.toBe(base);
    expect(model.family?.name).toBe('vistune');
    expect(logits(model)).toEqual(baseLogits);
    const table = new Map(model.namedParameters()).get('llm.model.embed_tokens.weight') as tf.Variable;
    expect(table.shape).toEqual([FULL + 1, 16]);
    tf.dispose([ids, pixels]);
    const config = await roundTrip(model, head, tokenizer, join(dir, 'grown'));
    expect(config.model_type).toBe('vistune');
    expect(config.llm).toMatchObject({ type: 'llama', config: { vocab_size: FULL + 1, hidden_size: 16 } });
    expect(config.modalities.image).toMatchObject({
      placeholder_token_id: 4,
      encoder: { type: 'clip_vision', hidden_size: 16, image_size: 16, patch_size: 4 },
      select: baseSelect,
      adapter: { type: 'mlp2x_gelu' },
    });
    model.dispose();
  });

  it('a model without heads writes no vistune_heads; corrupt head weights are an error naming the folder', async () => {
    const plain = await createModel(llava(ROOMY), registry, { seed: 1 });
    const out = join(dir, 'plain');
    await plain.save(out);
    const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
    expect(config.vistune_heads).toBeUndefined();
    // A config naming a head whose weights the folder lacks.
    const { model } = await tinyLisa(ROOMY);
    const headConfig = (model.heads[0] as LisaSegHead).headConfig();
    await writeFile(join(out, 'config.json'), JSON.stringify({ ...config, vistune_heads: [headConfig] }));
    await expect(loadPretrained(out, registry)).rejects.toThrow(
      /plain \(heads\.lisa_seg\.\*\)[\s\S]*missing: text_hidden_fcs/,
    );
    plain.dispose();
    model.dispose();
  });

  it('a head with its own vision encoder refuses to be saved', async () => {
    const { model, head } = await tinyLisa(ROOMY);
    const separate = new LisaSegHead(lisaSegHeadOptions(lisaSegHeadSchema.parse(head.headConfig())));
    const tower = VisionTransformer.fromHFConfig({ ...llava(ROOMY).vision_config }, { seed: 2 });
    separate.bindVision(tower, { own: true });
    expect(() => separate.headConfig()).toThrow(/own vision encoder[\s\S]*cannot be saved/);
    separate.dispose();
    model.dispose();
  });
});
