// `point_mlp` (registry kind `encoder`): a PointNet-style shared MLP over the points, then max-pooling within
// K direction groups → K tokens per cloud. Group k holds the points whose centred xyz points most nearly
// along anchor direction k (K anchors spread evenly over the sphere), so each token describes one side of the
// object and the token order is the same for every cloud. hidden_states[i] = the pooled output of MLP layer
// i (0 = the first, per-point embedding layer), so FeatureSelect layers work as for a ViT.
import {
  customGrad,
  type EncodeOptions,
  type EncoderOutput,
  type FeatureLayout,
  Initializer,
  Linear,
  type ModalityEncoder,
  Module,
  tf,
} from '@vistune/core';
import { z } from '@vistune/core';

export const pointMlpSchema = z.strictObject({
  /** Channels per point: 3 (xyz) or 6 (xyz + rgb), as the `points` processor makes them. */
  in_channels: z.number().int().min(3).default(6),
  /** Width of every MLP layer and of the tokens. */
  hidden_size: z.number().int().min(1).default(64),
  /** Shared MLP layers (Linear + ReLU each). */
  num_layers: z.number().int().min(1).default(3),
  /** Direction groups = tokens per cloud (1: one global max-pool, as PointNet). */
  groups: z.number().int().min(1).max(256).default(8),
  /** Std of the random init (Linear weights). */
  init_std: z.number().positive().default(0.2),
  /** Seed of the random init (the pipeline fills it in). */
  seed: z.number().int().default(0),
});
export type PointMlpConfig = z.output<typeof pointMlpSchema>;

/** K unit vectors spread over the sphere (Fibonacci lattice); K = 1 is the +z axis. [3, K] for xyz @ anchors. */
export function groupAnchors(groups: number): Float32Array {
  const out = new Float32Array(3 * groups);
  const golden = Math.PI * (3 - Math.sqrt(5));
  for (let k = 0; k < groups; k++) {
    const z = groups === 1 ? 1 : 1 - (2 * (k + 0.5)) / groups;
    const r = Math.sqrt(Math.max(0, 1 - z * z));
    out[k] = r * Math.cos(golden * k);
    out[groups + k] = r * Math.sin(golden * k);
    out[2 * groups + k] = z;
  }
  return out;
}

/**
 * [N, P, H] features ≥ 0 (ReLU outputs) → [N, K, H]: per item, group and channel the largest feature of the
 * points in that group (0 for an empty group). One pass in JS each way: tfjs's own max gradient broadcasts an
 * equality test over [N, P, K, H], which takes ~0.5 s per batch on wasm; this routes dy to the arg-max point.
 */
export function groupMaxPool(features: tf.Tensor3D, group: Int32Array, groups: number): tf.Tensor3D {
  const [N, P, H] = features.shape;
  if (group.length !== N * P)
    throw new Error(`groupMaxPool: ${group.length} group indices for ${N}×${P} points`);
  const pool = customGrad<[tf.Tensor3D]>(([x]) => {
    const values = x.dataSync();
    const pooled = new Float32Array(N * groups * H);
    // Arg-max point of each (item, group, channel); -1 where the group is empty.
    const from = new Int32Array(N * groups * H).fill(-1);
    for (let n = 0; n < N; n++)
      for (let p = 0; p < P; p++) {
        const out = (n * groups + group[n * P + p]) * H;
        const row = (n * P + p) * H;
        for (let h = 0; h < H; h++)
          if (from[out + h] < 0 || values[row + h] > pooled[out + h]) {
            pooled[out + h] = values[row + h];
            from[out + h] = p;
          }
      }
    return {
      value: tf.tensor3d(pooled, [N, groups, H]),
      gradFunc: (dy) => {
        const upstream = dy.dataSync();
        const dx = new Float32Array(N * P * H);
        for (let n = 0; n < N; n++)
          for (let k = 0; k < groups; k++)
            for (let h = 0; h < H; h++) {
              const out = (n * groups + k) * H + h;
              if (from[out] >= 0) dx[(n * P + from[out]) * H + h] += upstream[out];
            }
        return [tf.tensor3d(dx, [N, P, H])];
      },
    };
  });
  return pool(features) as tf.Tensor3D;
}

export class PointMlpEncoder extends Module implements ModalityEncoder {
  readonly hiddenSize: number;
  readonly numHiddenStates: number;
  readonly layers: Linear[];
  private readonly anchors: Float32Array;

  constructor(readonly config: PointMlpConfig) {
    super();
    this.hiddenSize = config.hidden_size;
    this.numHiddenStates = config.num_layers;
    this.anchors = groupAnchors(config.groups);
    const init = new Initializer({ seed: config.seed, std: config.init_std });
    this.layers = Array.from({ length: config.num_layers }, (_, i) =>
      this.module(
        `layers.${i}`,
        new Linear(i === 0 ? config.in_channels : config.hidden_size, config.hidden_size, { init }),
      ),
    );
  }

  featureLayout(itemShape: readonly number[]): FeatureLayout {
    if (itemShape.length !== 2 || itemShape[1] !== this.config.in_channels)
      throw new Error(
        `point_mlp: an item must be [points, ${this.config.in_channels}] (xyz${this.config.in_channels > 3 ? ' + rgb' : ''}), got [${itemShape}]: ` +
          'match encoder.in_channels to the processor (colour: true → 6, false → 3)',
      );
    return { tokens: this.config.groups, prefixTokens: 0 };
  }

  /** [N * P] the anchor each point's xyz is most aligned with (ties: the lower group). */
  groupIndex(points: tf.Tensor3D): Int32Array {
    const [N, P, C] = points.shape;
    const K = this.config.groups;
    const values = points.dataSync();
    const group = new Int32Array(N * P);
    for (let i = 0; i < N * P; i++) {
      let best = Number.NEGATIVE_INFINITY;
      for (let k = 0; k < K; k++) {
        const a = this.anchors;
        const score = values[i * C] * a[k] + values[i * C + 1] * a[K + k] + values[i * C + 2] * a[2 * K + k];
        if (score > best) [best, group[i]] = [score, k];
      }
    }
    return group;
  }

  forward(batch: tf.Tensor, opts: EncodeOptions = {}): EncoderOutput {
    if (batch.rank !== 3)
      throw new Error(`point_mlp: expected a batch [N, points, channels], got [${batch.shape}]`);
    const layout = this.featureLayout(batch.shape.slice(1));
    const wanted = (opts.hiddenStates ?? [-1]).map((i) => (i < 0 ? this.numHiddenStates + i : i));
    const bad = wanted.filter((i) => i < 0 || i >= this.numHiddenStates);
    if (bad.length)
      throw new Error(
        `point_mlp: hidden state index out of range (it has ${this.numHiddenStates}: layers 0..${this.numHiddenStates - 1}, or -1..-${this.numHiddenStates})`,
      );
    const deepest = Math.max(...wanted);
    const hiddenStates = tf.tidy(() => {
      const group = this.groupIndex(batch as tf.Tensor3D);
      const pooled = new Map<number, tf.Tensor3D>();
      let h: tf.Tensor = batch;
      for (let i = 0; i <= deepest; i++) {
        h = tf.relu(this.layers[i].forward(h));
        if (wanted.includes(i)) pooled.set(i, groupMaxPool(h as tf.Tensor3D, group, this.config.groups));
      }
      return wanted.map((i) => pooled.get(i) as tf.Tensor3D);
    });
    return { hiddenStates, layout };
  }
}
