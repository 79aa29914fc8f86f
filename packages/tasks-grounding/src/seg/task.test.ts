// The `lisa_seg` task family through the registry, as `vistune train` uses it: prepareModel adds [SEG] and the
// head to any composition (in place when the vocabulary has room), targets reads the records' masks, and the
// answer metric scores the text without the [SEG] the reference holds.
import { register as registerAdapters } from '@vistune/adapters';
import {
  type AnswerMetric,
  createModel,
  createRegistry,
  initBackend,
  type MultimodalModel,
  type Registry,
  register as registerCore,
  type Sample,
  type TaskContext,
  type TaskFamily,
  type Tokenizer,
} from '@vistune/core';
import { register as registerEncoders } from '@vistune/encoders';
import { beforeAll, describe, expect, it } from 'vitest';
import { maskToRle } from '../refcoco/index.js';
import { register } from '../register.js';
import type { LisaSegHead, SegMaskTarget } from './head.js';
import { TINY_VISION, tinyTokenizer } from './test-utils.js';

let registry: Registry;

/** A vistune composition (llama + CLIP tower + MLP projector) whose LLM has `vocab` rows. */
const composition = (vocab: number) => ({
  model_type: 'vistune',
  llm: {
    type: 'llama',
    config: {
      vocab_size: vocab,
      hidden_size: 16,
      intermediate_size: 32,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      max_position_embeddings: 64,
    },
  },
  modalities: {
    image: {
      placeholder_token_id: 4,
      encoder: { type: 'clip_vision', ...TINY_VISION },
      adapter: { type: 'mlp2x_gelu' },
    },
  },
});

const TASK = {
  type: 'lisa_seg',
  head: { readOffset: 0, decoder: { dim: 8, heads: 2, depth: 1, mlpDim: 16 } },
};

const task = (config: unknown = TASK) => registry.createSync('task', config, { path: 'task' }) as TaskFamily;

const context = (model: MultimodalModel, tokenizer: Tokenizer): TaskContext => ({
  model,
  tokenizer,
  registry,
  config: TASK,
});

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  registry = createRegistry();
  registerCore(registry);
  registerEncoders(registry);
  registerAdapters(registry);
  register(registry);
});

describe('the lisa_seg task family', () => {
  it('adds [SEG] and the head in place when the vocabulary has room; a second prepare keeps the model', async () => {
    const tokenizer = tinyTokenizer(322);
    const model = await createModel(composition(330), registry, { seed: 1 });
    const lisa = task();
    expect(lisa.media).toEqual(['image']);
    const prepared = await lisa.prepareModel?.(context(model, tokenizer));
    expect(prepared).toBe(model);
    expect(tokenizer.tokenToId('[SEG]')).toBe(322);
    const head = model.heads[0] as LisaSegHead;
    expect(model.heads.map((h) => h.name)).toEqual(['lisa_seg']);
    expect(head.triggerTokenId).toBe(322);
    expect(head.readOffset).toBe(0);
    expect(model.composition?.heads).toEqual([
      expect.objectContaining({ type: 'lisa_seg', triggerTokenId: 322 }),
    ]);
    // A model loaded with its head (fine-tuning a LISA folder) is kept as it is.
    expect(await lisa.prepareModel?.(context(model, tokenizer))).toBe(model);
    expect(model.heads).toHaveLength(1);
    model.dispose();
  });

  it('grows the LLM when the tokenizer outgrew it: a new vistune model with vocab_size + 1', async () => {
    const tokenizer = tinyTokenizer(322);
    const model = await createModel(composition(322), registry, { seed: 1 });
    const prepared = (await task().prepareModel?.(context(model, tokenizer))) as MultimodalModel;
    expect(prepared).not.toBe(model);
    expect(prepared.llm.vocabSize).toBe(323);
    expect(prepared.family?.name).toBe('vistune');
    expect(prepared.composition?.llm.config).toMatchObject({ vocab_size: 323 });
    expect(prepared.composition?.heads.map((h) => h.type)).toEqual(['lisa_seg']);
    expect(new Map(prepared.namedParameters()).has('heads.lisa_seg.text_hidden_fcs.0.0.weight')).toBe(true);
    prepared.dispose();
  });

  it("refuses a tokenizer whose [SEG] is not the head's trigger", async () => {
    const model = await createModel(composition(330), registry, { seed: 1 });
    await task().prepareModel?.(context(model, tinyTokenizer(322)));
    const other = tinyTokenizer(325);
    await expect(task().prepareModel?.(context(model, other))).rejects.toThrow(
      /tokenizer has no \[SEG\] token: run the task's prepareModel first/,
    );
    other.addTokens(['[SEG]'], { special: true });
    await expect(task().prepareModel?.(context(model, other))).rejects.toThrow(
      /head 'lisa_seg' is triggered by token 322 but the tokenizer's \[SEG\] is 325: use the tokenizer saved with the model/,
    );
    model.dispose();
  });

  it("reads each record's masks for the head (one per [SEG], in order), keyed by the head's name", () => {
    const tokenizer = tinyTokenizer(322);
    tokenizer.addTokens(['[SEG]'], { special: true });
    const targets = task({ ...TASK, head: { ...TASK.head, name: 'seg' } }).targets?.({
      ...context({} as MultimodalModel, tokenizer),
    });
    expect(targets?.triggers).toEqual({ seg: 322 });
    const a = Uint8Array.from([1, 0, 0, 0, 1, 1]);
    const b = Uint8Array.from([0, 0, 1, 1, 0, 0]);
    const record = { truth: [{ masks: [maskToRle(a, 3, 2)] }, {}, { masks: [maskToRle(b, 3, 2)] }] };
    const read = targets?.read(record, {} as Sample) as Record<string, SegMaskTarget[]>;
    expect(read.seg?.map((t) => [Array.from(t.mask), t.width, t.height])).toEqual([
      [Array.from(a), 3, 2],
      [Array.from(b), 3, 2],
    ]);
    expect(targets?.read({ id: 'text only' }, {} as Sample)).toEqual({ seg: [] });
  });

  it('names the config field a recipe must not set', () => {
    expect(() => task({ ...TASK, head: { triggerTokenId: 3 } })).toThrow(
      /task\.head\.triggerTokenId[\s\S]*filled in by the lisa_seg task/,
    );
    expect(() => task({ ...TASK, heads: {} })).toThrow(/invalid task 'lisa_seg' config[\s\S]*heads/);
  });

  it('scores answers on their text: [SEG] removed from the reference (eval decodes without special tokens)', () => {
    const [config] = task().metrics ?? [];
    const metric = registry.createSync('metric', config) as AnswerMetric;
    const exact = registry.createSync('metric', { type: 'exact_match' }) as AnswerMetric;
    const answer = (prediction: string, reference: string) => ({
      prediction,
      reference,
      question: 'Segment the red circle.',
      record: {},
      processed: {},
    });
    expect(metric.score(answer('Sure, red circle.', 'Sure, [SEG] red circle.'))).toBe(1);
    expect(exact.score(answer('Sure, red circle.', 'Sure, [SEG] red circle.'))).toBe(0);
    expect(metric.score(answer('Sure, blue square.', 'Sure, [SEG] red circle.'))).toBe(0);
    expect(metric.score(answer('Sure,[SEG]', 'Sure, [SEG].'))).toBe(1);
  });
});
