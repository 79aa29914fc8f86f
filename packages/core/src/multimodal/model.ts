// MultimodalModel: an LLM plus named modalities (encoder → select → adapter → splice) plus output heads.
// Parameter names: `llm.*`, `modalities.<name>.encoder.*`, `modalities.<name>.adapter.*`, `heads.<name>.*`.
import * as tf from '@tensorflow/tfjs-core';
import { hostRows, hostValues } from '../backend/host-values.js';
import {
  type GenerateInput,
  type GenerateOptions,
  type GenerateResult,
  generate,
  generateAsync,
} from '../generation/generate.js';
import type { CausalLM, DecoderInputs } from '../llm/types.js';
import { Module } from '../nn/module.js';
import { crossEntropy } from '../ops/index.js';
import type { ModelFamily, SaveModelOptions } from '../pipeline/family.js';
import type { CompositionConfig } from '../pipeline/types.js';
import { encodeAndSelect, selectedFeatureDim, selectedLayout } from './select.js';
import { checkSlotCounts, type ModalitySlots, spliceSlots } from './splice.js';
import type {
  Adapter,
  AdapterContext,
  BlockWrappableLM,
  FeatureSelect,
  Head,
  HeadOutput,
  ModalityEncoder,
  SplicedMedia,
} from './types.js';

/** One modality of a model. Items are tensors (one image [3, H, W], one video [T, 3, H, W], …). */
export interface ModalitySpec<Batch = tf.Tensor> {
  placeholderTokenId: number;
  encoder: ModalityEncoder<Batch>;
  select: FeatureSelect;
  adapter: Adapter;
  /** Items of one shape → the encoder's batch; default: stacked on a new leading axis. */
  collate?: (items: tf.Tensor[]) => Batch;
}

/** Media of a batch: per modality, per sample, the items in the order their placeholders appear. */
export type MediaInputs = Readonly<Record<string, readonly (readonly tf.Tensor[])[]>>;

export interface MultimodalBatch {
  /** [B, T] int32, placeholders already expanded to their slot counts. */
  inputIds: tf.Tensor2D;
  /** [B, T] 1 = token, 0 = padding. */
  attentionMask?: tf.Tensor2D;
  /** [B, T] int32 next-token targets aligned with inputIds (HF: shifted inside the loss), -100 = ignored. */
  labels?: tf.Tensor2D;
  media?: MediaInputs;
  /** Per head name: one target per trigger occurrence in the batch, sample-major. */
  headTargets?: Readonly<Record<string, readonly unknown[]>>;
}

export interface MultimodalForwardOptions {
  /** Return logits [B, T, vocab] (default true). Training can skip them: the loss only needs supervised rows. */
  logits?: boolean;
}

export type MultimodalOutput = {
  logits?: tf.Tensor3D;
  /** lmLoss + Σ head.lossWeight × head loss, when labels or head losses exist. */
  loss?: tf.Scalar;
  lmLoss?: tf.Scalar;
  /** Head outputs by head name (only heads whose trigger occurs in the batch). */
  heads: Record<string, HeadOutput<tf.TensorContainer>>;
};

export interface MultimodalModelOptions {
  llm: CausalLM & Module;
  modalities: ReadonlyMap<string, ModalitySpec<unknown>> | Readonly<Record<string, ModalitySpec<unknown>>>;
  heads?: readonly Head<unknown, tf.TensorContainer>[];
}

/** A Module that only groups children under names (`modalities.image`, `heads.seg`). */
class ModuleGroup extends Module {
  add<M extends Module>(name: string, child: M): M {
    return this.module(name, child);
  }
}

function isBlockWrappable(llm: CausalLM): llm is BlockWrappableLM {
  return typeof (llm as Partial<BlockWrappableLM>).wrapBlocks === 'function';
}

const shapeKey = (t: tf.Tensor) => t.shape.join('x');

export class MultimodalModel extends Module {
  /** The family that saves and loads this model (set by the family that built it; see pipeline/family.ts). */
  family?: ModelFamily;
  /** The registry configs of its parts, with the plugins they come from (set with `family`). */
  composition?: CompositionConfig;
  readonly llm: CausalLM & Module;
  readonly modalities: ReadonlyMap<string, ModalitySpec<unknown>>;
  private readonly headList: Head<unknown, tf.TensorContainer>[];
  private readonly headGroup: ModuleGroup;
  private readonly uninstallHooks: (() => void)[] = [];
  /** Media slots kept for block hooks across the decode steps of the last prepareGeneration. */
  private generationMedia: tf.Tensor[] = [];

  constructor(opts: MultimodalModelOptions) {
    super();
    this.llm = this.module('llm', opts.llm);
    this.modalities =
      opts.modalities instanceof Map ? opts.modalities : new Map(Object.entries(opts.modalities));
    this.headList = [...(opts.heads ?? [])];
    const groups = this.module('modalities', new ModuleGroup());
    const tokenOwner = new Map<number, string>();
    for (const [name, spec] of this.modalities) {
      const other = tokenOwner.get(spec.placeholderTokenId);
      if (other !== undefined) {
        throw new Error(
          `Modalities "${other}" and "${name}" share placeholder token ${spec.placeholderTokenId}: give each its own token`,
        );
      }
      tokenOwner.set(spec.placeholderTokenId, name);
      const inDim = selectedFeatureDim(spec.encoder.hiddenSize, spec.select);
      if (spec.adapter.inDim !== inDim) {
        throw new Error(
          `modalities.${name}.adapter.inDim is ${spec.adapter.inDim} but the encoder gives ${inDim} features ` +
            `(hidden ${spec.encoder.hiddenSize} × ${inDim / spec.encoder.hiddenSize} selected layers): set inDim to ${inDim}`,
        );
      }
      if (spec.adapter.outDim !== opts.llm.hiddenSize) {
        throw new Error(
          `modalities.${name}.adapter.outDim is ${spec.adapter.outDim} but the LLM hidden size is ${opts.llm.hiddenSize}: set outDim to ${opts.llm.hiddenSize}`,
        );
      }
      const group = groups.add(name, new ModuleGroup());
      group.add('encoder', spec.encoder);
      group.add('adapter', spec.adapter);
      if (spec.adapter.blockHook) {
        if (!isBlockWrappable(opts.llm)) {
          throw new Error(
            `modalities.${name}.adapter wraps LLM blocks, but this LLM does not implement BlockWrappableLM (wrapBlocks/setMedia): use an adapter that only maps features, or an LLM with block hooks`,
          );
        }
        this.uninstallHooks.push(opts.llm.wrapBlocks(spec.adapter.blockHook));
      }
    }
    this.headGroup = this.module('heads', new ModuleGroup());
    for (const head of this.headList) this.headGroup.add(head.name, head);
  }

  get heads(): readonly Head<unknown, tf.TensorContainer>[] {
    return this.headList;
  }

  /** Adds an output head (a recipe's `heads:`, a task's [SEG] head), bound to this model's modalities. */
  addHead(head: Head<unknown, tf.TensorContainer>): void {
    if (this.headList.some((h) => h.name === head.name))
      throw new Error(`the model already has a head named '${head.name}': give the new head another name`);
    head.bindModalities?.(new Map([...this.modalities].map(([n, s]) => [n, { encoder: s.encoder }])));
    this.headGroup.add(head.name, head);
    this.headList.push(head);
    const config = head.headConfig?.();
    if (this.composition && config)
      this.composition = { ...this.composition, heads: [...this.composition.heads, config] };
  }

  /** Writes a loadable model folder (config.json + safetensors) through the model's family. */
  async save(dir: string, opts: SaveModelOptions = {}): Promise<void> {
    if (!this.family)
      throw new Error(
        'this MultimodalModel has no family: build it with createModel/loadPretrained (or set model.family) to save it as a folder',
      );
    await this.family.save(this, dir, opts);
  }

  /** Name of a parameter in the saved checkpoint (HF names for HF families), e.g. for LoRA adapter files. */
  checkpointName(param: string): string {
    return this.family ? this.family.checkpointName(param) : param;
  }

  /** Placeholder token id of a modality. */
  placeholderTokenId(modality: string): number {
    return this.modality(modality).placeholderTokenId;
  }

  /** Slots one item of this shape occupies in the text: the placeholder count a processor must emit. */
  slotsPerItem(modality: string, itemShape: readonly number[]): number {
    const spec = this.modality(modality);
    return spec.adapter.numSlots(selectedLayout(spec.encoder.featureLayout(itemShape), spec.select));
  }

  /** inputIds [B, T] → inputsEmbeds [B, T, hidden] with every placeholder overwritten by its media slots. */
  embedInputs(inputIds: tf.Tensor2D, media: MediaInputs = {}, attentionMask?: tf.Tensor2D): tf.Tensor3D {
    return tf.tidy(() => this.embedWithPlacement(inputIds, media, attentionMask).embeds);
  }

  /** Training/eval forward: logits and the HF-shifted next-token loss (+ head losses). */
  forward(batch: MultimodalBatch, opts: MultimodalForwardOptions = {}): MultimodalOutput {
    // Host copies before any kernel uploads them (backend/host-values.ts).
    const ids = hostValues(batch.inputIds) as Int32Array;
    const labelValues = batch.labels ? (hostValues(batch.labels) as Int32Array) : undefined;
    return tf.tidy(() => {
      const { embeds, placed } = this.embedWithPlacement(
        batch.inputIds,
        batch.media ?? {},
        batch.attentionMask,
        batch.labels,
      );
      this.setBlockMedia(placed);
      const { hidden } = this.llm.forward({ inputsEmbeds: embeds, attentionMask: batch.attentionMask });
      this.setBlockMedia(new Map()); // the slots die with this scope
      const out: MultimodalOutput = { heads: {} };
      if (opts.logits ?? true) out.logits = this.llm.lmHead(hidden);
      if (labelValues) out.lmLoss = this.lmLoss(hidden, ids, labelValues);
      let loss = out.lmLoss;
      for (const head of this.heads) {
        const result = this.runHead(head, hidden, ids, batch);
        if (!result) continue;
        out.heads[head.name] = result;
        if (result.loss) {
          const term = tf.mul(result.loss, head.lossWeight) as tf.Scalar;
          loss = loss ? (tf.add(loss, term) as tf.Scalar) : term;
        }
      }
      if (loss) out.loss = loss;
      return out;
    });
  }

  /** Prefill inputs for generation: the spliced embeddings and the attention mask (ones when not given). */
  prepareGeneration(
    inputIds: tf.Tensor2D,
    media: MediaInputs = {},
    attentionMask?: tf.Tensor2D,
  ): Required<Pick<DecoderInputs, 'inputsEmbeds' | 'attentionMask'>> {
    return tf.tidy(() => {
      const { embeds, placed } = this.embedWithPlacement(inputIds, media, attentionMask);
      if (this.uninstallHooks.length) {
        // Block hooks read the media at every decode step, after this scope ends.
        tf.dispose(this.generationMedia);
        this.generationMedia = [...placed.values()].map((m) => tf.keep(m.slots));
        this.setBlockMedia(placed);
      }
      const mask = attentionMask ? tf.clone(attentionMask) : (tf.onesLike(inputIds) as tf.Tensor2D);
      return { inputsEmbeds: embeds, attentionMask: mask };
    });
  }

  /**
   * Generates from prompts with media: splices once (prefill), then decodes with the LLM's KV cache.
   * Rows of inputIds may be left-padded (attentionMask 0); each row's real ids feed the repetition penalty.
   * Reads synchronously (cpu, wasm, tfjs-node); generateAsync gives the same ids and runs on webgpu.
   */
  generate(
    inputIds: tf.Tensor2D,
    media: MediaInputs = {},
    opts: GenerateOptions & { attentionMask?: tf.Tensor2D } = {},
  ): GenerateResult {
    return this.withGenerationInput(inputIds, media, opts, (input, rest) => generate(this.llm, input, rest));
  }

  /** generate() with every device read awaited. */
  async generateAsync(
    inputIds: tf.Tensor2D,
    media: MediaInputs = {},
    opts: GenerateOptions & { attentionMask?: tf.Tensor2D } = {},
  ): Promise<GenerateResult> {
    return this.withGenerationInput(inputIds, media, opts, (input, rest) =>
      generateAsync(this.llm, input, rest),
    );
  }

  /** Prefill input (prompt ids read on the host first) for `run`; frees it when run's result settles. */
  private withGenerationInput<R>(
    inputIds: tf.Tensor2D,
    media: MediaInputs,
    opts: GenerateOptions & { attentionMask?: tf.Tensor2D },
    run: (input: GenerateInput, opts: GenerateOptions) => R,
  ): R {
    const { attentionMask: mask, ...generateOpts } = opts;
    const ids = hostRows(inputIds);
    const keep = mask ? hostRows(mask) : null;
    const promptIds = ids.map((row, b) => row.filter((_, t) => keep === null || keep[b][t] !== 0));
    const { inputsEmbeds, attentionMask } = this.prepareGeneration(inputIds, media, mask);
    const free = () => tf.dispose([inputsEmbeds, attentionMask]);
    let result: R;
    try {
      result = run({ inputsEmbeds, attentionMask, promptIds }, generateOpts);
    } catch (e) {
      free();
      throw e;
    }
    if (result instanceof Promise) return result.finally(free) as R;
    free();
    return result;
  }

  override dispose(): void {
    for (const uninstall of this.uninstallHooks.splice(0)) uninstall();
    tf.dispose(this.generationMedia);
    super.dispose();
  }

  private modality(name: string): ModalitySpec<unknown> {
    const spec = this.modalities.get(name);
    if (!spec)
      throw new Error(
        `Unknown modality "${name}": this model has ${[...this.modalities.keys()].join(', ') || 'none'}`,
      );
    return spec;
  }

  private setBlockMedia(placed: ReadonlyMap<string, SplicedMedia>): void {
    if (this.uninstallHooks.length && isBlockWrappable(this.llm)) this.llm.setMedia(placed);
  }

  private embedWithPlacement(
    inputIds: tf.Tensor2D,
    media: MediaInputs,
    attentionMask?: tf.Tensor2D,
    labels?: tf.Tensor2D,
  ) {
    const [B, T] = inputIds.shape;
    const ids = hostValues(inputIds) as Int32Array;
    for (const name of Object.keys(media)) {
      this.modality(name);
      if (media[name].length !== B) {
        throw new Error(
          `media.${name} has ${media[name].length} entries but the batch has ${B} samples: give one item list per sample (empty for none)`,
        );
      }
    }
    // Placeholder ids may lie outside the vocabulary (LLaVA's -200): embed token 0 there, it is overwritten.
    const placeholderIds = [...this.modalities.values()].map((s) => s.placeholderTokenId);
    const isSlot = tf.tidy(() =>
      placeholderIds.reduce<tf.Tensor>(
        (acc, id) => tf.logicalOr(acc, tf.equal(inputIds, id)),
        tf.cast(tf.zerosLike(inputIds), 'bool'),
      ),
    );
    const textEmbeds = this.llm.embed(tf.where(isSlot, tf.zerosLike(inputIds), inputIds) as tf.Tensor2D);
    const slots: ModalitySlots[] = [];
    for (const [name, spec] of this.modalities) {
      const perSample = media[name] ?? Array.from({ length: B }, () => []);
      const slotsPerSample = perSample.map((items) =>
        items.reduce((n, item) => n + this.slotsPerItem(name, item.shape), 0),
      );
      // Fail before encoding anything when the prompt and the media disagree.
      checkSlotCounts(ids, B, [{ name, placeholderTokenId: spec.placeholderTokenId, slotsPerSample }]);
      const items = perSample.flatMap((list, sample) => list.map((item) => ({ item, sample })));
      if (items.length === 0) continue;
      const text = spec.adapter.usesText
        ? {
            embeds: textEmbeds,
            ids: inputIds,
            isSlot,
            attentionMask: textAttention(attentionMask, labels),
            T,
          }
        : undefined;
      slots.push({
        name,
        placeholderTokenId: spec.placeholderTokenId,
        slots: this.encodeItems(name, spec, items, text),
        slotsPerSample,
      });
    }
    return spliceSlots(textEmbeds, ids, slots);
  }

  /** Encodes items grouped by shape (one encoder call per shape), returns slot rows in item order. */
  private encodeItems(
    name: string,
    spec: ModalitySpec<unknown>,
    items: { item: tf.Tensor; sample: number }[],
    text?: {
      embeds: tf.Tensor3D;
      ids: tf.Tensor2D;
      isSlot: tf.Tensor;
      attentionMask?: tf.Tensor2D;
      T: number;
    },
  ): tf.Tensor2D {
    const groups = new Map<string, number[]>();
    items.forEach(({ item }, i) => {
      groups.set(shapeKey(item), [...(groups.get(shapeKey(item)) ?? []), i]);
    });
    const perItem: tf.Tensor2D[] = new Array(items.length);
    for (const indices of groups.values()) {
      const tensors = indices.map((i) => items[i].item);
      const batch = spec.collate ? spec.collate(tensors) : tf.stack(tensors);
      const { features, layout } = encodeAndSelect(spec.encoder, batch, spec.select);
      const ctx: AdapterContext = { layout };
      if (text) {
        const rows = tf.tensor1d(
          indices.map((i) => items[i].sample),
          'int32',
        );
        const textMask = tf.logicalNot(text.isSlot);
        const mask = text.attentionMask
          ? tf.logicalAnd(textMask, tf.cast(text.attentionMask, 'bool'))
          : textMask;
        ctx.text = {
          embeds: tf.gather(text.embeds, rows),
          ids: tf.gather(text.ids, rows),
          mask: tf.cast(tf.gather(mask, rows), 'float32') as tf.Tensor2D,
        };
      }
      const adapted = spec.adapter.forward(features, ctx);
      const expected = spec.adapter.numSlots(layout);
      if (adapted.shape[1] !== expected) {
        throw new Error(
          `modalities.${name}.adapter returned ${adapted.shape[1]} slots per item but numSlots() says ${expected}: the adapter is inconsistent`,
        );
      }
      if (groups.size === 1) return tf.reshape(adapted, [-1, adapted.shape[2]]) as tf.Tensor2D;
      // Slices, not unstack: tfjs's unstack gradient breaks when the group holds one item.
      indices.forEach((itemIndex, j) => {
        perItem[itemIndex] = tf.reshape(tf.slice(adapted, [j, 0, 0], [1, -1, -1]), [
          -1,
          adapted.shape[2],
        ]) as tf.Tensor2D;
      });
    }
    return (perItem.length === 1 ? perItem[0] : tf.concat(perItem, 0)) as tf.Tensor2D;
  }

  /** HF loss: logits at t predict labels at t+1; placeholder positions are never targets. */
  private lmLoss(hidden: tf.Tensor3D, ids: Int32Array, labelValues: Int32Array): tf.Scalar {
    const [B, T, H] = hidden.shape;
    const slotIds = new Set([...this.modalities.values()].map((s) => s.placeholderTokenId));
    const rows: number[] = [];
    const targets: number[] = [];
    for (let b = 0; b < B; b++) {
      for (let t = 0; t + 1 < T; t++) {
        const next = b * T + t + 1;
        if (labelValues[next] === -100 || slotIds.has(ids[next])) continue;
        rows.push(b * T + t);
        targets.push(labelValues[next]);
      }
    }
    if (rows.length === 0) {
      throw new Error(
        'The batch has no supervised tokens (every shifted label is -100 or a placeholder): check label building and truncation',
      );
    }
    // Only supervised rows go through the LM head: [K, hidden] instead of [B·T, vocab] logits.
    const picked = tf.gather(tf.reshape(hidden, [B * T, H]), tf.tensor1d(rows, 'int32'));
    const logits = tf.reshape(this.llm.lmHead(tf.reshape(picked, [1, rows.length, H]) as tf.Tensor3D), [
      rows.length,
      -1,
    ]) as tf.Tensor2D;
    return crossEntropy(logits, tf.tensor1d(targets, 'int32'));
  }

  private runHead(
    head: Head<unknown, tf.TensorContainer>,
    hidden: tf.Tensor3D,
    ids: Int32Array,
    batch: MultimodalBatch,
  ) {
    const [B, T, H] = hidden.shape;
    const sample: number[] = [];
    const position: number[] = [];
    for (let i = 0; i < B * T; i++) {
      const p = (i % T) + head.readOffset;
      if (ids[i] !== head.triggerTokenId || p < 0) continue;
      sample.push(Math.floor(i / T));
      position.push(p);
    }
    if (sample.length === 0) return undefined;
    const targets = batch.headTargets?.[head.name];
    if (targets && targets.length !== sample.length) {
      throw new Error(
        `headTargets.${head.name} has ${targets.length} targets but the batch has ${sample.length} trigger tokens ${head.triggerTokenId}: give one per occurrence`,
      );
    }
    const flat = sample.map((b, k) => b * T + position[k]);
    const rows = tf.gather(tf.reshape(hidden, [B * T, H]), tf.tensor1d(flat, 'int32')) as tf.Tensor2D;
    const media = batch.media ? new Map(Object.entries(batch.media)) : undefined;
    return head.forward({
      hidden: rows,
      sample: Int32Array.from(sample),
      position: Int32Array.from(position),
      targets,
      media,
    });
  }
}

/**
 * The text an instruction-aware adapter may read: the attention mask without supervised positions (labels ≠ -100),
 * so in training it sees the prompt only, as it does when generating.
 */
function textAttention(attentionMask?: tf.Tensor2D, labels?: tf.Tensor2D): tf.Tensor2D | undefined {
  if (!labels) return attentionMask;
  const unsupervised = tf.cast(tf.equal(labels, -100), 'int32') as tf.Tensor2D;
  return attentionMask
    ? (tf.mul(unsupervised, tf.cast(attentionMask, 'int32')) as tf.Tensor2D)
    : unsupervised;
}
