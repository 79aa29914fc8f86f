// Stage 0 of the demo: supervised pretraining of the vision tower on the world's layouts, the demo's stand-in
// for LLaVA's pretrained CLIP. Each image token (one grid cell) learns to say what its cell holds: colour,
// shape, size (or empty) and the object's box in the cell. A linear read-out of those facts is what the LLM
// later needs; a random frozen tower keeps the images apart but left shape near chance (see README).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AdamW,
  computeGradientsAsync,
  disposeGradients,
  encodeAndSelect,
  type MultimodalModel,
  tf,
} from '@vistune/core';
import { COLOUR_NAMES, createRng, type SceneLayout, SHAPES, SIZES } from '@vistune/demo-world';
import { boxIou } from '@vistune/tasks-grounding';

export interface TowerPretrainPlan {
  steps: number;
  lr: number;
  batchSize: number;
}

export interface TowerPretrainOptions {
  /** A generated world (scenes.json, images/) whose train split is the training data, test split the check. */
  worldDir: string;
  /** Side of a grid cell in pixels: the tower's patch size, one object per cell. */
  cellSize: number;
  loadImage: (path: string) => Promise<tf.Tensor3D>;
  plan: TowerPretrainPlan;
  seed: number | string;
  /** Called after each step with its loss. */
  onStep?: (step: number, loss: number) => void;
}

/** Share of held-out cells whose attribute the read-out gets right (empty counts as a class). */
export interface CellAccuracy {
  colour: number;
  shape: number;
  size: number;
  /** Mean IoU of the predicted and true box, over occupied cells. */
  boxIou: number;
  cells: number;
}

export interface TowerPretrainResult {
  steps: number;
  firstLoss: number;
  lastLoss: number;
  heldOut: CellAccuracy;
}

const ATTRIBUTES = [
  { name: 'colour', classes: COLOUR_NAMES.length + 1 },
  { name: 'shape', classes: SHAPES.length + 1 },
  { name: 'size', classes: SIZES.length + 1 },
] as const;
const BOX = 4;
const OUTPUTS = ATTRIBUTES.reduce((n, a) => n + a.classes, 0) + BOX;
/** Weight of the box regression (cell-relative coordinates, squared error) against the three cross-entropies. */
const BOX_WEIGHT = 10;

/** Per-cell targets of one layout: class ids (last class = empty) and the box in cell units (0 when empty). */
interface CellTargets {
  classes: [number, number, number][];
  boxes: [number, number, number, number][];
  occupied: number[];
}

export function cellTargets(layout: SceneLayout, cellSize: number): CellTargets {
  const grid = Math.round(layout.imageSize / cellSize);
  const empty: [number, number, number] = [COLOUR_NAMES.length, SHAPES.length, SIZES.length];
  const t: CellTargets = {
    classes: Array.from({ length: grid * grid }, () => [...empty] as [number, number, number]),
    boxes: Array.from({ length: grid * grid }, () => [0, 0, 0, 0] as [number, number, number, number]),
    occupied: new Array<number>(grid * grid).fill(0),
  };
  for (const o of layout.objects) {
    const cx = Math.min(grid - 1, Math.floor(o.centre[0] / cellSize));
    const cy = Math.min(grid - 1, Math.floor(o.centre[1] / cellSize));
    const cell = cy * grid + cx;
    const [x0, y0] = [cx * cellSize, cy * cellSize];
    t.classes[cell] = [COLOUR_NAMES.indexOf(o.colour), SHAPES.indexOf(o.shape), SIZES.indexOf(o.size)];
    t.boxes[cell] = [
      (o.box[0] - x0) / cellSize,
      (o.box[1] - y0) / cellSize,
      (o.box[2] - x0) / cellSize,
      (o.box[3] - y0) / cellSize,
    ];
    t.occupied[cell] = 1;
  }
  return t;
}

async function loadScenes(worldDir: string): Promise<Record<string, Record<string, SceneLayout>>> {
  return JSON.parse(await readFile(join(worldDir, 'scenes.json'), 'utf8')) as Record<
    string,
    Record<string, SceneLayout>
  >;
}

const pct = (value: number) => `${(100 * value).toFixed(1)} %`;

/** One line: the held-out cells the tower names right, per attribute, and the boxes' mean IoU. */
export function formatTowerSummary(heldOut: CellAccuracy): string {
  return (
    `held-out cells named right: colour ${pct(heldOut.colour)}, shape ${pct(heldOut.shape)}, ` +
    `size ${pct(heldOut.size)}; box IoU ${heldOut.boxIou.toFixed(2)}`
  );
}

/**
 * Trains the model's image encoder (and a linear read-out, discarded afterwards) to name each cell's contents,
 * then measures the read-out on the world's test images. The encoder's trainable flags are left as found.
 */
export async function pretrainVisionTower(
  model: MultimodalModel,
  opts: TowerPretrainOptions,
): Promise<TowerPretrainResult> {
  const spec = model.modalities.get('image');
  if (!spec) throw new Error('pretrainVisionTower: the model has no "image" modality');
  const scenes = await loadScenes(opts.worldDir);
  const train = Object.entries(scenes.train ?? {});
  if (train.length === 0)
    throw new Error(`pretrainVisionTower: ${opts.worldDir}/scenes.json has no train scenes`);
  const encoderParams = model.namedParameters().filter(([n]) => n.startsWith('modalities.image.encoder.'));
  const wasTrainable = encoderParams.map(([, p]) => p.trainable);
  for (const [, p] of encoderParams) p.trainable = true;
  const dim = spec.adapter.inDim;
  const rng = createRng(opts.seed, 'tower');
  const weight = tf.variable(
    tf.tidy(() => tf.mul(tf.randomUniform([dim, OUTPUTS], -1, 1, 'float32', 17), 1 / Math.sqrt(dim))),
    true,
    'tower-readout.weight',
  );
  const bias = tf.variable(tf.zeros([OUTPUTS]), true, 'tower-readout.bias');
  const params: [string, tf.Variable][] = [
    ...encoderParams,
    ['readout.weight', weight],
    ['readout.bias', bias],
  ];
  const { steps, lr, batchSize } = opts.plan;
  const warmup = Math.max(1, Math.round(steps * 0.05));
  const optimizer = new AdamW(params, {
    lr,
    weightDecay: 0,
    // linear warm-up, then cosine to 0
    schedule: (t) =>
      t < warmup ? (t + 1) / warmup : 0.5 * (1 + Math.cos((Math.PI * (t - warmup)) / (steps - warmup))),
  });

  const readout = (pixels: tf.Tensor4D): tf.Tensor2D => {
    const { features } = encodeAndSelect(spec.encoder, pixels, spec.select);
    return tf.add(tf.matMul(tf.reshape(features, [-1, dim]), weight), bias) as tf.Tensor2D;
  };
  const batchOf = async (items: [string, SceneLayout][]) => {
    const images = await Promise.all(items.map(([image]) => opts.loadImage(join(opts.worldDir, image))));
    const pixels = tf.stack(images) as tf.Tensor4D;
    tf.dispose(images);
    const targets = items.map(([, layout]) => cellTargets(layout, opts.cellSize));
    return { pixels, targets };
  };

  let firstLoss = Number.NaN;
  let lastLoss = Number.NaN;
  try {
    for (let step = 1; step <= steps; step++) {
      const items = Array.from(
        { length: batchSize },
        () => train[rng.int(0, train.length - 1)] as [string, SceneLayout],
      );
      const { pixels, targets } = await batchOf(items);
      const cls = ATTRIBUTES.map((_, a) =>
        tf.tensor1d(
          targets.flatMap((t) => t.classes.map((c) => c[a])),
          'int32',
        ),
      );
      const boxes = tf.tensor2d(
        targets.flatMap((t) => t.boxes),
        undefined,
        'float32',
      );
      const occupied = tf.tensor2d(
        targets.flatMap((t) => t.occupied),
        [boxes.shape[0], 1],
        'float32',
      );
      const { loss, grads } = await computeGradientsAsync(() => {
        const out = readout(pixels);
        let offset = 0;
        const terms = ATTRIBUTES.map((attr, a) => {
          const logits = tf.slice(out, [0, offset], [-1, attr.classes]);
          offset += attr.classes;
          return tf.losses.softmaxCrossEntropy(tf.oneHot(cls[a] as tf.Tensor1D, attr.classes), logits);
        });
        const boxError = tf.mean(
          tf.mul(tf.square(tf.sub(tf.slice(out, [0, offset], [-1, BOX]), boxes)), occupied),
        );
        return tf.addN([...terms, tf.mul(boxError, BOX_WEIGHT)]) as tf.Scalar;
      }, params);
      optimizer.step(grads);
      disposeGradients(grads);
      tf.dispose([pixels, ...cls, boxes, occupied]);
      if (step === 1) firstLoss = loss;
      lastLoss = loss;
      opts.onStep?.(step, loss);
    }
    const heldOut = await measure(Object.entries(scenes.test ?? {}), batchOf, readout);
    return { steps, firstLoss, lastLoss, heldOut };
  } finally {
    encoderParams.forEach(([, p], i) => {
      p.trainable = wasTrainable[i] as boolean;
    });
    optimizer.dispose();
    tf.dispose([weight, bias]);
  }
}

async function measure(
  scenes: [string, SceneLayout][],
  batchOf: (items: [string, SceneLayout][]) => Promise<{ pixels: tf.Tensor4D; targets: CellTargets[] }>,
  readout: (pixels: tf.Tensor4D) => tf.Tensor2D,
): Promise<CellAccuracy> {
  const right = [0, 0, 0];
  let cells = 0;
  let iouSum = 0;
  let occupiedCells = 0;
  for (let i = 0; i < scenes.length; i += 64) {
    const { pixels, targets } = await batchOf(scenes.slice(i, i + 64));
    const out = tf.tidy(() => readout(pixels));
    const values = await out.array();
    tf.dispose([pixels, out]);
    const flat = targets.flatMap((t) =>
      t.classes.map((c, k) => ({ c, box: t.boxes[k], occupied: t.occupied[k] })),
    );
    flat.forEach((cell, row) => {
      const v = values[row] as number[];
      let offset = 0;
      ATTRIBUTES.forEach((attr, a) => {
        const logits = v.slice(offset, offset + attr.classes);
        offset += attr.classes;
        if (logits.indexOf(Math.max(...logits)) === cell.c[a]) right[a] = (right[a] ?? 0) + 1;
      });
      if (cell.occupied) {
        iouSum += boxIou(v.slice(offset, offset + BOX) as [number, number, number, number], cell.box);
        occupiedCells++;
      }
      cells++;
    });
  }
  const share = (n: number) => (cells ? n / cells : 0);
  return {
    colour: share(right[0] ?? 0),
    shape: share(right[1] ?? 0),
    size: share(right[2] ?? 0),
    boxIou: occupiedCells ? iouSum / occupiedCells : 0,
    cells,
  };
}
