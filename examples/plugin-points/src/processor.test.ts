import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, tf } from '@vistune/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { plyText } from './ply.js';
import {
  farthestPointOrder,
  normaliseToUnitSphere,
  PointsProcessor,
  pointsProcessorSchema,
} from './processor.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu', quiet: true });
});

describe('normaliseToUnitSphere', () => {
  it('centres on the mean and scales the farthest point to radius 1', () => {
    // Mean (2, 3, 4); the farthest point is 6 away.
    const { xyz, radius } = normaliseToUnitSphere(new Float32Array([2, 3, 10, 2, 3, -2, 2, 3, 4]), 3);
    expect(radius).toBeCloseTo(6, 5);
    expect(Array.from(xyz)).toEqual([0, 0, 1, 0, 0, -1, 0, 0, 0]);
  });

  it('leaves a single point at the origin', () => {
    expect(Array.from(normaliseToUnitSphere(new Float32Array([5, 5, 5]), 1).xyz)).toEqual([0, 0, 0]);
  });
});

describe('farthestPointOrder', () => {
  // Five points on the x axis at -2, -1, 0, 1, 2 (already centred).
  const line = new Float32Array([-2, 0, 0, -1, 0, 0, 0, 0, 0, 1, 0, 0, 2, 0, 0]);

  it('starts at the point farthest from the centre, then takes the farthest from those chosen', () => {
    // -2 (tie with 2: lower index), then 2 (4 away), then 0 (2 from both ends), then -1 (tie with 1).
    expect(Array.from(farthestPointOrder(line, 5, 5))).toEqual([0, 4, 2, 1, 3]);
  });

  it('repeats the sampled order when the cloud has fewer points than asked', () => {
    expect(Array.from(farthestPointOrder(line, 5, 7))).toEqual([0, 4, 2, 1, 3, 0, 4]);
  });

  it('picks the same points whatever the order of the file', () => {
    const reversed = new Float32Array(15);
    for (let i = 0; i < 5; i++) reversed.set(line.subarray(3 * (4 - i), 3 * (5 - i)), 3 * i);
    const picked = (xyz: Float32Array) =>
      Array.from(farthestPointOrder(xyz, 5, 3))
        .map((i) => xyz[3 * i])
        .sort();
    expect(picked(reversed)).toEqual(picked(line));
  });
});

describe('PointsProcessor', () => {
  it('makes [num_points, 6] of unit-sphere xyz + rgb, and [num_points, 3] without colour', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'points-proc-'));
    const file = join(dir, 'four.ply');
    const positions = new Float32Array([10, 0, 0, 12, 0, 0, 11, 1, 0, 11, -1, 0]);
    const colors = new Float32Array([1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1]);
    await writeFile(file, plyText({ positions, colors, count: 4 }));
    const withColour = new PointsProcessor(pointsProcessorSchema.parse({ num_points: 6 }));
    const item = await withColour.process(file);
    expect(item.tensor.shape).toEqual([6, 6]);
    expect(item.original).toEqual({ points: 4, radius: 1 });
    const rows = (await item.tensor.array()) as number[][];
    // First row: the point farthest from the centre (11, 0, 0): all are 1 away, the lowest index wins.
    expect(rows[0]).toEqual([-1, 0, 0, 1, 0, 0]);
    for (const row of rows) expect(Math.hypot(row[0], row[1], row[2])).toBeCloseTo(1, 5);
    const xyzOnly = await new PointsProcessor(
      pointsProcessorSchema.parse({ num_points: 2, colour: false }),
    ).process(file);
    expect(xyzOnly.tensor.shape).toEqual([2, 3]);
    tf.dispose([item.tensor, xyzOnly.tensor]);
  });

  it('gives mid-grey to clouds without colour, and takes bytes as well as paths', async () => {
    const bytes = new TextEncoder().encode(
      plyText({ positions: new Float32Array([0, 0, 0, 1, 1, 1]), count: 2 }),
    );
    const item = await new PointsProcessor(pointsProcessorSchema.parse({ num_points: 2 })).process(bytes);
    const rows = (await item.tensor.array()) as number[][];
    expect(rows.map((r) => r.slice(3))).toEqual([
      [0.5, 0.5, 0.5],
      [0.5, 0.5, 0.5],
    ]);
    item.tensor.dispose();
  });

  it('states the config that recreates it', () => {
    const processor = new PointsProcessor(pointsProcessorSchema.parse({ num_points: 64 }));
    expect(processor.processorConfig()).toEqual({ type: 'points', num_points: 64, colour: true });
    expect(processor.channels).toBe(6);
  });
});
