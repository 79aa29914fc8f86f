// REC Acc@0.5 (Precision@1): a prediction is correct when its IoU with the single ground-truth box reaches
// the threshold; no box or a malformed one is a miss (the references score parse failures as [0,0,0,0]).
import type { ImageTransform } from '@vistune/encoders';
import { type Box, boxIou } from '../box.js';
import type { LocationCodec } from '../codecs/types.js';

export interface RecAccuracyOptions {
  /** IoU threshold (0.5). */
  threshold?: number;
  /** `>=` as Qwen-VL's and Kosmos-2's evaluations (the default); `>` as Shikra's and MiniGPT-v2's. */
  comparison?: '>=' | '>';
}

export interface RecAccuracyResult {
  accuracy: number;
  correct: number;
  total: number;
  /** Samples without a well-formed predicted box. */
  missing: number;
  /** Mean IoU over all samples (a missing box counts 0). */
  meanIou: number;
}

/** The prediction of a REC answer: the first well-formed box of the text, or null. */
export function recPredictionFromText(
  codec: LocationCodec,
  text: string,
  transform: ImageTransform,
): Box | null {
  return codec.decodeAll(text, transform).boxes[0] ?? null;
}

export class RecAccuracy {
  readonly threshold: number;
  readonly comparison: '>=' | '>';
  private correct = 0;
  private total = 0;
  private missing = 0;
  private iouSum = 0;

  constructor(opts: RecAccuracyOptions = {}) {
    this.threshold = opts.threshold ?? 0.5;
    this.comparison = opts.comparison ?? '>=';
  }

  /** Scores one sample; returns whether it is correct. */
  add(prediction: Box | null | undefined, target: Box): boolean {
    this.total++;
    if (!prediction) {
      this.missing++;
      return false;
    }
    const iou = boxIou(prediction, target);
    this.iouSum += iou;
    const hit = this.comparison === '>=' ? iou >= this.threshold : iou > this.threshold;
    if (hit) this.correct++;
    return hit;
  }

  result(): RecAccuracyResult {
    const n = this.total;
    return {
      accuracy: n ? this.correct / n : 0,
      correct: this.correct,
      total: n,
      missing: this.missing,
      meanIou: n ? this.iouSum / n : 0,
    };
  }
}

/** Acc@threshold over paired predictions and ground-truth boxes. */
export function recAccuracy(
  predictions: readonly (Box | null | undefined)[],
  targets: readonly Box[],
  opts: RecAccuracyOptions = {},
): RecAccuracyResult {
  if (predictions.length !== targets.length)
    throw new Error(
      `recAccuracy: ${predictions.length} predictions for ${targets.length} targets; pair them one to one`,
    );
  const metric = new RecAccuracy(opts);
  for (const [i, p] of predictions.entries()) metric.add(p, targets[i]);
  return metric.result();
}
