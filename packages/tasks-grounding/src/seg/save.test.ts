// A LISA model saved as a HF LLaVA folder (head weights under heads.lisa_seg.*, the head's registry config in
// config.json vistune_heads) and loaded back through core's loadLlava gives bit-identical logits and masks.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { register as registerAdapters } from '@vistune/adapters';
import {
  createLlava,
  createRegistry,
  initBackend,
  LlavaForConditionalGeneration,
  loadLlava,
  type MultimodalModel,
  type Registry,
  readSafetensorsHeader,
  register as registerCore,
  saveLlava,
  Tokenizer,
  tf,
} from '@vistune/core';
import { register as registerEncoders, VisionTransformer } from '@vistune/encoders';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { register } from '../register.js';
import { lisaSegHeadOptions, lisaSegHeadSchema } from './config.js';
import { LisaSegHead, type SegHeadOutput } from './head.js';
import { attachLisaHead } from './model.js';
import { det, tinyTokenizer } from './test-utils.js';

let dir: string;
let registry: Registry;

const LLAVA = {
  model_type: 'llava',
  image_token_index: 4,
  vision_feature_layer: -1,
  text_config: {
    model_type: 'llama',
    vocab_size: 322,
    hidden_size: 16,
    intermediate_size: 32,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 2,
    max_position_embeddings: 64,
    tie_word_embeddings: false,
  },
  vision_config: {
    model_type: 'clip_vision_model',
    hidden_size: 16,
    intermediate_size: 32,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    image_size: 16,
    patch_size: 4,
  },
};

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  dir = await mkdtemp(join(tmpdir(), 'lisa-save-'));
  registry = createRegistry();
  registerCore(registry);
  registerEncoders(registry);
  registerAdapters(registry);
  register(registry);
  // 322 tokens, the LLM's vocabulary: [SEG] becomes id 322 and grows the table to 323.
  await tinyTokenizer(322).saveTo(join(dir, 'tok'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function tinyLisa(): Promise<{ model: MultimodalModel; head: LisaSegHead; tokenizer: Tokenizer }> {
  const tokenizer = await Tokenizer.fromDir(join(dir, 'tok'));
  const base = await createLlava(LLAVA, registry, { seed: 7 });
  const { model, head } = await attachLisaHead(base, tokenizer, registry, {
    head: { readOffset: 0, decoder: { dim: 8, heads: 2, depth: 1, mlpDim: 16, pixelSkip: true } },
  });
  return { model, head, tokenizer };
}

/** LM logits and the head's mask logits for a prompt with an image and two [SEG]. */
function outputs(
  model: MultimodalModel,
  head: LisaSegHead,
  segId: number,
): { lm: Float32Array; masks: Float32Array } {
  const ids = [1, ...Array(16).fill(4), 20, 21, segId, 30, segId, 2];
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

describe('saving and loading a LISA model (saveLlava / loadLlava)', () => {
  it('writes head weights under heads.lisa_seg.* and the head config; loads back bit-identical', async () => {
    const { model, head, tokenizer } = await tinyLisa();
    expect(model).toBeInstanceOf(LlavaForConditionalGeneration);
    const out = join(dir, 'model');
    await saveLlava(model as LlavaForConditionalGeneration, out);
    await tokenizer.saveTo(out);
    const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
    expect(config.text_config.vocab_size).toBe(323); // [SEG] grew the table
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
    const loaded = await loadLlava(out, registry);
    const loadedHead = loaded.heads[0] as LisaSegHead;
    expect(loadedHead.triggerTokenId).toBe(322);
    expect(loaded.numParameters()).toBe(model.numParameters());
    const after = outputs(loaded, loadedHead, 322);
    expect(Buffer.from(after.lm.buffer).equals(Buffer.from(before.lm.buffer))).toBe(true);
    expect(Buffer.from(after.masks.buffer).equals(Buffer.from(before.masks.buffer))).toBe(true);
    expect(after.masks.length).toBe(2 * 16 * 16);

    // Saving the loaded model again keeps one head entry (a loaded config's list is not duplicated).
    await saveLlava(loaded, join(dir, 'again'));
    const again = JSON.parse(await readFile(join(dir, 'again', 'config.json'), 'utf8'));
    expect(again.vistune_heads).toHaveLength(1);
    model.dispose();
    loaded.dispose();
  });

  it('a model without heads writes no vistune_heads; corrupt head weights are an error naming the folder', async () => {
    const plain = await createLlava(LLAVA, registry, { seed: 1 });
    const out = join(dir, 'plain');
    await saveLlava(plain, out);
    const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
    expect(config.vistune_heads).toBeUndefined();
    // A config naming a head whose weights the folder lacks.
    const { model } = await tinyLisa();
    const headConfig = (model.heads[0] as LisaSegHead).headConfig();
    await writeFile(join(out, 'config.json'), JSON.stringify({ ...config, vistune_heads: [headConfig] }));
    await expect(loadLlava(out, registry)).rejects.toThrow(
      /plain \(heads\.lisa_seg\.\*\)[\s\S]*missing: text_hidden_fcs/,
    );
    plain.dispose();
    model.dispose();
  });

  it('a head with its own vision encoder refuses to be saved', async () => {
    const { model, head } = await tinyLisa();
    const separate = new LisaSegHead(lisaSegHeadOptions(lisaSegHeadSchema.parse(head.headConfig())));
    const tower = VisionTransformer.fromHFConfig({ ...LLAVA.vision_config }, { seed: 2 });
    separate.bindVision(tower, { own: true });
    expect(() => separate.headConfig()).toThrow(/own vision encoder[\s\S]*cannot be saved/);
    separate.dispose();
    model.dispose();
  });
});
