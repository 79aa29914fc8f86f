import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import {
  createRegistry,
  initBackend,
  LlamaForCausalLM,
  loadSafetensors,
  MultimodalModel,
  parseLlamaConfig,
  tf,
} from '@vistune/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { BlivaQFormerConfigSchema, InstructQFormerConfigSchema, QFormerConfigSchema } from './config.js';
import {
  BlivaQFormerAdapter,
  InstructQFormerAdapter,
  QFormerAdapter,
  qformerConfigFromHF,
} from './qformer.js';
import { register } from './register.js';
import {
  det,
  expectGradientsMatchFiniteDifferences,
  FeatureEncoder,
  randomizeParameters,
  relativeError,
} from './test-utils.js';

const fixture = (name: string) =>
  fileURLToPath(new URL(`../../../fixtures/tiny-qformer/${name}`, import.meta.url));

async function loadFixture(name: 'blip2' | 'instructblip') {
  const config = JSON.parse(await readFile(fixture(`${name}/config.json`), 'utf8')) as Record<
    string,
    unknown
  >;
  const weights = await loadSafetensors(fixture(`${name}/model.safetensors`));
  const expected = await loadSafetensors(fixture(`${name}/expected.safetensors`));
  const connector = new Map([...weights].filter(([n]) => !n.startsWith('language_model.')));
  const llmWeights = new Map(
    [...weights].filter(([n]) => n.startsWith('language_model.')).map(([n, t]) => [n.slice(15), t]),
  );
  const llm = new LlamaForCausalLM(parseLlamaConfig(config.text_config), { random: false });
  llm.loadStateDict(llmWeights, { source: `${name}/model.safetensors` });
  return {
    config,
    connector,
    llm,
    expected,
    dispose: () => tf.dispose([...weights.values(), ...expected.values()]),
  };
}

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

describe('Q-Former (BLIP-2) against the PyTorch reference (tools/qformer_reference.py)', () => {
  it('reproduces query_output, the projected slots and the LLM logits through MultimodalModel', async () => {
    const f = await loadFixture('blip2');
    const registry = createRegistry();
    register(registry);
    const adapter = (await registry.create('adapter', qformerConfigFromHF(f.config))) as QFormerAdapter;
    expect(adapter).toBeInstanceOf(QFormerAdapter);
    adapter.loadStateDict(f.connector, { source: 'blip2/model.safetensors' });
    const image = f.expected.get('image_embeds') as tf.Tensor3D;
    const queryOutput = adapter.queryOutput(image);
    expect(relativeError(queryOutput, f.expected.get('query_output')!)).toBeLessThan(1e-4);
    const slots = adapter.forward(image, { layout: { tokens: 5, prefixTokens: 0 } });
    expect(relativeError(slots, f.expected.get('language_model_inputs')!)).toBeLessThan(1e-4);

    const model = new MultimodalModel({
      llm: f.llm,
      modalities: {
        image: {
          placeholderTokenId: f.config.image_token_index as number,
          encoder: new FeatureEncoder(24),
          select: { layer: -1, strategy: 'full' },
          adapter,
        },
      },
    });
    const ids = f.expected.get('input_ids') as tf.Tensor2D;
    const images = tf.unstack(image);
    const { logits } = model.forward({ inputIds: ids, media: { image: images.map((t) => [t]) } });
    expect(relativeError(logits!, f.expected.get('logits')!)).toBeLessThan(1e-4);
    tf.dispose([queryOutput, slots, logits!, ...images]);
    model.dispose();
    f.dispose();
  });

  it('names its parameters as HF Blip2ForConditionalGeneration and skips the unused text feed-forward', () => {
    const a = new QFormerAdapter(
      QFormerConfigSchema.parse({
        inDim: 6,
        outDim: 8,
        numQueryTokens: 2,
        hiddenSize: 8,
        numHiddenLayers: 2,
        numAttentionHeads: 2,
        intermediateSize: 12,
      }),
    );
    const names = a.namedParameters().map(([n]) => n);
    expect(names[0]).toBe('query_tokens');
    expect(names).toContain('qformer.layernorm.weight');
    expect(names).toContain('qformer.encoder.layer.0.crossattention.attention.key.weight');
    expect(names).not.toContain('qformer.encoder.layer.1.crossattention.attention.key.weight');
    expect(names).toContain('qformer.encoder.layer.1.output_query.LayerNorm.bias');
    expect(names).toContain('language_projection.bias');
    expect(names.some((n) => /\.intermediate\.|\.output\.dense/.test(n) && !n.includes('attention'))).toBe(
      false,
    );
    const state = new Map<string, tf.Tensor>([...a.stateDict()].map(([n, v]) => [n, tf.clone(v)]));
    state.set('qformer.encoder.layer.0.intermediate.dense.weight', tf.zeros([12, 8]));
    expect(a.loadStateDict(state)).toEqual({ missing: [], unexpected: [] });
    state.set('qformer.stray.weight', tf.zeros([1]));
    expect(() => a.loadStateDict(state)).toThrow(/unexpected: qformer.stray.weight/);
    tf.dispose([...state.values()]);
    a.dispose();
  });
});

describe('InstructBLIP Q-Former against the PyTorch reference', () => {
  it('reproduces query_output with qformer_input_ids (padded instruction) and the LLM logits', async () => {
    const f = await loadFixture('instructblip');
    const cfg = InstructQFormerConfigSchema.parse(qformerConfigFromHF(f.config));
    const adapter = new InstructQFormerAdapter(cfg);
    adapter.loadStateDict(f.connector, { source: 'instructblip/model.safetensors' });
    const image = f.expected.get('image_embeds') as tf.Tensor3D;
    const instruction = {
      ids: f.expected.get('qformer_input_ids') as tf.Tensor2D,
      mask: f.expected.get('qformer_attention_mask') as tf.Tensor2D,
    };
    const queryOutput = adapter.queryOutput(image, instruction);
    expect(relativeError(queryOutput, f.expected.get('query_output')!)).toBeLessThan(1e-4);
    const slots = adapter.language_projection.forward(queryOutput) as tf.Tensor3D;
    expect(relativeError(slots, f.expected.get('language_model_inputs')!)).toBeLessThan(1e-4);
    // The LLM with the slots in the placeholders' rows (HF masked_scatter).
    const ids = f.expected.get('input_ids') as tf.Tensor2D;
    const logits = tf.tidy(() => {
      const isSlot = tf.equal(ids, f.config.image_token_index as number);
      const embeds = f.llm.embed(tf.where(isSlot, tf.zerosLike(ids), ids) as tf.Tensor2D);
      const rows = Array.from(isSlot.dataSync()).flatMap((s, i) => (s ? [i] : []));
      const flat = tf.reshape(embeds, [-1, 32]);
      const scattered = tf.scatterND(
        tf.tensor2d(rows, [rows.length, 1], 'int32'),
        tf.reshape(slots, [-1, 32]),
        flat.shape,
      );
      const keep = tf.reshape(tf.logicalNot(isSlot), [-1, 1]);
      const spliced = tf.reshape(tf.add(tf.mul(flat, tf.cast(keep, 'float32')), scattered), embeds.shape);
      return f.llm.lmHead(f.llm.forward({ inputsEmbeds: spliced as tf.Tensor3D }).hidden);
    });
    expect(relativeError(logits, f.expected.get('logits')!)).toBeLessThan(1e-4);
    // The instruction matters: other ids give other queries.
    const other = adapter.queryOutput(image, {
      ...instruction,
      ids: tf.reverse(instruction.ids, 1) as tf.Tensor2D,
    });
    expect(relativeError(other, queryOutput)).toBeGreaterThan(1e-3);
    tf.dispose([queryOutput, slots, logits, other]);
    adapter.dispose();
    f.llm.dispose();
    f.dispose();
  });

  it('reads the instruction from the composition (ctx.text.ids with compacted positions), refuses ids outside its vocabulary', () => {
    const cfg = InstructQFormerConfigSchema.parse({
      inDim: 6,
      outDim: 8,
      numQueryTokens: 2,
      hiddenSize: 8,
      numHiddenLayers: 2,
      numAttentionHeads: 2,
      intermediateSize: 12,
      vocabSize: 30,
      maxPositionEmbeddings: 10,
    });
    const a = new InstructQFormerAdapter(cfg);
    randomizeParameters(a, 4);
    const image = det([1, 3, 6], 2) as tf.Tensor3D;
    // Sample text [7, -200, 9, 4, pad]: the placeholder and the pad are masked, leaving 7, 9, 4 at positions 0, 1, 2.
    const ctx = {
      layout: { tokens: 3, prefixTokens: 0 },
      text: {
        embeds: tf.zeros([1, 5, 8]) as tf.Tensor3D,
        mask: tf.tensor2d([[1, 0, 1, 1, 0]]),
        ids: tf.tensor2d([[7, -200, 9, 4, 0]], undefined, 'int32'),
      },
    };
    const viaContext = a.forward(image, ctx);
    const direct = a.language_projection.forward(
      a.queryOutput(image, {
        ids: tf.tensor2d([[7, 9, 4]], undefined, 'int32'),
        mask: tf.ones([1, 3]) as tf.Tensor2D,
      }),
    );
    expect(relativeError(viaContext, direct)).toBeLessThan(1e-5);
    expect(() =>
      a.forward(image, {
        ...ctx,
        text: { ...ctx.text, ids: tf.tensor2d([[7, -200, 31, 4, 0]], undefined, 'int32') },
      }),
    ).toThrow(/instruction token id 31 is outside the Q-Former vocabulary \(vocabSize 30\): set vocabSize/);
    expect(() => a.forward(image, { layout: ctx.layout })).toThrow(/no instruction ids were passed/);
    a.dispose();
  });
});

/** An instruction-aware Q-Former small enough for finite differences. */
const tinyInstruct = (numHiddenLayers: number) => ({
  inDim: 4,
  outDim: 6,
  numQueryTokens: 2,
  hiddenSize: 8,
  numHiddenLayers,
  numAttentionHeads: 2,
  intermediateSize: 8,
  vocabSize: 12,
  maxPositionEmbeddings: 6,
});

describe('Q-Former training on wasm', () => {
  it('every parameter of the instruction-aware Q-Former gets the finite-difference gradient', () => {
    const cfg = InstructQFormerConfigSchema.parse(tinyInstruct(2));
    const a = new InstructQFormerAdapter(cfg);
    randomizeParameters(a, 11);
    const image = det([2, 3, 4], 3) as tf.Tensor3D;
    const instruction = {
      ids: tf.tensor2d(
        [
          [3, 5, 7],
          [2, 4, 0],
        ],
        undefined,
        'int32',
      ),
      mask: tf.tensor2d([
        [1, 1, 1],
        [1, 1, 0],
      ]),
    };
    const probe = det([2, 2, 6], 5);
    const loss = () =>
      tf.tidy(
        () =>
          tf.sum(
            tf.mul(a.language_projection.forward(a.queryOutput(image, instruction)), probe),
          ) as tf.Scalar,
      );
    // Embedding rows that no id reads get no gradient: check the rows the instruction uses via their tables.
    expectGradientsMatchFiniteDifferences(a, loss, { perParam: 2 });
    a.dispose();
  });
});

describe('BLIVA Q-Former', () => {
  it('appends the projected patch features after the query slots', () => {
    const cfg = BlivaQFormerConfigSchema.parse(tinyInstruct(1));
    const a = new BlivaQFormerAdapter(cfg);
    randomizeParameters(a, 2);
    const layout = { tokens: 3, prefixTokens: 0 };
    expect(a.numSlots(layout)).toBe(5);
    const image = det([1, 3, 4], 1) as tf.Tensor3D;
    const text = {
      embeds: tf.zeros([1, 2, 6]) as tf.Tensor3D,
      mask: tf.ones([1, 2]) as tf.Tensor2D,
      ids: tf.tensor2d([[1, 2]], undefined, 'int32'),
    };
    const out = a.forward(image, { layout, text });
    expect(out.shape).toEqual([1, 5, 6]);
    const patches = tf.slice(out, [0, 2, 0], [1, 3, 6]);
    expect(relativeError(patches, a.vision_projection.forward(image))).toBeLessThan(1e-6);
    a.dispose();
  });
});
