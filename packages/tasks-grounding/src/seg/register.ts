// Registry entry of the [SEG] head: kind `head`, name `lisa_seg`.
import type { Registry } from '@vistune/core';
import { lisaSegHeadOptions, lisaSegHeadSchema } from './config.js';
import { LisaSegHead } from './head.js';

/** Adds the `lisa_seg` head; bind its vision encoder with `head.bindVision` (attachLisaHead does it). */
export function registerSeg(registry: Registry): void {
  registry.add({
    kind: 'head',
    name: 'lisa_seg',
    about:
      'LISA embedding-as-mask: [SEG] state → text_hidden_fcs → SAM-style two-way mask decoder over the ViT grid; loss 2·BCE + 0.5·DICE',
    schema: lisaSegHeadSchema,
    create: (c) => new LisaSegHead(lisaSegHeadOptions(c)),
  });
}
