// 8-bit RGB images in memory (row-major, interleaved RGB) and the pixel steps HF/LLaVA apply before resizing.
import sharp from 'sharp';

export interface RgbImage {
  width: number;
  height: number;
  /** width · height · 3 bytes, row-major, RGB interleaved. */
  data: Uint8Array;
}

export type ImageInput = string | Uint8Array | RgbImage;

/** Largest image (decoded, padded or resized) in pixels: 2^26 ≈ 67 M pixels, 192 MiB of RGB. */
export const MAX_IMAGE_PIXELS = 2 ** 26;
/** Longest edge a resize may produce (a shortest-edge resize of a 1×2 000 000 strip would be 336×672 000 000). */
export const MAX_RESIZED_EDGE = 16_384;

/**
 * Throws, before anything is allocated, when a `width`×`height` image (what: "decoded", "padded to square",
 * "resized") exceeds MAX_IMAGE_PIXELS or, when resized, MAX_RESIZED_EDGE.
 */
export function checkImageSize(width: number, height: number, what: string, source = 'the image'): void {
  const tooMany = !(width * height <= MAX_IMAGE_PIXELS);
  const tooLong = what.startsWith('resized') && Math.max(width, height) > MAX_RESIZED_EDGE;
  if (tooMany || tooLong) {
    const limit = tooMany ? `${MAX_IMAGE_PIXELS} pixels` : `an edge of ${MAX_RESIZED_EDGE} pixels`;
    throw new Error(
      `${source} ${what} would be ${width}×${height} pixels, more than ${limit}: crop or downscale it first (an extreme aspect ratio or a corrupt header?)`,
    );
  }
}

function isRgbImage(input: ImageInput): input is RgbImage {
  return typeof input === 'object' && !(input instanceof Uint8Array);
}

function describeInput(input: string | Uint8Array): string {
  return typeof input === 'string' ? input : `an in-memory image of ${input.length} bytes`;
}

/** Width and height from the file header alone (nothing is decoded), for checks before decoding. */
export async function readImageSize(input: string | Uint8Array): Promise<{ width: number; height: number }> {
  try {
    const { width, height } = await sharp(input).metadata();
    return { width: width ?? 0, height: height ?? 0 };
  } catch (err) {
    throw new Error(
      `Cannot decode image ${describeInput(input)} (PNG, JPEG or WebP expected): ${(err as Error).message}`,
    );
  }
}

/**
 * Decodes PNG / JPEG / WebP (a path or the file bytes) to 8-bit RGB as PIL `convert("RGB")` does: grey is
 * replicated, alpha is dropped (not blended). No EXIF rotation, like PIL and HF processors.
 */
export async function decodeImage(input: string | Uint8Array): Promise<RgbImage> {
  const what = describeInput(input);
  const size = await readImageSize(input);
  checkImageSize(size.width, size.height, 'decoded', `Image ${what}`);
  try {
    const { data, info } = await sharp(input, { limitInputPixels: MAX_IMAGE_PIXELS })
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
    return {
      width: info.width,
      height: info.height,
      data: new Uint8Array(data.buffer, data.byteOffset, data.length),
    };
  } catch (err) {
    throw new Error(`Cannot decode image ${what} (PNG, JPEG or WebP expected): ${(err as Error).message}`);
  }
}

/** An RgbImage as is, or decoded from a path / bytes. */
export async function toRgbImage(input: ImageInput): Promise<RgbImage> {
  if (!isRgbImage(input)) return decodeImage(input);
  if (!(input.data instanceof Uint8Array))
    throw new Error('RgbImage: data must be a Uint8Array of width·height·3 bytes');
  if (input.data.length !== input.width * input.height * 3) {
    throw new Error(
      `RgbImage: data has ${input.data.length} bytes, expected width·height·3 = ${input.width * input.height * 3}`,
    );
  }
  return input;
}

/** Copies `src` into a `width`×`height` canvas filled with `fill`, with its top-left corner at (left, top) (may be negative). */
export function placeOnCanvas(
  src: RgbImage,
  width: number,
  height: number,
  left: number,
  top: number,
  fill: readonly [number, number, number],
): RgbImage {
  checkImageSize(width, height, 'placed on a canvas');
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(fill, i * 3);
  const x0 = Math.max(0, left);
  const x1 = Math.min(width, left + src.width);
  for (let y = Math.max(0, top); y < Math.min(height, top + src.height); y++) {
    if (x1 <= x0) break;
    const from = ((y - top) * src.width + (x0 - left)) * 3;
    data.set(src.data.subarray(from, from + (x1 - x0) * 3), (y * width + x0) * 3);
  }
  return { width, height, data };
}

/** LLaVA `expand2square`: pad the short side with `fill` to a square, image centred (offset floored). */
export function expandToSquare(
  image: RgbImage,
  fill: readonly [number, number, number],
): { image: RgbImage; left: number; top: number } {
  const { width, height } = image;
  if (width === height) return { image, left: 0, top: 0 };
  const side = Math.max(width, height);
  const left = width < height ? Math.floor((height - width) / 2) : 0;
  const top = height < width ? Math.floor((width - height) / 2) : 0;
  return { image: placeOnCanvas(image, side, side, left, top, fill), left, top };
}

/**
 * HF `center_crop`: top = floor((H - h) / 2), left = floor((W - w) / 2); an image smaller than the crop is
 * first zero-padded (centred, offset rounded up), exactly as transformers does. Returns where the crop started
 * in the input's coordinates (negative when padded).
 */
export function centerCrop(
  image: RgbImage,
  width: number,
  height: number,
): { image: RgbImage; left: number; top: number } {
  let left = Math.floor((image.width - width) / 2);
  let top = Math.floor((image.height - height) / 2);
  if (left >= 0 && top >= 0) {
    return { image: placeOnCanvas(image, width, height, -left, -top, [0, 0, 0]), left, top };
  }
  // HF pads to max(size, crop) with the image at ceil(pad / 2), then slices the window clipped to that canvas.
  const padLeft = Math.ceil((Math.max(width, image.width) - image.width) / 2);
  const padTop = Math.ceil((Math.max(height, image.height) - image.height) / 2);
  left += padLeft;
  top += padTop;
  const canvasWidth = Math.max(width, image.width);
  const canvasHeight = Math.max(height, image.height);
  const x0 = Math.max(0, left);
  const y0 = Math.max(0, top);
  const outWidth = Math.min(canvasWidth, left + width) - x0;
  const outHeight = Math.min(canvasHeight, top + height) - y0;
  const cropped = placeOnCanvas(image, outWidth, outHeight, padLeft - x0, padTop - y0, [0, 0, 0]);
  return { image: cropped, left: x0 - padLeft, top: y0 - padTop };
}
