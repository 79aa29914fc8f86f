// The [SEG] head's targets for core's data pipeline (LoadInstructionDataOptions.targets): a record's `truth`
// masks (COCO RLE, one per [SEG], in order, as the demo world writes them) → one SegMaskTarget per [SEG].
import type { HeadTargetsReader } from '@vistune/core';
import { rleToMask } from '../refcoco/index.js';
import type { SegmentationRecord } from './data.js';
import type { SegMaskTarget } from './head.js';

/**
 * Reads every record's masks for the head `headName` (default lisa_seg) triggered by `segTokenId`. A record
 * without masks gives an empty list, so a [SEG] without a mask is skipped as `targets_mismatch`. The targets
 * carry no image transform: the head then maps masks with a plain resize (exact for processors that only
 * resize, as the demo world's; use SegmentationBatchSource for padding or cropping processors).
 */
export function segmentationTargets(segTokenId: number, headName = 'lisa_seg'): HeadTargetsReader {
  return {
    triggers: { [headName]: segTokenId },
    read: (record) => {
      const truth = (record as Partial<SegmentationRecord>).truth ?? [];
      const masks: SegMaskTarget[] = truth
        .flatMap((t) => t.masks ?? [])
        .map((m) => ({ mask: rleToMask(m), width: m.size[1], height: m.size[0] }));
      return { [headName]: masks };
    },
  };
}
