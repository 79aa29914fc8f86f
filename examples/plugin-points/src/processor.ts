// The `points` processor (registry kind `processor`): a .ply file → [P, C] float32, the encoder's input.
// xyz are centred on their mean and scaled into the unit sphere (so size and position do not matter, shape
// does); P points are picked by farthest-point sampling, which is deterministic and ignores the file's point
// order; C = 3 (xyz) or 6 (xyz + rgb in [0, 1]).
import { readFile } from 'node:fs/promises';
import { type ComponentConfig, type MediaProcessor, type ProcessedMedia, tf } from '@vistune/core';
import { z } from '@vistune/core';
import { readPly } from './ply.js';

export const pointsProcessorSchema = z.strictObject({
  /** Points per item: every item of a batch must have the same count. */
  num_points: z.number().int().min(1).max(65_536).default(256),
  /** Append rgb to xyz (C = 6); files without colour get mid-grey. */
  colour: z.boolean().default(true),
});
export type PointsProcessorConfig = z.output<typeof pointsProcessorSchema>;

/** Grey for files that carry no colour, so a colour model still gets a constant channel. */
const NO_COLOUR = 0.5;

/** Centred on the mean, divided by the largest distance from it (a single point stays at the origin). */
export function normaliseToUnitSphere(
  positions: Float32Array,
  count: number,
): { xyz: Float32Array; radius: number } {
  const mean = [0, 0, 0];
  for (let i = 0; i < count; i++) for (let c = 0; c < 3; c++) mean[c] += positions[3 * i + c] / count;
  let radius = 0;
  const xyz = new Float32Array(count * 3);
  for (let i = 0; i < count; i++) {
    let r2 = 0;
    for (let c = 0; c < 3; c++) {
      const v = positions[3 * i + c] - mean[c];
      xyz[3 * i + c] = v;
      r2 += v * v;
    }
    radius = Math.max(radius, Math.sqrt(r2));
  }
  if (radius > 0) for (let i = 0; i < xyz.length; i++) xyz[i] /= radius;
  return { xyz, radius };
}

/**
 * Indices of `k` points by farthest-point sampling over centred xyz: first the point farthest from the centre,
 * then each time the point farthest from those chosen (ties: the lower index). Fewer than `k` points: the
 * sampled order repeats.
 */
export function farthestPointOrder(xyz: Float32Array, count: number, k: number): Int32Array {
  const order = new Int32Array(k);
  const nearest = new Float64Array(count).fill(Number.POSITIVE_INFINITY);
  let next = 0;
  let best = -1;
  for (let i = 0; i < count; i++) {
    const r2 = xyz[3 * i] ** 2 + xyz[3 * i + 1] ** 2 + xyz[3 * i + 2] ** 2;
    if (r2 > best) [best, next] = [r2, i];
  }
  const distinct = Math.min(k, count);
  for (let s = 0; s < distinct; s++) {
    order[s] = next;
    const [x, y, z] = [xyz[3 * next], xyz[3 * next + 1], xyz[3 * next + 2]];
    best = -1;
    for (let i = 0; i < count; i++) {
      const d = (xyz[3 * i] - x) ** 2 + (xyz[3 * i + 1] - y) ** 2 + (xyz[3 * i + 2] - z) ** 2;
      if (d < nearest[i]) nearest[i] = d;
      if (nearest[i] > best) [best, next] = [nearest[i], i];
    }
  }
  for (let s = distinct; s < k; s++) order[s] = order[s % distinct];
  return order;
}

export class PointsProcessor implements MediaProcessor {
  readonly media = 'points';

  constructor(readonly config: PointsProcessorConfig) {}

  /** Channels per point of the tensors it makes (the encoder's in_channels). */
  get channels(): number {
    return this.config.colour ? 6 : 3;
  }

  async process(source: string | Uint8Array): Promise<ProcessedMedia> {
    const where = typeof source === 'string' ? source : 'points bytes';
    const bytes = typeof source === 'string' ? await readFile(source) : source;
    const cloud = await readPly(bytes, where);
    const { xyz, radius } = normaliseToUnitSphere(cloud.positions, cloud.count);
    const P = this.config.num_points;
    const C = this.channels;
    const order = farthestPointOrder(xyz, cloud.count, P);
    const values = new Float32Array(P * C);
    order.forEach((index, row) => {
      for (let c = 0; c < 3; c++) values[row * C + c] = xyz[3 * index + c];
      if (C === 6)
        for (let c = 0; c < 3; c++) values[row * C + 3 + c] = cloud.colors?.[3 * index + c] ?? NO_COLOUR;
    });
    return { tensor: tf.tensor2d(values, [P, C]), original: { points: cloud.count, radius } };
  }

  processorConfig(): ComponentConfig {
    return { type: 'points', ...this.config };
  }
}
