// The pretraining objectives. Each owns its small heads (discarded after pretraining) and turns a batch of
// images into a scalar loss through the tower:
// - supervised: each image token predicts what its cell holds (object label or empty, and the object's box in
//   cell units) from `objects`, and/or the image's `labels` from the mean token (the demo's stage 0, generalised);
// - clip / siglip: contrastive image–text on the records' own text (a bag-of-words text tower; the image side
//   projects the whole token grid when it is small, so positions count);
// - mae: masked-patch reconstruction (masked cells' pixels are zeroed in the input, SimMIM-style, since a CNN
//   cannot drop tokens; the loss is the pixel error on masked cells only).
import { Initializer, Linear, Module, Rng, tf } from '@vistune/core';
import type { PretrainItem } from './records.js';

export const PRETRAIN_OBJECTIVES = ['supervised', 'clip', 'siglip', 'mae'] as const;
export type PretrainObjectiveName = (typeof PRETRAIN_OBJECTIVES)[number];

/** Images of one step, with every item's object boxes already in the processed image's pixels. */
export interface PretrainBatch {
  pixels: tf.Tensor4D;
  items: readonly PretrainItem[];
}

export type EncodeTokens = (pixels: tf.Tensor4D) => tf.Tensor3D;

export interface ObjectiveContext {
  /** Token width of the tower. */
  dim: number;
  /** Token grid [rows, cols] and image size [H, W] of the processed images. */
  grid: [number, number];
  imageSize: [number, number];
  channels: number;
  /** Training items (vocabularies of labels and words come from them). */
  train: readonly PretrainItem[];
  seed: number;
}

export interface PretrainObjective extends Module {
  readonly name: PretrainObjectiveName;
  /** Scalar loss of a batch (called inside the gradient tape). */
  loss(encode: EncodeTokens, batch: PretrainBatch): tf.Scalar;
}

/** An object's cell and its box relative to that cell (0..1 inside it), per image. */
export interface CellTarget {
  cell: number;
  label: string;
  box: [number, number, number, number];
}

/** Each object goes to the cell holding its box centre; two in one cell keep the larger one. */
export function cellTargets(
  item: PretrainItem,
  grid: [number, number],
  imageSize: [number, number],
): CellTarget[] {
  const [rows, cols] = grid;
  const cellH = imageSize[0] / rows;
  const cellW = imageSize[1] / cols;
  const byCell = new Map<number, CellTarget & { area: number }>();
  for (const o of item.objects ?? []) {
    const [x0, y0, x1, y1] = o.box;
    const cx = Math.min(cols - 1, Math.max(0, Math.floor((x0 + x1) / 2 / cellW)));
    const cy = Math.min(rows - 1, Math.max(0, Math.floor((y0 + y1) / 2 / cellH)));
    const cell = cy * cols + cx;
    const area = (x1 - x0) * (y1 - y0);
    if ((byCell.get(cell)?.area ?? -1) >= area) continue;
    const box: [number, number, number, number] = [
      (x0 - cx * cellW) / cellW,
      (y0 - cy * cellH) / cellH,
      (x1 - cx * cellW) / cellW,
      (y1 - cy * cellH) / cellH,
    ];
    byCell.set(cell, { cell, label: o.label, box, area });
  }
  return [...byCell.values()].map(({ area: _a, ...t }) => t);
}

/** Sorted distinct values. */
function vocabulary(values: Iterable<string>): string[] {
  return [...new Set(values)].sort();
}

/** The image-level class of an item for probes: its label set, sorted and joined with '+'. */
export function labelSetKey(labels: readonly string[]): string {
  return [...labels].sort().join('+');
}

const meanTokens = (tokens: tf.Tensor3D) => tf.mean(tokens, 1) as tf.Tensor2D;

class SupervisedObjective extends Module implements PretrainObjective {
  readonly name = 'supervised';
  readonly objectLabels: string[];
  readonly imageLabels: string[];
  readonly cellHead: Linear | undefined;
  readonly imageHead: Linear | undefined;

  constructor(
    private readonly ctx: ObjectiveContext,
    private readonly boxWeight: number,
  ) {
    super();
    const init = new Initializer({ seed: ctx.seed, std: 1 / Math.sqrt(ctx.dim) });
    this.objectLabels = vocabulary(ctx.train.flatMap((i) => (i.objects ?? []).map((o) => o.label)));
    this.imageLabels = vocabulary(ctx.train.flatMap((i) => i.labels ?? []));
    if (this.objectLabels.length === 0 && this.imageLabels.length === 0)
      throw new Error(
        'pretrain supervised: no training record has `objects: [{label, box}]` or `labels: [...]`; add them to the records or use objective clip, siglip or mae',
      );
    // classes + empty, then the box's 4 coordinates
    this.cellHead = this.objectLabels.length
      ? this.module('cell_head', new Linear(ctx.dim, this.objectLabels.length + 5, { init }))
      : undefined;
    this.imageHead = this.imageLabels.length
      ? this.module('image_head', new Linear(ctx.dim, this.imageLabels.length, { init }))
      : undefined;
  }

  loss(encode: EncodeTokens, batch: PretrainBatch): tf.Scalar {
    const tokens = encode(batch.pixels);
    const terms: tf.Scalar[] = [];
    const [n, t] = tokens.shape;
    if (this.cellHead) {
      const classes = this.objectLabels.length + 1;
      const ids = new Int32Array(n * t).fill(classes - 1);
      const boxes = new Float32Array(n * t * 4);
      const occupied = new Float32Array(n * t);
      batch.items.forEach((item, i) => {
        for (const c of cellTargets(item, this.ctx.grid, this.ctx.imageSize)) {
          const row = i * t + c.cell;
          ids[row] = this.objectLabels.indexOf(c.label);
          boxes.set(c.box, row * 4);
          occupied[row] = 1;
        }
      });
      const out = this.cellHead.forward(tf.reshape(tokens, [n * t, this.ctx.dim]));
      const logits = tf.slice(out, [0, 0], [-1, classes]);
      terms.push(tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(ids, 'int32'), classes), logits));
      const boxError = tf.sum(
        tf.mul(
          tf.square(tf.sub(tf.slice(out, [0, classes], [-1, 4]), tf.tensor2d(boxes, [n * t, 4]))),
          tf.tensor2d(occupied, [n * t, 1]),
        ),
      );
      const occupiedRows = Math.max(
        1,
        occupied.reduce((a, b) => a + b, 0),
      );
      terms.push(tf.mul(boxError, this.boxWeight / (4 * occupiedRows)) as tf.Scalar);
    }
    if (this.imageHead) {
      const k = this.imageLabels.length;
      const multiHot = new Float32Array(n * k);
      batch.items.forEach((item, i) => {
        for (const l of item.labels ?? []) multiHot[i * k + this.imageLabels.indexOf(l)] = 1;
      });
      const logits = this.imageHead.forward(meanTokens(tokens));
      terms.push(tf.losses.sigmoidCrossEntropy(tf.tensor2d(multiHot, [n, k]), logits) as tf.Scalar);
    }
    return tf.addN(terms) as tf.Scalar;
  }
}

/** Lower-case words and numbers of a text (the text tower's tokens). */
export function textWords(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

/** Most frequent words kept by the bag-of-words text tower. */
const MAX_WORDS = 4096;
const PROJECTION_DIM = 64;
/** Token grids up to this many features (tokens × width) are projected whole rather than mean-pooled. */
const MAX_FLAT_FEATURES = 16384;

class ContrastiveObjective extends Module implements PretrainObjective {
  readonly words: Map<string, number>;
  readonly word_embedding: tf.Variable<tf.Rank.R2>;
  readonly text_projection: Linear;
  readonly visual_projection: Linear;
  private readonly flattenTokens: boolean;
  /** CLIP: log of the softmax temperature's inverse (init log 1/0.07); SigLIP: log t (init log 10). */
  readonly logit_scale: tf.Variable<tf.Rank.R0>;
  /** SigLIP only: the sigmoid's bias (init −10). */
  readonly logit_bias: tf.Variable<tf.Rank.R0> | undefined;

  constructor(
    readonly name: 'clip' | 'siglip',
    ctx: ObjectiveContext,
  ) {
    super();
    const counts = new Map<string, number>();
    for (const item of ctx.train)
      for (const w of textWords(item.text)) counts.set(w, (counts.get(w) ?? 0) + 1);
    if (counts.size === 0)
      throw new Error(
        `pretrain ${name}: the training records have no text (conversations) to contrast the images with; use objective supervised or mae`,
      );
    const kept = [...counts.entries()]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, MAX_WORDS);
    this.words = new Map(kept.map(([w], i) => [w, i]));
    const init = new Initializer({ seed: ctx.seed, std: 0.02 });
    this.word_embedding = this.param(
      'word_embedding',
      init.normal([this.words.size, PROJECTION_DIM]) as tf.Tensor2D,
    );
    this.text_projection = this.module(
      'text_projection',
      new Linear(PROJECTION_DIM, PROJECTION_DIM, { init }),
    );
    // small grids: the projection sees every token in place (where things are is part of the text), else the mean
    const tokens = ctx.grid[0] * ctx.grid[1];
    this.flattenTokens = tokens * ctx.dim <= MAX_FLAT_FEATURES;
    const visualIn = this.flattenTokens ? tokens * ctx.dim : ctx.dim;
    this.visual_projection = this.module('visual_projection', new Linear(visualIn, PROJECTION_DIM, { init }));
    this.logit_scale = this.param(
      'logit_scale',
      tf.scalar(name === 'clip' ? Math.log(1 / 0.07) : Math.log(10)),
    );
    this.logit_bias = name === 'siglip' ? this.param('logit_bias', tf.scalar(-10)) : undefined;
  }

  /** Mean word vector of each text (rows of normalised word counts × the embedding table). */
  private bagOfWords(texts: readonly string[]): tf.Tensor2D {
    const v = this.words.size;
    const counts = new Float32Array(texts.length * v);
    texts.forEach((text, i) => {
      const ids = textWords(text)
        .map((w) => this.words.get(w))
        .filter((id): id is number => id !== undefined);
      for (const id of ids) counts[i * v + id] = (counts[i * v + id] as number) + 1 / ids.length;
    });
    return tf.matMul(tf.tensor2d(counts, [texts.length, v]), this.word_embedding);
  }

  embedTexts(texts: readonly string[]): tf.Tensor2D {
    return tf.tidy(() => l2normalize(this.text_projection.forward(this.bagOfWords(texts)) as tf.Tensor2D));
  }

  embedImages(tokens: tf.Tensor3D): tf.Tensor2D {
    return tf.tidy(() => {
      const [n, t, d] = tokens.shape;
      const pooled = this.flattenTokens ? tf.reshape(tokens, [n, t * d]) : meanTokens(tokens);
      return l2normalize(this.visual_projection.forward(pooled) as tf.Tensor2D);
    });
  }

  loss(encode: EncodeTokens, batch: PretrainBatch): tf.Scalar {
    const images = this.embedImages(encode(batch.pixels));
    const texts = this.embedTexts(batch.items.map((i) => i.text));
    const n = batch.items.length;
    const logits = tf.mul(tf.matMul(images, texts, false, true), tf.exp(this.logit_scale));
    if (this.name === 'clip') {
      const eye = tf.oneHot(tf.range(0, n, 1, 'int32'), n);
      const rows = tf.losses.softmaxCrossEntropy(eye, logits);
      const cols = tf.losses.softmaxCrossEntropy(eye, tf.transpose(logits));
      return tf.div(tf.add(rows, cols), 2) as tf.Scalar;
    }
    // SigLIP: every pair is a binary problem, +1 on the diagonal and −1 elsewhere, summed per image
    const signs = tf.sub(tf.mul(tf.eye(n), 2), 1);
    const z = tf.mul(signs, tf.add(logits, this.logit_bias as tf.Variable));
    // −log σ(z) = relu(−z) + log(1 + e^−|z|), stable; tf.logSigmoid's gradient fails on wasm
    const nll = tf.add(tf.relu(tf.neg(z)), tf.log1p(tf.exp(tf.neg(tf.abs(z)))));
    return tf.div(tf.sum(nll), n) as tf.Scalar;
  }
}

function l2normalize(x: tf.Tensor2D): tf.Tensor2D {
  return tf.div(x, tf.add(tf.norm(x, 'euclidean', 1, true), 1e-6)) as tf.Tensor2D;
}

/** [N, C, H, W] → [N, rows·cols, cellH·cellW·C]: each token's pixels, in one fixed order. */
export function cellPixels(pixels: tf.Tensor4D, grid: [number, number]): tf.Tensor3D {
  const [n, c, h, w] = pixels.shape;
  const [rows, cols] = grid;
  const ch = h / rows;
  const cw = w / cols;
  const blocks = tf.reshape(pixels, [n, c, rows, ch, cols, cw]);
  return tf.reshape(tf.transpose(blocks, [0, 2, 4, 3, 5, 1]), [n, rows * cols, ch * cw * c]) as tf.Tensor3D;
}

class MaskedPatchObjective extends Module implements PretrainObjective {
  readonly name = 'mae';
  readonly decoder: Linear;
  private readonly rng: Rng;

  constructor(
    private readonly ctx: ObjectiveContext,
    private readonly maskRatio: number,
  ) {
    super();
    if (!(maskRatio > 0 && maskRatio < 1))
      throw new Error(`pretrain mae: maskRatio must be in (0, 1), got ${maskRatio}`);
    const [rows, cols] = ctx.grid;
    const cellPixelCount = (ctx.imageSize[0] / rows) * (ctx.imageSize[1] / cols) * ctx.channels;
    const init = new Initializer({ seed: ctx.seed, std: 1 / Math.sqrt(ctx.dim) });
    this.decoder = this.module('decoder', new Linear(ctx.dim, cellPixelCount, { init }));
    this.rng = new Rng(ctx.seed + 1);
  }

  /** 1 = masked, per image and cell: round(ratio × cells) cells (at least one) chosen at random. */
  sampleMask(n: number): Float32Array {
    const cells = this.ctx.grid[0] * this.ctx.grid[1];
    const masked = Math.max(1, Math.min(cells, Math.round(this.maskRatio * cells)));
    const mask = new Float32Array(n * cells);
    for (let i = 0; i < n; i++) {
      const order = Array.from({ length: cells }, (_, k) => k);
      for (let k = cells - 1; k > 0; k--) {
        const j = Math.floor(this.rng.nextFloat() * (k + 1));
        [order[k], order[j]] = [order[j] as number, order[k] as number];
      }
      for (const k of order.slice(0, masked)) mask[i * cells + k] = 1;
    }
    return mask;
  }

  /** Mean squared pixel error on the masked cells of `pixels` under `mask` (1 = masked). */
  maskedError(encode: EncodeTokens, pixels: tf.Tensor4D, mask: Float32Array): tf.Scalar {
    const [n, , h, w] = pixels.shape;
    const [rows, cols] = this.ctx.grid;
    const cellMask = tf.tensor2d(mask, [n, rows * cols]);
    const pixelMask = tf.reshape(
      tf.mul(tf.reshape(cellMask, [n, 1, rows, 1, cols, 1]), tf.ones([1, 1, 1, h / rows, 1, w / cols])),
      [n, 1, h, w],
    );
    const input = tf.mul(pixels, tf.sub(1, pixelMask)) as tf.Tensor4D;
    const predicted = this.decoder.forward(encode(input));
    const perCell = tf.mean(tf.square(tf.sub(predicted, cellPixels(pixels, this.ctx.grid))), 2);
    return tf.div(
      tf.sum(tf.mul(perCell, cellMask)),
      Math.max(
        1,
        mask.reduce((a, b) => a + b, 0),
      ),
    ) as tf.Scalar;
  }

  loss(encode: EncodeTokens, batch: PretrainBatch): tf.Scalar {
    return this.maskedError(encode, batch.pixels, this.sampleMask(batch.items.length));
  }
}

export interface ObjectiveOptions {
  /** supervised: weight of the box regression against the label cross-entropy (default 10). */
  boxWeight?: number;
  /** mae: share of cells masked (default 0.5). */
  maskRatio?: number;
}

export function createObjective(
  name: PretrainObjectiveName,
  ctx: ObjectiveContext,
  opts: ObjectiveOptions = {},
): PretrainObjective {
  if (name === 'supervised') return new SupervisedObjective(ctx, opts.boxWeight ?? 10);
  if (name === 'clip' || name === 'siglip') return new ContrastiveObjective(name, ctx);
  if (name === 'mae') return new MaskedPatchObjective(ctx, opts.maskRatio ?? 0.5);
  throw new Error(
    `pretrain: unknown objective '${String(name)}': use one of ${PRETRAIN_OBJECTIVES.join(', ')}`,
  );
}

export { ContrastiveObjective, MaskedPatchObjective, SupervisedObjective };
