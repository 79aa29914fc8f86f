// Registry entries (kind `metric`): each creates a fresh accumulator (add samples, then result()).
import type { Registry } from '@vistune/core';
import { z } from 'zod';
import { registerBoxAnswerMetrics } from './box-answer.js';
import { DetectionMap } from './detection-map.js';
import { MaskIoU } from './mask-iou.js';
import { RecAccuracy } from './rec.js';

export const recAccuracySchema = z.object({
  threshold: z.number().gt(0).max(1).default(0.5),
  comparison: z.enum(['>=', '>']).default('>='),
});
export const maskIoUSchema = z.object({});
export const detectionMapSchema = z.object({
  iouThresholds: z.array(z.number().gt(0).max(1)).min(1).optional(),
  maxDetections: z.number().int().positive().default(100),
  classAgnostic: z.boolean().default(false),
});

export function registerMetrics(registry: Registry): void {
  registerBoxAnswerMetrics(registry);
  registry.add({
    kind: 'metric',
    name: 'rec_accuracy',
    about: 'REC Acc@0.5: IoU of the first decoded box with the one ground-truth box ≥ 0.5; no box = miss',
    schema: recAccuracySchema,
    create: (c) => new RecAccuracy(c),
  });
  registry.add({
    kind: 'metric',
    name: 'mask_iou',
    about: 'LISA gIoU (mean per-mask IoU, empty-vs-empty = 1) and cIoU (ΣI / ΣU) of binary masks',
    schema: maskIoUSchema,
    create: () => new MaskIoU(),
  });
  registry.add({
    kind: 'metric',
    name: 'detection_map',
    about: 'COCO mAP@[.50:.05:.95], 101-point interpolation, per class or class-agnostic, crowd-aware',
    schema: detectionMapSchema,
    create: (c) => new DetectionMap(c),
  });
}
