// gIoU and cIoU of referring/reasoning segmentation, as LISA computes them: per mask the foreground
// intersection I and union U of the binarised prediction (logit > 0) and target; gIoU = mean of
// I / (U + 1e-5) with an empty-vs-empty mask (U = 0) scoring 1; cIoU = ΣI / (ΣU + 1e-10) over the split.

/** A binary mask, row-major, nonzero = foreground. */
export interface BinaryMask {
  data: Uint8Array;
  width: number;
  height: number;
}

export interface MaskIoUResult {
  gIoU: number;
  cIoU: number;
  count: number;
  intersection: number;
  union: number;
}

/** Mask logits → binary mask by `logit > 0` (LISA's `pred_masks > 0`). */
export function binarizeLogits(logits: ArrayLike<number>, width: number, height: number): BinaryMask {
  if (logits.length !== width * height)
    throw new Error(`binarizeLogits: ${logits.length} logits for a ${width}×${height} mask`);
  const data = new Uint8Array(width * height);
  for (let i = 0; i < data.length; i++) data[i] = logits[i] > 0 ? 1 : 0;
  return { data, width, height };
}

/** Foreground |P ∩ G| and |P ∪ G| of two masks of the same size. */
export function maskIntersectionUnion(
  pred: BinaryMask,
  target: BinaryMask,
): { intersection: number; union: number } {
  if (pred.width !== target.width || pred.height !== target.height)
    throw new Error(
      `mask IoU: prediction is ${pred.width}×${pred.height} but the target is ${target.width}×${target.height}; resize the prediction to the target first`,
    );
  let intersection = 0;
  let union = 0;
  for (let i = 0; i < pred.data.length; i++) {
    const p = pred.data[i] !== 0;
    const g = target.data[i] !== 0;
    if (p && g) intersection++;
    if (p || g) union++;
  }
  return { intersection, union };
}

export class MaskIoU {
  private count = 0;
  private iouSum = 0;
  private intersection = 0;
  private union = 0;

  /** Adds one mask pair; returns its IoU term (LISA's per-mask value). */
  add(pred: BinaryMask, target: BinaryMask): number {
    const { intersection, union } = maskIntersectionUnion(pred, target);
    const iou = union === 0 ? 1 : intersection / (union + 1e-5);
    this.count++;
    this.iouSum += iou;
    this.intersection += intersection;
    this.union += union;
    return iou;
  }

  result(): MaskIoUResult {
    return {
      gIoU: this.count ? this.iouSum / this.count : 0,
      cIoU: this.intersection / (this.union + 1e-10),
      count: this.count,
      intersection: this.intersection,
      union: this.union,
    };
  }
}
