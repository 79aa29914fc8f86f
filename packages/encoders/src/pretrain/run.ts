// The pretraining loop: one objective, the tower fully trainable, AdamW with linear warm-up and cosine decay;
// then held-out evidence, each figure next to its control (and, for the probes, the untrained tower's figure).
import { AdamW, computeGradients, cosineSchedule, disposeGradients, Rng, tf } from '@vistune/core';
import {
  type ContrastiveObjective,
  cellPixels,
  cellTargets,
  createObjective,
  labelSetKey,
  type MaskedPatchObjective,
  type ObjectiveOptions,
  type PretrainBatch,
  type PretrainObjective,
  type PretrainObjectiveName,
} from './objectives.js';
import { linearProbe, retrievalRecall, shuffledOrder } from './probe.js';
import type { PretrainItem } from './records.js';
import { towerTokens, type VisionTower } from './tower.js';

/** A processed image: pixel_values [C, H, W] and the map from the file's pixels to them. */
export interface LoadedImage {
  tensor: tf.Tensor;
  transform?: { toProcessed(x: number, y: number): [number, number] };
}

export interface PretrainOptions extends ObjectiveOptions {
  objective: PretrainObjectiveName;
  train: readonly PretrainItem[];
  heldOut: readonly PretrainItem[];
  /** Runs the processor on an image path (the caller owns decoding). */
  loadImage: (path: string) => Promise<LoadedImage>;
  steps: number;
  lr: number;
  batchSize: number;
  seed?: number;
  /** Training images the probes are fitted on (default 2000) and held-out images scored (default 1000). */
  probeTrainImages?: number;
  probeHeldOutImages?: number;
  onStep?: (step: number, loss: number) => void;
}

/** One held-out figure and its control: a probe on shuffled labels, retrieval of shuffled pairs, … */
export interface PretrainEvidence {
  name: string;
  value: number;
  control: number;
  controlName: string;
  /** The same figure for the tower before pretraining (probes only). */
  before?: number;
  /** Rows / images it was measured on. */
  n: number;
  /** lower is better (errors) instead of higher (accuracies, recalls). */
  lowerIsBetter?: boolean;
}

export interface PretrainResult {
  objective: PretrainObjectiveName;
  steps: number;
  firstLoss: number;
  lastLoss: number;
  seconds: number;
  evidence: PretrainEvidence[];
}

interface CachedImage {
  pixels: Float32Array;
  item: PretrainItem;
}

/** Processed pixels per image, loaded once; boxes mapped into the processed image. */
class ImageCache {
  private readonly cache = new Map<string, CachedImage>();
  shape: [number, number, number] | undefined;
  constructor(private readonly load: (path: string) => Promise<LoadedImage>) {}

  async get(item: PretrainItem): Promise<CachedImage> {
    const hit = this.cache.get(item.image);
    if (hit) return hit;
    const { tensor, transform } = await this.load(item.image);
    const shape = tensor.shape as [number, number, number];
    const pixels = tensor.dataSync() as Float32Array;
    tensor.dispose();
    this.shape ??= shape;
    if (shape.join() !== this.shape.join())
      throw new Error(
        `${item.image}: processed to [${shape}] but earlier images to [${this.shape}]: pretraining needs one size; give the processor a fixed size (crop_size / size)`,
      );
    const map = (x: number, y: number) => transform?.toProcessed(x, y) ?? [x, y];
    const objects = item.objects?.map((o) => {
      const [x0, y0] = map(o.box[0], o.box[1]);
      const [x1, y1] = map(o.box[2], o.box[3]);
      return { label: o.label, box: [x0, y0, x1, y1] as [number, number, number, number] };
    });
    const loaded = { pixels, item: { ...item, ...(objects ? { objects } : {}) } };
    this.cache.set(item.image, loaded);
    return loaded;
  }

  async batch(items: readonly PretrainItem[]): Promise<PretrainBatch> {
    const loaded = await Promise.all(items.map((i) => this.get(i)));
    const [c, h, w] = this.shape as [number, number, number];
    const pixels = new Float32Array(loaded.length * c * h * w);
    loaded.forEach((l, i) => {
      pixels.set(l.pixels, i * c * h * w);
    });
    return { pixels: tf.tensor4d(pixels, [loaded.length, c, h, w]), items: loaded.map((l) => l.item) };
  }
}

/** Batches of at most 64 images through `fn` (features out as arrays, tensors freed). */
async function inBatches<T>(
  cache: ImageCache,
  items: readonly PretrainItem[],
  fn: (batch: PretrainBatch) => T,
): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < items.length; i += 64) {
    const batch = await cache.batch(items.slice(i, i + 64));
    try {
      out.push(fn(batch));
    } finally {
      batch.pixels.dispose();
    }
  }
  return out;
}

/** Features the probes read: per-object cell tokens (label ids) and mean image tokens (label-set ids). */
async function probeRows(
  tower: VisionTower,
  cache: ImageCache,
  items: readonly PretrainItem[],
  grid: [number, number],
  imageSize: [number, number],
  classes: { objects: Map<string, number>; images: Map<string, number> },
) {
  const cellX: number[] = [];
  const cellY: number[] = [];
  const imageX: number[] = [];
  const imageY: number[] = [];
  let dim = 0;
  await inBatches(cache, items, (batch) => {
    const tokens = tf.tidy(() => towerTokens(tower, batch.pixels).tokens);
    const [, t, d] = tokens.shape;
    dim = d;
    const values = tokens.dataSync();
    tokens.dispose();
    batch.items.forEach((item, i) => {
      for (const c of cellTargets(item, grid, imageSize)) {
        const id = classes.objects.get(c.label);
        if (id === undefined) continue;
        const start = (i * t + c.cell) * d;
        cellX.push(...values.subarray(start, start + d));
        cellY.push(id);
      }
      const key = item.labels?.length ? classes.images.get(labelSetKey(item.labels)) : undefined;
      if (key === undefined) return;
      const mean = new Float32Array(d);
      for (let k = 0; k < t; k++)
        for (let j = 0; j < d; j++) mean[j] += (values[(i * t + k) * d + j] as number) / t;
      imageX.push(...mean);
      imageY.push(key);
    });
  });
  const rows = (x: number[], y: number[]) => ({ x: Float32Array.from(x), y: Int32Array.from(y) });
  return { dim, cells: rows(cellX, cellY), images: rows(imageX, imageY) };
}

async function probeEvidence(
  tower: VisionTower,
  cache: ImageCache,
  probeTrain: readonly PretrainItem[],
  heldOut: readonly PretrainItem[],
  grid: [number, number],
  imageSize: [number, number],
  seed: number,
): Promise<PretrainEvidence[]> {
  const index = (values: Iterable<string>) => new Map([...new Set(values)].sort().map((v, i) => [v, i]));
  const loaded = await Promise.all(probeTrain.map((i) => cache.get(i)));
  const classes = {
    objects: index(loaded.flatMap((l) => (l.item.objects ?? []).map((o) => o.label))),
    images: index(loaded.flatMap((l) => (l.item.labels?.length ? [labelSetKey(l.item.labels)] : []))),
  };
  if (classes.objects.size < 2 && classes.images.size < 2) return [];
  const train = await probeRows(tower, cache, probeTrain, grid, imageSize, classes);
  const test = await probeRows(tower, cache, heldOut, grid, imageSize, classes);
  const out: PretrainEvidence[] = [];
  const add = (name: string, kind: 'cells' | 'images', count: number) => {
    if (count < 2 || train[kind].y.length === 0 || test[kind].y.length === 0) return;
    const r = linearProbe(train[kind], test[kind], train.dim, count, { seed });
    out.push({
      name,
      value: r.accuracy,
      control: r.shuffled,
      controlName: `probe on shuffled labels (majority class ${(100 * r.majority).toFixed(1)} %)`,
      n: r.heldOutRows,
    });
  };
  add('linear probe: object label from its cell token', 'cells', classes.objects.size);
  add('linear probe: image label set from the mean token', 'images', classes.images.size);
  return out;
}

async function retrievalEvidence(
  tower: VisionTower,
  objective: ContrastiveObjective,
  cache: ImageCache,
  heldOut: readonly PretrainItem[],
  seed: number,
): Promise<PretrainEvidence[]> {
  const parts = await inBatches(cache, heldOut, (batch) =>
    tf.tidy(() => objective.embedImages(towerTokens(tower, batch.pixels).tokens)),
  );
  const images = tf.concat(parts) as tf.Tensor2D;
  tf.dispose(parts);
  const keys = heldOut.map((i) => i.text);
  const texts = objective.embedTexts(keys);
  const control = shuffledOrder(keys.length, new Rng(seed));
  try {
    return [1, 5].map((k) => ({
      name: `image→text recall@${k}`,
      value: retrievalRecall(images, texts, keys, k),
      control: retrievalRecall(images, texts, keys, k, control),
      controlName: 'recall of shuffled image–text pairs',
      n: keys.length,
    }));
  } finally {
    tf.dispose([images, texts]);
  }
}

async function reconstructionEvidence(
  tower: VisionTower,
  objective: MaskedPatchObjective,
  cache: ImageCache,
  probeTrain: readonly PretrainItem[],
  heldOut: readonly PretrainItem[],
  grid: [number, number],
): Promise<PretrainEvidence[]> {
  // control: predict every masked cell as the training images' mean cell at that position
  const sums = await inBatches(cache, probeTrain, (b) =>
    tf.tidy(() => tf.sum(cellPixels(b.pixels, grid), 0)),
  );
  const meanCell = tf.tidy(() => tf.div(tf.addN(sums), probeTrain.length));
  tf.dispose(sums);
  const errors = await inBatches(cache, heldOut, (batch) => {
    const mask = objective.sampleMask(batch.items.length);
    return tf.tidy(() => {
      const model = objective
        .maskedError((p) => towerTokens(tower, p).tokens, batch.pixels, mask)
        .dataSync()[0];
      const [n] = batch.pixels.shape;
      const cellMask = tf.tensor2d(mask, [n, grid[0] * grid[1]]);
      const perCell = tf.mean(tf.square(tf.sub(cellPixels(batch.pixels, grid), meanCell)), 2);
      const baseline = tf
        .div(
          tf.sum(tf.mul(perCell, cellMask)),
          mask.reduce((a, b) => a + b, 0),
        )
        .dataSync()[0];
      return { model: model as number, baseline: baseline as number, n };
    });
  });
  meanCell.dispose();
  const total = errors.reduce((a, e) => a + e.n, 0);
  const avg = (key: 'model' | 'baseline') => errors.reduce((a, e) => a + e[key] * e.n, 0) / total;
  return [
    {
      name: 'masked-cell pixel error (MSE)',
      value: avg('model'),
      control: avg('baseline'),
      controlName: "the training images' mean cell",
      n: total,
      lowerIsBetter: true,
    },
  ];
}

/** Pretrains `tower` in place with one objective; the objective's heads are disposed at the end. */
export async function pretrainTower(tower: VisionTower, opts: PretrainOptions): Promise<PretrainResult> {
  if (opts.train.length === 0) throw new Error('pretrain: no training images (records with an `image`)');
  if (opts.heldOut.length === 0)
    throw new Error('pretrain: no held-out images: give a held-out data file (--val) for the evidence');
  const seed = opts.seed ?? 0;
  const cache = new ImageCache(opts.loadImage);
  const first = await cache.batch(opts.train.slice(0, 1));
  const [, channels, h, w] = first.pixels.shape;
  const { grid } = tf.tidy(() => {
    const out = towerTokens(tower, first.pixels);
    return { grid: out.grid };
  });
  first.pixels.dispose();
  const imageSize: [number, number] = [h, w];
  const dim = tower.hiddenSize;
  const probeTrain = opts.train.slice(0, opts.probeTrainImages ?? 2000);
  const heldOut = opts.heldOut.slice(0, opts.probeHeldOutImages ?? 1000);
  const before = await probeEvidence(tower, cache, probeTrain, heldOut, grid, imageSize, seed);

  const objective: PretrainObjective = createObjective(
    opts.objective,
    { dim, grid, imageSize, channels, train: opts.train, seed },
    opts,
  );
  const towerParams = tower.namedParameters().map(([n, p]) => [`tower.${n}`, p] as [string, tf.Variable]);
  const wasTrainable = towerParams.map(([, p]) => p.trainable);
  for (const [, p] of towerParams) p.trainable = true;
  const params = [...towerParams, ...objective.namedParameters('objective')];
  const optimizer = new AdamW(params, {
    lr: opts.lr,
    weightDecay: 0,
    schedule: cosineSchedule({ totalSteps: opts.steps, warmupRatio: 0.05 }),
  });
  const rng = new Rng(seed + 7);
  const started = Date.now();
  let firstLoss = Number.NaN;
  let lastLoss = Number.NaN;
  try {
    for (let step = 1; step <= opts.steps; step++) {
      const items = Array.from(
        { length: Math.min(opts.batchSize, opts.train.length) },
        () => opts.train[Math.floor(rng.nextFloat() * opts.train.length)] as PretrainItem,
      );
      const batch = await cache.batch(items);
      try {
        const { loss, grads } = computeGradients(
          () => objective.loss((p) => towerTokens(tower, p).tokens, batch),
          params,
        );
        optimizer.step(grads);
        disposeGradients(grads);
        if (!Number.isFinite(loss))
          throw new Error(`pretrain: the loss is ${loss} at step ${step}: lower the lr (now ${opts.lr})`);
        if (step === 1) firstLoss = loss;
        lastLoss = loss;
        opts.onStep?.(step, loss);
      } finally {
        batch.pixels.dispose();
      }
    }
    const seconds = (Date.now() - started) / 1000;
    const after = await probeEvidence(tower, cache, probeTrain, heldOut, grid, imageSize, seed);
    const evidence: PretrainEvidence[] = after.map((e) => ({
      ...e,
      before: before.find((b) => b.name === e.name)?.value,
    }));
    if (objective.name === 'clip' || objective.name === 'siglip')
      evidence.push(
        ...(await retrievalEvidence(tower, objective as ContrastiveObjective, cache, heldOut, seed)),
      );
    if (objective.name === 'mae')
      evidence.push(
        ...(await reconstructionEvidence(
          tower,
          objective as MaskedPatchObjective,
          cache,
          probeTrain,
          heldOut,
          grid,
        )),
      );
    return { objective: opts.objective, steps: opts.steps, firstLoss, lastLoss, seconds, evidence };
  } finally {
    towerParams.forEach(([, p], i) => {
      p.trainable = wasTrainable[i] as boolean;
    });
    optimizer.dispose();
    objective.dispose();
  }
}

const pct = (v: number) => `${(100 * v).toFixed(1)} %`;

/** One line per figure: value, control and (probes) the untrained tower's value. */
export function formatPretrainEvidence(evidence: readonly PretrainEvidence[]): string[] {
  return evidence.map((e) => {
    const f = e.lowerIsBetter ? (v: number) => v.toFixed(4) : pct;
    const before = e.before === undefined ? '' : `; untrained tower ${f(e.before)}`;
    return `held out (${e.n}): ${e.name} ${f(e.value)} — control, ${e.controlName}: ${f(e.control)}${before}`;
  });
}
