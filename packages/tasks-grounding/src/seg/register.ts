// Registry entries of LISA-style segmentation: the [SEG] head (kind `head`, `lisa_seg`), the task family that
// adds it to any model with an image modality (kind `task`, `lisa_seg`), and its answer metric.
import type { Registry } from '@vistune/core';
import { lisaSegHeadOptions, lisaSegHeadSchema } from './config.js';
import { LisaSegHead } from './head.js';
import { lisaAnswerMatch, lisaAnswerMatchSchema, lisaSegTask, lisaSegTaskSchema } from './task.js';

/** Adds the `lisa_seg` head (a model's addHead binds its image encoder), task and `lisa_answer_match` metric. */
export function registerSeg(registry: Registry): void {
  registry.add({
    kind: 'head',
    name: 'lisa_seg',
    about:
      'LISA embedding-as-mask: [SEG] state → text_hidden_fcs → SAM-style two-way mask decoder over the ViT grid; loss 2·BCE + 0.5·DICE',
    schema: lisaSegHeadSchema,
    create: (c) => new LisaSegHead(lisaSegHeadOptions(c)),
  });
  registry.add({
    kind: 'task',
    name: 'lisa_seg',
    about:
      'LISA reasoning segmentation: adds [SEG] and the lisa_seg head (task.head), trains on records whose truth[].masks hold one COCO RLE per [SEG]',
    schema: lisaSegTaskSchema,
    create: (c) => lisaSegTask(c),
  });
  registry.add({
    kind: 'metric',
    name: 'lisa_answer_match',
    about: 'Exact match of the answer text with [SEG] removed from both sides (masks: evaluateSegmentation)',
    schema: lisaAnswerMatchSchema,
    create: (c) => lisaAnswerMatch(c.token),
  });
}
