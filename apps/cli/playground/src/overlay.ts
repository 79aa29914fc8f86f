// Draws what the model's heads and codecs return over the image: boxes ([x1, y1, x2, y2] in original pixels)
// and masks (COCO uncompressed RLE, column-major, at the original size).
export type Box = [number, number, number, number];

export interface MaskRle {
  size: [number, number];
  counts: number[];
}

export interface Annotations {
  boxes?: Box[];
  points?: [number, number][];
  masks?: MaskRle[];
}

const COLORS = ['#e8412c', '#2c9be8', '#2ce86b', '#e8d12c', '#b02ce8'];

/** Row-major 0/1 pixels of a column-major RLE mask. */
export function decodeRle(mask: MaskRle): Uint8Array {
  const [height, width] = mask.size;
  const out = new Uint8Array(width * height);
  let at = 0;
  mask.counts.forEach((run, i) => {
    if (i % 2 === 1)
      for (let k = at; k < at + run; k++) out[(k % height) * width + Math.floor(k / height)] = 1;
    at += run;
  });
  return out;
}

function hexRgb(hex: string): [number, number, number] {
  return [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];
}

/** Draws the annotations on `ctx`, whose image is shown `scale` times its original size. Returns how many. */
export function drawAnnotations(ctx: CanvasRenderingContext2D, a: Annotations, scale: number): number {
  let drawn = 0;
  for (const [i, mask] of (a.masks ?? []).entries()) {
    const [height, width] = mask.size;
    const pixels = decodeRle(mask);
    const layer = new ImageData(width, height);
    const [r, g, b] = hexRgb(COLORS[(i + 1) % COLORS.length]); // masks start at blue, boxes at red
    pixels.forEach((on, p) => {
      if (!on) return;
      layer.data.set([r, g, b, 110], p * 4);
    });
    const off = document.createElement('canvas');
    off.width = width;
    off.height = height;
    off.getContext('2d')?.putImageData(layer, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(off, 0, 0, width * scale, height * scale);
    drawn++;
  }
  ctx.lineWidth = 3;
  ctx.font = 'bold 14px system-ui';
  for (const [i, [x1, y1, x2, y2]] of (a.boxes ?? []).entries()) {
    ctx.strokeStyle = ctx.fillStyle = COLORS[i % COLORS.length];
    ctx.strokeRect(x1 * scale, y1 * scale, (x2 - x1) * scale, (y2 - y1) * scale);
    ctx.fillText(String(i + 1), x1 * scale + 4, y1 * scale + 16);
    drawn++;
  }
  for (const [i, [x, y]] of (a.points ?? []).entries()) {
    ctx.fillStyle = COLORS[i % COLORS.length];
    ctx.beginPath();
    ctx.arc(x * scale, y * scale, 6, 0, 2 * Math.PI);
    ctx.fill();
    drawn++;
  }
  return drawn;
}
