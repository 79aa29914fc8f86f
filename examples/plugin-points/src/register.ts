// The plugin entry (package.json "vistune": { "plugin": "./dist/register.js" }): vistune calls register() with
// its registry, whose `add` records this package as the origin of every entry, so a saved model names it in
// config.json `vistune_plugins` and loads it again by itself.
import type { MediaKind, Registry } from '@vistune/core';
import { z } from '@vistune/core';
import { PointPoolAdapter, pointPoolSchema } from './adapter.js';
import { PointMlpEncoder, pointMlpSchema } from './encoder.js';
import { shapeAccuracy, shapeAccuracySchema } from './metric.js';
import { PointsProcessor, pointsProcessorSchema } from './processor.js';
import { POINTS_QA } from './task.js';

export const POINTS_KIND: MediaKind = {
  name: 'points',
  marker: '<points>',
  extensions: ['.ply'],
  about: 'Point clouds (.ply, ASCII or binary), marker <points>; processor points, encoder point_mlp',
};

/** Adds the points media kind, processor, encoder, adapter, metric and task family. */
export function register(registry: Registry): void {
  registry.add({
    kind: 'media',
    name: 'points',
    about: POINTS_KIND.about ?? '',
    schema: z.object({}),
    create: () => POINTS_KIND,
  });
  registry.add({
    kind: 'processor',
    name: 'points',
    about:
      '.ply → [num_points, 3|6]: xyz centred and scaled into the unit sphere (+ rgb), farthest-point sampled',
    schema: pointsProcessorSchema,
    create: (c) => new PointsProcessor(c),
  });
  registry.add({
    kind: 'encoder',
    name: 'point_mlp',
    about: 'PointNet-style shared MLP over points, max-pooled within K direction groups → K tokens',
    schema: pointMlpSchema,
    create: (c) => new PointMlpEncoder(c),
  });
  registry.add({
    kind: 'adapter',
    name: 'point_pool',
    about: 'Point tokens → LLM width: average runs of `pool` tokens, LayerNorm → Linear → GELU → Linear',
    schema: pointPoolSchema,
    create: (c) => new PointPoolAdapter(c),
  });
  registry.add({
    kind: 'metric',
    name: 'shape_accuracy',
    about:
      'The first shape word of the answer equals the reference’s (answers without a shape in the reference are not scored)',
    schema: shapeAccuracySchema,
    create: (c) => shapeAccuracy(c),
  });
  registry.add({
    kind: 'task',
    name: 'points_qa',
    about: 'Questions about point clouds (media points); metrics shape_accuracy, exact_match',
    schema: z.object({}),
    create: () => POINTS_QA,
  });
}
