// `points_qa` (registry kind `task`): question answering about point clouds. Records carry `points` items;
// `vistune eval --task points_qa` scores answers with shape_accuracy and exact_match. Nothing to add to the
// model (no trigger tokens, no heads), so there is no prepareModel.
import type { TaskFamily } from '@vistune/core';

export const POINTS_QA: TaskFamily = {
  name: 'points_qa',
  media: ['points'],
  metrics: [{ type: 'shape_accuracy' }, { type: 'exact_match' }],
};
