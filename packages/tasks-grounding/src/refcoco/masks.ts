// COCO segmentations → binary masks: polygons (even-odd fill per polygon, union over the object's polygons)
// and run-length encodings (uncompressed `counts` lists and the compressed string form). Masks are row-major
// Uint8Array (1 = object) of the image size; COCO's RLE runs are over the column-major (Fortran) order.

/** COCO RLE: `size` is [height, width]; `counts` alternate background/foreground runs, starting with background. */
export interface CocoRle {
  size: readonly [number, number];
  counts: readonly number[] | string;
}
/** COCO `segmentation`: a list of polygons [x1, y1, x2, y2, …] or an RLE. */
export type CocoSegmentation = readonly (readonly number[])[] | CocoRle;

/**
 * Rasterises polygons (pixel-edge coordinates): pixel (x, y) is set when its centre (x + ½, y + ½) lies inside a
 * polygon by the even-odd rule. pycocotools rasterises differently at the boundary (5× upsampled edges), so
 * edge pixels may differ from its masks; interiors agree.
 */
export function polygonsToMask(
  polygons: readonly (readonly number[])[],
  width: number,
  height: number,
): Uint8Array {
  const mask = new Uint8Array(width * height);
  for (const poly of polygons) {
    if (poly.length < 6 || poly.length % 2 !== 0)
      throw new Error(
        `polygonsToMask: a polygon needs ≥ 3 points as [x1, y1, x2, y2, …], got ${poly.length} numbers`,
      );
    const n = poly.length / 2;
    for (let y = 0; y < height; y++) {
      const yc = y + 0.5;
      const crossings: number[] = [];
      for (let i = 0; i < n; i++) {
        const [x0, y0] = [poly[2 * i], poly[2 * i + 1]];
        const j = (i + 1) % n;
        const [x1, y1] = [poly[2 * j], poly[2 * j + 1]];
        // Half-open rule: an edge counts when the scanline passes between its end heights (vertices once).
        if (y0 <= yc !== y1 <= yc) crossings.push(x0 + ((yc - y0) * (x1 - x0)) / (y1 - y0));
      }
      crossings.sort((a, b) => a - b);
      for (let k = 0; k + 1 < crossings.length; k += 2) {
        // Pixels whose centre x + ½ lies in [left, right).
        const from = Math.max(0, Math.ceil(crossings[k] - 0.5));
        const to = Math.min(width, Math.ceil(crossings[k + 1] - 0.5));
        for (let x = from; x < to; x++) mask[y * width + x] = 1;
      }
    }
  }
  return mask;
}

/** Compressed COCO RLE string → run lengths (pycocotools rleFrString: 5-bit groups, deltas from run i − 2). */
export function decodeRleString(s: string): number[] {
  const counts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= s.length)
        throw new Error(`decodeRleString: the string ends inside a number (at ${p}): it is truncated`);
      const c = s.charCodeAt(p) - 48;
      if (c < 0 || c > 63)
        throw new Error(`decodeRleString: character '${s[p]}' at ${p} is not a COCO RLE digit`);
      x |= (c & 0x1f) << (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && c & 0x10) x |= -1 << (5 * k); // sign-extend the last group
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

/** Run lengths → compressed COCO RLE string (pycocotools rleToString). */
export function encodeRleString(counts: readonly number[]): string {
  let out = '';
  counts.forEach((count, i) => {
    let x = i > 2 ? count - counts[i - 2] : count;
    let more = true;
    while (more) {
      let c = x & 0x1f;
      x >>= 5;
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      out += String.fromCharCode(c + 48);
    }
  });
  return out;
}

/** RLE → row-major mask of its size. */
export function rleToMask(rle: CocoRle): Uint8Array {
  const [height, width] = rle.size;
  const counts = typeof rle.counts === 'string' ? decodeRleString(rle.counts) : rle.counts;
  const total = counts.reduce((s, c) => s + c, 0);
  if (total !== width * height || counts.some((c) => c < 0))
    throw new Error(
      `rleToMask: runs cover ${total} pixels but size ${height}×${width} has ${width * height}`,
    );
  const mask = new Uint8Array(width * height);
  let at = 0; // column-major position
  counts.forEach((run, i) => {
    if (i % 2 === 1) {
      for (let q = at; q < at + run; q++) mask[(q % height) * width + Math.floor(q / height)] = 1;
    }
    at += run;
  });
  return mask;
}

/** Row-major mask → uncompressed COCO RLE (column-major runs, background first). */
export function maskToRle(mask: Uint8Array, width: number, height: number): CocoRle {
  const counts: number[] = [];
  let value = 0;
  let run = 0;
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) {
      const v = mask[y * width + x] ? 1 : 0;
      if (v !== value) {
        counts.push(run);
        run = 0;
        value = v;
      }
      run++;
    }
  }
  counts.push(run);
  return { size: [height, width], counts };
}

/** Any COCO segmentation → row-major mask of the image size. */
export function segmentationToMask(
  segmentation: CocoSegmentation,
  width: number,
  height: number,
): Uint8Array {
  if (Array.isArray(segmentation)) return polygonsToMask(segmentation, width, height);
  const rle = segmentation as CocoRle;
  if (rle.size[0] !== height || rle.size[1] !== width)
    throw new Error(
      `segmentationToMask: RLE size is ${rle.size[0]}×${rle.size[1]} (h×w) but the image is ${height}×${width}`,
    );
  return rleToMask(rle);
}
