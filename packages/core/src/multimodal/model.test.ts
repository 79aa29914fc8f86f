import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { parseLlamaConfig } from '../llm/config.js';
import { LlamaForCausalLM } from '../llm/llama.js';
import { Initializer } from '../nn/init.js';
import { Linear } from '../nn/linear.js';
import { Module } from '../nn/module.js';
import { MultimodalModel } from './model.js';
import { applyFeatureSelect } from './select.js';
import type {
  Adapter,
  AdapterContext,
  DecoderBlockHook,
  EncodeOptions,
  EncoderOutput,
  FeatureLayout,
  Head,
  HeadInput,
  HeadOutput,
  ModalityEncoder,
} from './types.js';

const PTS = 41;
const SEG = 42;
const HIDDEN = 16;

/**
 * A small real encoder for [tokens, C] items (a point-set encoder): a CLS row, then `layers` tanh(Linear)
 * blocks; hidden state 0 is the input projection.
 */
class SetEncoder extends Module implements ModalityEncoder {
  readonly hiddenSize = 6;
  readonly numHiddenStates: number;
  readonly embed: Linear;
  readonly blocks: Linear[];
  constructor(
    readonly channels: number,
    layers: number,
    init: Initializer,
  ) {
    super();
    this.numHiddenStates = layers + 1;
    this.embed = this.module('embed', new Linear(channels, this.hiddenSize, { init }));
    this.blocks = Array.from({ length: layers }, (_, i) =>
      this.module(`block${i}`, new Linear(this.hiddenSize, this.hiddenSize, { init })),
    );
  }
  featureLayout(itemShape: readonly number[]): FeatureLayout {
    return { tokens: itemShape[0] + 1, prefixTokens: 1 };
  }
  forward(batch: tf.Tensor, opts: EncodeOptions = {}): EncoderOutput {
    const x = this.embed.forward(batch) as tf.Tensor3D;
    const cls = tf.mean(x, 1, true);
    const states: tf.Tensor3D[] = [tf.concat([cls, x], 1) as tf.Tensor3D];
    for (const block of this.blocks)
      states.push(tf.tanh(block.forward(states[states.length - 1])) as tf.Tensor3D);
    const wanted = (opts.hiddenStates ?? [-1]).map((i) => states[i < 0 ? states.length + i : i]);
    return { hiddenStates: wanted, layout: this.featureLayout(batch.shape.slice(1)) };
  }
}

class TestLinearAdapter extends Module implements Adapter {
  readonly proj: Linear;
  constructor(
    readonly inDim: number,
    readonly outDim: number,
    init: Initializer,
  ) {
    super();
    this.proj = this.module('proj', new Linear(inDim, outDim, { init }));
  }
  numSlots(layout: FeatureLayout): number {
    return layout.tokens;
  }
  forward(features: tf.Tensor3D, _ctx: AdapterContext): tf.Tensor3D {
    return this.proj.forward(features) as tf.Tensor3D;
  }
}

/** Scores the hidden state it reads; loss = mean squared error against numeric targets. */
class ScoreHead extends Module implements Head<number> {
  readonly name = 'score';
  readonly triggerTokenId = SEG;
  readonly readOffset = -1 as const;
  readonly lossWeight = 0.5;
  readonly proj: Linear;
  constructor(init: Initializer) {
    super();
    this.proj = this.module('proj', new Linear(HIDDEN, 1, { init }));
  }
  forward(input: HeadInput<number>): HeadOutput<tf.Tensor> {
    const score = tf.reshape(this.proj.forward(input.hidden), [-1]);
    const loss = input.targets
      ? (tf.mean(tf.square(tf.sub(score, tf.tensor1d(input.targets as number[])))) as tf.Scalar)
      : undefined;
    return { output: score, loss };
  }
}

function values(shape: number[], seed: number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Array.from({ length: n }, (_, i) => Math.sin(seed * 31 + i * 0.7)),
    shape,
  );
}

describe('MultimodalModel', () => {
  let model: MultimodalModel;
  let encoder: SetEncoder;
  let adapter: TestLinearAdapter;
  const init = new Initializer({ seed: 7, std: 0.3 });
  // Sample 0: one 3-point item then one 2-point item (two shape groups); sample 1: one 2-point item.
  const ids = [
    [1, PTS, PTS, PTS, 5, PTS, PTS, 6, 2, 3],
    [1, 8, PTS, PTS, 9, 10, SEG, 11, 0, 0],
  ];
  const media = () => ({ points: [[values([3, 4], 1), values([2, 4], 2)], [values([2, 4], 3)]] });

  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
    const llm = new LlamaForCausalLM(
      parseLlamaConfig({
        // GQA (2 query heads share 1 key/value head): gradients must flow back through it to the adapter.
        model_type: 'llama',
        vocab_size: 48,
        hidden_size: HIDDEN,
        intermediate_size: 32,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        num_key_value_heads: 1,
        max_position_embeddings: 64,
        rms_norm_eps: 1e-5,
        tie_word_embeddings: false,
      }),
      { seed: 3 },
    );
    encoder = new SetEncoder(4, 2, init);
    // Layers [-2, 0] concatenated; 'default' drops the CLS row, so an n-point item gives n slots.
    adapter = new TestLinearAdapter(12, HIDDEN, init);
    model = new MultimodalModel({
      llm,
      modalities: {
        points: {
          placeholderTokenId: PTS,
          encoder,
          select: { layer: [-2, 0], strategy: 'default' },
          adapter,
        },
      },
      heads: [new ScoreHead(init)],
    });
  });
  afterAll(() => model.dispose());

  it('names parameters by their place in the composition', () => {
    const names = model.namedParameters().map(([n]) => n);
    expect(names).toContain('llm.model.embed_tokens.weight');
    expect(names).toContain('modalities.points.encoder.block1.weight');
    expect(names).toContain('modalities.points.adapter.proj.weight');
    expect(names).toContain('heads.score.proj.weight');
    expect(model.slotsPerItem('points', [5, 4])).toBe(5);
  });

  it('embedInputs splices each item, encoded on its own, into its placeholders in order', () => {
    const m = media();
    const got = model.embedInputs(tf.tensor2d(ids, undefined, 'int32'), m).arraySync();
    const text = model.llm.embed(tf.tensor2d(ids, undefined, 'int32')).arraySync();
    const itemSlots = (item: tf.Tensor) =>
      tf.tidy(() => {
        const out = encoder.forward(tf.expandDims(item, 0), { hiddenStates: [-2, 0] });
        return adapter
          .forward(applyFeatureSelect(out, { layer: [-2, 0], strategy: 'default' }).features, {
            layout: out.layout,
          })
          .arraySync()[0];
      });
    const slots = [[...itemSlots(m.points[0][0]), ...itemSlots(m.points[0][1])], itemSlots(m.points[1][0])];
    ids.forEach((row, b) => {
      let k = 0;
      row.forEach((id, t) => {
        const want = id === PTS ? slots[b][k++] : text[b][t];
        want.forEach((v, h) => {
          expect(got[b][t][h]).toBeCloseTo(v, 5);
        });
      });
      expect(k).toBe(slots[b].length);
    });
  });

  it('rejects a prompt whose placeholders do not match the media, naming sample and modality', () => {
    const short = [[values([3, 4], 1), values([2, 4], 2)], [values([3, 4], 3)]];
    expect(() => model.embedInputs(tf.tensor2d(ids, undefined, 'int32'), { points: short })).toThrow(
      /Sample 1, modality "points": expected 2 slots .* got 3 features/,
    );
    expect(() => model.embedInputs(tf.tensor2d(ids, undefined, 'int32'), { image: [[], []] })).toThrow(
      /Unknown modality "image"/,
    );
  });

  it('forward: HF-shifted cross-entropy over supervised, non-placeholder targets plus weighted head loss', () => {
    const labels = ids.map((row) => row.map((id, t) => (t < 3 || id === 0 ? -100 : id)));
    const batch = {
      inputIds: tf.tensor2d(ids, undefined, 'int32'),
      attentionMask: tf.tensor2d(
        ids.map((r) => r.map((id) => (id === 0 ? 0 : 1))),
        undefined,
        'int32',
      ),
      labels: tf.tensor2d(labels, undefined, 'int32'),
      media: media(),
      headTargets: { score: [0.25] },
    };
    const out = model.forward(batch);
    const logits = out.logits!.arraySync();
    // Reference in plain JS from the returned logits: mean over t of -log softmax(logits[t])[labels[t+1]].
    let sum = 0;
    let n = 0;
    labels.forEach((row, b) => {
      row.forEach((label, t) => {
        if (t === 0 || label === -100 || ids[b][t] === PTS) return;
        const z = logits[b][t - 1];
        const max = Math.max(...z);
        const lse = max + Math.log(z.reduce((s, v) => s + Math.exp(v - max), 0));
        sum += lse - z[label];
        n++;
      });
    });
    expect(n).toBe(8);
    expect(out.lmLoss!.dataSync()[0]).toBeCloseTo(sum / n, 4);
    // The head read the state before [SEG] (sample 1, position 5).
    const score = (out.heads.score.output as tf.Tensor).dataSync()[0];
    const readHidden = tf.tidy(() => {
      const embeds = model.embedInputs(batch.inputIds, batch.media, batch.attentionMask);
      return model.llm
        .forward({ inputsEmbeds: embeds, attentionMask: batch.attentionMask })
        .hidden.arraySync()[1][5];
    });
    const W = (model.heads[0] as ScoreHead).proj;
    const wantScore = readHidden.reduce(
      (s, v, h) => s + v * W.weight.arraySync()[0][h],
      W.bias!.arraySync()[0],
    );
    expect(score).toBeCloseTo(wantScore, 4);
    expect(out.loss!.dataSync()[0]).toBeCloseTo(sum / n + 0.5 * (score - 0.25) ** 2, 4);
  });

  it('trains the adapter alone on wasm: gradients reach only the unfrozen parameters', () => {
    model.trainOnly(['modalities.*.adapter.*']);
    const batch = {
      inputIds: tf.tensor2d(ids, undefined, 'int32'),
      labels: tf.tensor2d(
        ids.map((r) => r.map((id) => (id === PTS || id === 0 ? -100 : id))),
        undefined,
        'int32',
      ),
      media: media(),
    };
    const { value, grads } = tf.variableGrads(() => model.forward(batch, { logits: false }).loss!);
    const trainable = model.trainableParameters();
    expect(trainable.map(([n]) => n)).toEqual([
      'modalities.points.adapter.proj.weight',
      'modalities.points.adapter.proj.bias',
    ]);
    expect(Object.keys(grads)).toHaveLength(2);
    for (const [, v] of trainable) expect(tf.sum(tf.abs(grads[v.name])).dataSync()[0]).toBeGreaterThan(0);
    // Finite-difference check of one adapter bias coordinate.
    const bias = trainable[1][1];
    const g = grads[bias.name].dataSync()[3];
    const eps = 1e-2;
    const lossAt = (delta: number) =>
      tf.tidy(() => {
        const original = bias.clone();
        bias.assign(
          tf.add(
            original,
            tf.mul(tf.reshape(tf.oneHot(tf.tensor1d([3], 'int32'), HIDDEN), [HIDDEN]), delta),
          ) as tf.Tensor1D,
        );
        const l = model.forward(batch, { logits: false }).loss!.dataSync()[0];
        bias.assign(original);
        return l;
      });
    const fd = (lossAt(eps) - lossAt(-eps)) / (2 * eps);
    expect(g).toBeCloseTo(fd, 3);
    tf.dispose([value, ...Object.values(grads)]);
    model.trainOnly(['*']);
  });

  it('prepareGeneration gives the spliced embeddings and an all-ones mask', () => {
    const one = [ids[1]];
    const m = { points: [media().points[1]] };
    const { inputsEmbeds, attentionMask } = model.prepareGeneration(tf.tensor2d(one, undefined, 'int32'), m);
    const want = model.embedInputs(tf.tensor2d(one, undefined, 'int32'), m);
    expect(tf.max(tf.abs(tf.sub(inputsEmbeds, want))).dataSync()[0]).toBe(0);
    expect(Array.from(attentionMask.dataSync())).toEqual(new Array(10).fill(1));
  });

  it('does not leak tensors across forward calls', () => {
    const batch = { inputIds: tf.tensor2d(ids, undefined, 'int32'), media: media() };
    const run = () => {
      const out = model.forward(batch);
      tf.dispose([out.logits!, out.heads.score.output as tf.Tensor]);
    };
    run();
    const before = tf.memory().numTensors;
    run();
    expect(tf.memory().numTensors).toBe(before);
  });
});

/** A tiny gated media adapter acting inside the LLM: block output + tanh(gate) · (mean of its sample's slots). */
class GatedMediaAdapter extends TestLinearAdapter {
  readonly gate: tf.Variable;
  readonly seen: { layer: number; positions: number[] }[] = [];
  readonly blockHook: DecoderBlockHook;
  constructor(inDim: number, outDim: number, init: Initializer) {
    super(inDim, outDim, init);
    this.gate = this.param('gate', tf.scalar(0.5));
    this.blockHook = {
      layers: (n) => [n - 1],
      wrap: (block, layerIndex) => (hidden, ctx) => {
        const media = ctx.media.get('points');
        const out = block(hidden, ctx);
        if (!media) return out;
        this.seen.push({ layer: layerIndex, positions: Array.from(media.position) });
        const [B] = hidden.shape;
        // Per-sample mean of the slots (sample-major rows) via a [B, slots] averaging matrix.
        const counts = Array.from({ length: B }, (_, b) => media.sample.filter((s) => s === b).length);
        const avg = tf.tensor2d(
          Array.from({ length: B }, (_, b) => Array.from(media.sample, (s) => (s === b ? 1 / counts[b] : 0))),
        );
        const perSample = tf.reshape(tf.matMul(avg, media.slots), [B, 1, -1]);
        return tf.add(out, tf.mul(tf.tanh(this.gate), perSample)) as tf.Tensor3D;
      },
    };
  }
}

describe('MultimodalModel construction checks', () => {
  const init = new Initializer({ seed: 1 });
  const makeLlm = () =>
    new LlamaForCausalLM(
      parseLlamaConfig({
        model_type: 'llama',
        vocab_size: 48,
        hidden_size: HIDDEN,
        intermediate_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        max_position_embeddings: 64,
        rms_norm_eps: 1e-5,
        tie_word_embeddings: false,
      }),
    );
  const spec = (adapter: Adapter) => ({
    points: {
      placeholderTokenId: PTS,
      encoder: new SetEncoder(4, 1, init),
      select: { layer: -1, strategy: 'full' as const },
      adapter,
    },
  });

  it('rejects adapter widths that do not fit the encoder or the LLM', () => {
    const llm = makeLlm();
    expect(
      () => new MultimodalModel({ llm, modalities: spec(new TestLinearAdapter(7, HIDDEN, init)) }),
    ).toThrow(/modalities.points.adapter.inDim is 7 .* set inDim to 6/);
    expect(() => new MultimodalModel({ llm, modalities: spec(new TestLinearAdapter(6, 9, init)) })).toThrow(
      /outDim is 9 but the LLM hidden size is 16/,
    );
    llm.dispose();
  });

  it('installs block hooks: wrapped blocks see the spliced media, change the output and train', () => {
    const llm = makeLlm();
    const hooked = new GatedMediaAdapter(6, HIDDEN, init);
    const model = new MultimodalModel({ llm, modalities: spec(hooked) });
    const ids = tf.tensor2d([[1, PTS, PTS, 5, 6]], undefined, 'int32');
    const media = { points: [[values([1, 4], 4)]] };
    const labels = tf.tensor2d([[-100, -100, -100, 6, 7]], undefined, 'int32');
    const lossWithGate = (g: number) =>
      tf.tidy(() => {
        hooked.gate.assign(tf.scalar(g));
        return model.forward({ inputIds: ids, media, labels }, { logits: false }).loss!.dataSync()[0];
      });
    const open = lossWithGate(0.5);
    expect(hooked.seen.at(-1)).toEqual({ layer: 1, positions: [1, 2] });
    expect(Math.abs(open - lossWithGate(0))).toBeGreaterThan(1e-4);
    model.trainOnly(['modalities.points.adapter.gate']);
    const { grads, value } = tf.variableGrads(
      () => model.forward({ inputIds: ids, media, labels }, { logits: false }).loss!,
    );
    const eps = 1e-2;
    const fd = (lossWithGate(eps) - lossWithGate(-eps)) / (2 * eps);
    expect(grads[hooked.gate.name].dataSync()[0]).toBeCloseTo(fd, 3);
    tf.dispose([value, ...Object.values(grads)]);
    model.dispose();
  });
});

/** Adds the masked mean of the prompt text to every slot; keeps the last mask it saw. */
class TextMeanAdapter extends Module implements Adapter {
  readonly usesText = true;
  readonly outDim = HIDDEN;
  readonly proj: Linear;
  lastMask: number[][] = [];
  constructor(
    readonly inDim: number,
    init: Initializer,
  ) {
    super();
    this.proj = this.module('proj', new Linear(inDim, HIDDEN, { init }));
  }
  numSlots(layout: FeatureLayout): number {
    return layout.tokens;
  }
  forward(features: tf.Tensor3D, ctx: AdapterContext): tf.Tensor3D {
    const text = ctx.text;
    if (!text) throw new Error('TextMeanAdapter: no text');
    this.lastMask = text.mask.arraySync() as number[][];
    const mask = tf.expandDims(text.mask, 2);
    const mean = tf.div(tf.sum(tf.mul(text.embeds, mask), 1, true), tf.maximum(tf.sum(mask, 1, true), 1));
    return tf.add(this.proj.forward(features), mean) as tf.Tensor3D;
  }
}

describe('MultimodalModel with an instruction-aware adapter', () => {
  it('passes the prompt text without placeholders, padding or supervised answer tokens', async () => {
    await initBackend({ backend: 'wasm' });
    const init = new Initializer({ seed: 5, std: 0.3 });
    const llm = new LlamaForCausalLM(
      parseLlamaConfig({
        model_type: 'llama',
        vocab_size: 48,
        hidden_size: HIDDEN,
        intermediate_size: 32,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        num_key_value_heads: 2,
        max_position_embeddings: 64,
        tie_word_embeddings: false,
      }),
      { seed: 3 },
    );
    const adapter = new TextMeanAdapter(6, init);
    const model = new MultimodalModel({
      llm,
      modalities: {
        points: {
          placeholderTokenId: PTS,
          encoder: new SetEncoder(4, 1, init),
          select: { layer: -1, strategy: 'default' },
          adapter,
        },
      },
    });
    try {
      // prompt 1 PTS PTS 5 6, answer 7 2, then padding
      const inputIds = tf.tensor2d([[1, PTS, PTS, 5, 6, 7, 2, 0]], [1, 8], 'int32');
      const attentionMask = tf.tensor2d([[1, 1, 1, 1, 1, 1, 1, 0]], [1, 8], 'int32');
      const labels = tf.tensor2d([[-100, -100, -100, -100, -100, 7, 2, -100]], [1, 8], 'int32');
      const media = { points: [[values([2, 4], 9)]] };
      model.forward({ inputIds, attentionMask, labels, media }).loss?.dispose();
      expect(adapter.lastMask).toEqual([[1, 0, 0, 1, 1, 0, 0, 0]]);
      // Generation (no labels): the whole prompt.
      model.embedInputs(inputIds, media, attentionMask).dispose();
      expect(adapter.lastMask).toEqual([[1, 0, 0, 1, 1, 1, 1, 0]]);
      // The answer tokens do not reach the slots in training: changing them leaves the loss's image part alone.
      const slotsA = model.embedInputs(
        tf.tensor2d([[1, PTS, PTS, 5, 6, 0, 0, 0]], [1, 8], 'int32'),
        media,
        tf.tensor2d([[1, 1, 1, 1, 1, 0, 0, 0]], [1, 8], 'int32'),
      );
      const fwd = tf.slice(slotsA, [0, 1, 0], [1, 2, -1]).arraySync();
      const trainSlots = tf.tidy(() => {
        const out: number[][][] = [];
        const orig = adapter.forward.bind(adapter);
        adapter.forward = (f, ctx) => {
          const r = orig(f, ctx);
          out.push(...(r.arraySync() as number[][][]));
          return r;
        };
        model.forward({ inputIds, attentionMask, labels, media }).loss?.dispose();
        adapter.forward = orig;
        return out;
      });
      trainSlots[0]?.forEach((row, i) => {
        row.forEach((v, d) => {
          expect(v).toBeCloseTo(fwd[0]?.[i]?.[d] as number, 5);
        });
      });
    } finally {
      model.dispose();
    }
  });
});
