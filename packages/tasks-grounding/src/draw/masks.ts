// Masks drawn over an image: each mask tinted with its own colour at half opacity, written as a PNG (the CLI's
// `generate --overlay` then draws boxes on top with drawBoxes).
import sharp from 'sharp';

/** Distinct tints, cycled per mask. */
export const MASK_COLOURS: readonly (readonly [number, number, number])[] = [
  [255, 48, 48],
  [48, 160, 255],
  [64, 220, 64],
  [255, 200, 0],
  [200, 64, 255],
  [0, 220, 220],
];

/**
 * Reads the image at `imagePath`, blends every mask (row-major, the image's size) at `opacity` and writes the
 * PNG `outPath`. Returns the image size.
 */
export async function overlayMasks(
  imagePath: string,
  masks: readonly Uint8Array[],
  outPath: string,
  opts: { opacity?: number } = {},
): Promise<{ width: number; height: number }> {
  const opacity = opts.opacity ?? 0.5;
  const { data, info } = await sharp(imagePath).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const { width, height, channels } = info;
  const pixels = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  masks.forEach((mask, k) => {
    if (mask.length !== width * height)
      throw new Error(
        `overlayMasks: mask ${k} has ${mask.length} pixels but ${imagePath} is ${width}×${height}: give masks in the image's frame`,
      );
    const colour = MASK_COLOURS[k % MASK_COLOURS.length] as readonly [number, number, number];
    for (let i = 0; i < mask.length; i++) {
      if (!mask[i]) continue;
      for (let c = 0; c < 3; c++) {
        const at = i * channels + c;
        pixels[at] = Math.round((1 - opacity) * (pixels[at] as number) + opacity * (colour[c] as number));
      }
    }
  });
  await sharp(Buffer.from(pixels), { raw: { width, height, channels } }).png().toFile(outPath);
  return { width, height };
}
