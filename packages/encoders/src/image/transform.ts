// Where a point of the original image lands in the processed one (pad → resize → crop), and back. Coordinates
// are continuous pixel-edge coordinates: (0, 0) is the top-left corner of the first pixel, (W, H) the bottom-right
// corner of the last, so a box [x0, y0, x1, y1] maps by its corners. PIL's resize maps edges linearly.

export interface ImageTransformSteps {
  originalWidth: number;
  originalHeight: number;
  /** Offset of the original inside the padded square (LLaVA pad); 0 without padding. */
  padLeft: number;
  padTop: number;
  /** Size after padding, before resizing. */
  paddedWidth: number;
  paddedHeight: number;
  /** Size after resizing. */
  resizedWidth: number;
  resizedHeight: number;
  /** Top-left of the crop window in the resized image (negative when the crop padded). */
  cropLeft: number;
  cropTop: number;
  /** Final size. */
  width: number;
  height: number;
}

export class ImageTransform {
  readonly scaleX: number;
  readonly scaleY: number;

  constructor(readonly steps: ImageTransformSteps) {
    this.scaleX = steps.resizedWidth / steps.paddedWidth;
    this.scaleY = steps.resizedHeight / steps.paddedHeight;
  }

  /** Identity for an image of this size (no pad, resize or crop). */
  static identity(width: number, height: number): ImageTransform {
    return new ImageTransform({
      originalWidth: width,
      originalHeight: height,
      padLeft: 0,
      padTop: 0,
      paddedWidth: width,
      paddedHeight: height,
      resizedWidth: width,
      resizedHeight: height,
      cropLeft: 0,
      cropTop: 0,
      width,
      height,
    });
  }

  /** Original-image point → processed-image point (may fall outside the processed frame when cropped away). */
  toProcessed(x: number, y: number): [number, number] {
    const s = this.steps;
    return [(x + s.padLeft) * this.scaleX - s.cropLeft, (y + s.padTop) * this.scaleY - s.cropTop];
  }

  /** Processed-image point → original-image point (may fall in the padding, outside the original frame). */
  toOriginal(x: number, y: number): [number, number] {
    const s = this.steps;
    return [(x + s.cropLeft) / this.scaleX - s.padLeft, (y + s.cropTop) / this.scaleY - s.padTop];
  }
}
