// The part of sharp's API the image decoder calls (metadata; removeAlpha → raw RGB), for the browser build:
// the browser decodes PNG / JPEG / WebP itself (createImageBitmap), without colour-space conversion or alpha
// premultiplication, so opaque images give the same RGB bytes as sharp and PIL.

type Input = string | Uint8Array;

async function bitmapOf(input: Input): Promise<ImageBitmap> {
  if (typeof input === 'string')
    throw new Error(`${input}: the browser build reads images from bytes or a File, not from a path`);
  const blob = new Blob([input as Uint8Array<ArrayBuffer>]);
  return createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
}

/** Decodes to RGBA pixels on an OffscreenCanvas, then keeps RGB. */
async function decodeRgb(input: Input): Promise<{ data: Uint8Array; width: number; height: number }> {
  const bitmap = await bitmapOf(input);
  const { width, height } = bitmap;
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new Error('the browser gave no 2D canvas context to decode the image');
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const rgb = new Uint8Array(width * height * 3);
  for (let p = 0, q = 0; p < rgba.length; p += 4, q += 3) {
    rgb[q] = rgba[p];
    rgb[q + 1] = rgba[p + 1];
    rgb[q + 2] = rgba[p + 2];
  }
  return { data: rgb, width, height };
}

class BrowserImage {
  constructor(private readonly input: Input) {}

  async metadata(): Promise<{ width: number; height: number }> {
    const bitmap = await bitmapOf(this.input);
    const size = { width: bitmap.width, height: bitmap.height };
    bitmap.close();
    return size;
  }

  removeAlpha(): this {
    return this;
  }

  toColourspace(): this {
    return this;
  }

  raw(): this {
    return this;
  }

  async toBuffer(): Promise<{ data: Uint8Array; info: { width: number; height: number; channels: number } }> {
    const { data, width, height } = await decodeRgb(this.input);
    return { data, info: { width, height, channels: 3 } };
  }
}

export default function sharp(input: Input): BrowserImage {
  return new BrowserImage(input);
}
