// Box drawing for predictions and ground truth: upscale the image, draw labelled box outlines, save a PNG.
// Labels use a built-in 3x5 pixel font, so nothing depends on system fonts (a fresh machine may have none).
import sharp from 'sharp';
import type { Box } from '../box.js';

export type Rgb = readonly [number, number, number];

/** Named outline colours (red for predictions and green for truth in the CLI's pictures). */
export const BOX_COLOURS = {
  red: [220, 40, 40],
  green: [40, 185, 60],
  blue: [50, 95, 240],
  yellow: [240, 220, 40],
  white: [240, 240, 240],
} as const satisfies Record<string, Rgb>;
export type BoxColourName = keyof typeof BOX_COLOURS;

/** Glyphs of the 3x5 font: five rows of three pixels, top to bottom; '#' is ink. Lowercase draws as capitals. */
const GLYPHS: Readonly<Record<string, string>> = {
  A: '.#. #.# ### #.# #.#',
  B: '##. #.# ##. #.# ##.',
  C: '.## #.. #.. #.. .##',
  D: '##. #.# #.# #.# ##.',
  E: '### #.. ##. #.. ###',
  F: '### #.. ##. #.. #..',
  G: '.## #.. #.# #.# .##',
  H: '#.# #.# ### #.# #.#',
  I: '### .#. .#. .#. ###',
  J: '..# ..# ..# #.# .#.',
  K: '#.# #.# ##. #.# #.#',
  L: '#.. #.. #.. #.. ###',
  M: '#.# ### ### #.# #.#',
  N: '##. #.# #.# #.# #.#',
  O: '.#. #.# #.# #.# .#.',
  P: '##. #.# ##. #.. #..',
  Q: '.#. #.# #.# ##. .##',
  R: '##. #.# ##. #.# #.#',
  S: '.## #.. .#. ..# ##.',
  T: '### .#. .#. .#. .#.',
  U: '#.# #.# #.# #.# ###',
  V: '#.# #.# #.# #.# .#.',
  W: '#.# #.# ### ### #.#',
  X: '#.# #.# .#. #.# #.#',
  Y: '#.# #.# .#. .#. .#.',
  Z: '### ..# .#. #.. ###',
  '0': '### #.# #.# #.# ###',
  '1': '.#. ##. .#. .#. ###',
  '2': '##. ..# .#. #.. ###',
  '3': '##. ..# .#. ..# ##.',
  '4': '#.# #.# ### ..# ..#',
  '5': '### #.. ##. ..# ##.',
  '6': '.## #.. ### #.# ###',
  '7': '### ..# .#. .#. .#.',
  '8': '### #.# ### #.# ###',
  '9': '### #.# ### ..# ##.',
  ' ': '... ... ... ... ...',
  '.': '... ... ... ... .#.',
  ',': '... ... ... .#. #..',
  ':': '... .#. ... .#. ...',
  '-': '... ... ### ... ...',
  '[': '##. #.. #.. #.. ##.',
  ']': '.## ..# ..# ..# .##',
  '(': '.#. #.. #.. #.. .#.',
  ')': '.#. ..# ..# ..# .#.',
  '?': '##. ..# .#. ... .#.',
  '#': '#.# ### #.# ### #.#',
  '=': '... ### ... ### ...',
  '/': '..# ..# .#. #.. #..',
  '%': '#.# ..# .#. #.. #.#',
};
const GLYPH_WIDTH = 3;
const GLYPH_HEIGHT = 5;

/** The glyph of `char` as GLYPH_HEIGHT rows of GLYPH_WIDTH cells ('?' for characters the font lacks). */
export function glyphRows(char: string): string[] {
  return (GLYPHS[char.toUpperCase()] ?? (GLYPHS['?'] as string)).split(' ');
}

export type BoxColour = Rgb | BoxColourName | `#${string}`;

export interface LabelledBox {
  /** Box in pixels of the input image. */
  box: Box;
  label: string;
  color: BoxColour;
}

export interface DrawBoxesOptions {
  /** Integer upscaling factor (default: enough to make the image at least 256 px wide). */
  scale?: number;
}

function toRgb(colour: BoxColour): Rgb {
  if (typeof colour !== 'string') return colour;
  if (colour in BOX_COLOURS) return BOX_COLOURS[colour as BoxColourName];
  const hex = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(colour);
  if (hex === null)
    throw new Error(
      `drawBoxes: colour "${colour}" must be one of ${Object.keys(BOX_COLOURS).join(', ')}, #rrggbb or [r, g, b].`,
    );
  return [
    Number.parseInt(hex[1] as string, 16),
    Number.parseInt(hex[2] as string, 16),
    Number.parseInt(hex[3] as string, 16),
  ];
}

class Canvas {
  constructor(
    readonly width: number,
    readonly height: number,
    readonly data: Uint8Array,
  ) {}

  fillRect(x1: number, y1: number, x2: number, y2: number, rgb: Rgb): void {
    for (let y = Math.max(0, y1); y < Math.min(this.height, y2); y++) {
      for (let x = Math.max(0, x1); x < Math.min(this.width, x2); x++) {
        const offset = (y * this.width + x) * 3;
        this.data[offset] = rgb[0];
        this.data[offset + 1] = rgb[1];
        this.data[offset + 2] = rgb[2];
      }
    }
  }

  outline(x1: number, y1: number, x2: number, y2: number, thickness: number, rgb: Rgb): void {
    this.fillRect(x1, y1, x2, y1 + thickness, rgb);
    this.fillRect(x1, y2 - thickness, x2, y2, rgb);
    this.fillRect(x1, y1, x1 + thickness, y2, rgb);
    this.fillRect(x2 - thickness, y1, x2, y2, rgb);
  }

  text(x: number, y: number, text: string, pixel: number, rgb: Rgb): void {
    [...text].forEach((char, index) => {
      const rows = glyphRows(char);
      const left = x + index * (GLYPH_WIDTH + 1) * pixel;
      for (let row = 0; row < GLYPH_HEIGHT; row++) {
        for (let column = 0; column < GLYPH_WIDTH; column++) {
          if (rows[row]?.[column] !== '#') continue;
          const px = left + column * pixel;
          const py = y + row * pixel;
          this.fillRect(px, py, px + pixel, py + pixel, rgb);
        }
      }
    });
  }
}

/** Size in pixels of `text` drawn with font pixel size `pixel` (one blank column between glyphs). */
export function labelSize(text: string, pixel: number): { width: number; height: number } {
  const glyphs = [...text].length;
  return { width: Math.max(0, glyphs * (GLYPH_WIDTH + 1) - 1) * pixel, height: GLYPH_HEIGHT * pixel };
}

/**
 * Draws each box as an outline with its label on a filled tab above it (inside the box when there is no room
 * above), on a nearest-neighbour upscaled copy of the PNG at `pngPath`, and writes the result to `outPath`.
 */
export async function drawBoxes(
  pngPath: string,
  boxes: readonly LabelledBox[],
  outPath: string,
  options: DrawBoxesOptions = {},
): Promise<{ width: number; height: number; scale: number }> {
  const { data: source, info } = await sharp(pngPath)
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  const scale = options.scale ?? Math.max(1, Math.ceil(256 / info.width));
  if (!Number.isInteger(scale) || scale < 1)
    throw new Error(`drawBoxes: scale must be a positive integer (got ${scale}).`);
  const width = info.width * scale;
  const height = info.height * scale;
  const canvas = new Canvas(width, height, new Uint8Array(width * height * 3));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const from = (Math.floor(y / scale) * info.width + Math.floor(x / scale)) * info.channels;
      const to = (y * width + x) * 3;
      canvas.data[to] = source[from] as number;
      canvas.data[to + 1] = source[from + 1] as number;
      canvas.data[to + 2] = source[from + 2] as number;
    }
  }
  const thickness = Math.max(1, Math.round(scale / 2));
  const fontPixel = Math.max(1, Math.floor(scale / 2));
  for (const { box, label, color } of boxes) {
    const rgb = toRgb(color);
    const [x1, y1, x2, y2] = [box[0], box[1], box[2], box[3]].map((v) => Math.round(v * scale)) as [
      number,
      number,
      number,
      number,
    ];
    canvas.outline(x1, y1, x2, y2, thickness, rgb);
    if (label.length === 0) continue;
    const size = labelSize(label, fontPixel);
    const pad = fontPixel;
    const tabHeight = size.height + 2 * pad;
    const tabTop = y1 - tabHeight >= 0 ? y1 - tabHeight : y1 + thickness;
    canvas.fillRect(x1, tabTop, x1 + size.width + 2 * pad, tabTop + tabHeight, rgb);
    // Dark ink on light tabs, light ink on dark ones.
    const luminance = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
    const ink: Rgb = luminance > 140 ? [0, 0, 0] : [255, 255, 255];
    canvas.text(x1 + pad, tabTop + pad, label, fontPixel, ink);
  }
  await sharp(Buffer.from(canvas.data.buffer), { raw: { width, height, channels: 3 } })
    .png()
    .toFile(outPath);
  return { width, height, scale };
}
