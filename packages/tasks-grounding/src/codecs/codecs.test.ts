import { createRegistry } from '@vistune/core';
import { ImageTransform } from '@vistune/encoders';
import { describe, expect, it } from 'vitest';
import { type Box, boxIou } from '../box.js';
import { frameMap } from './frame.js';
import { Kosmos2Codec } from './kosmos2.js';
import { MiniGptV2Codec } from './minigpt-v2.js';
import { QwenVlCodec } from './qwen-vl.js';
import { createLocationCodec, registerCodecs } from './register.js';
import { ShikraCodec } from './shikra.js';
import type { LocationCodec } from './types.js';

// 640×480 padded to a 640×640 square (80 px on top), resized to 336: LLaVA pad-to-square.
const padded = new ImageTransform({
  originalWidth: 640,
  originalHeight: 480,
  padLeft: 0,
  padTop: 80,
  paddedWidth: 640,
  paddedHeight: 640,
  resizedWidth: 336,
  resizedHeight: 336,
  cropLeft: 0,
  cropTop: 0,
  width: 336,
  height: 336,
});
// 500×375, CLIP shortest edge 224 → 298×224, centre crop 224 (37 px cut on the left).
const cropped = new ImageTransform({
  originalWidth: 500,
  originalHeight: 375,
  padLeft: 0,
  padTop: 0,
  paddedWidth: 500,
  paddedHeight: 375,
  resizedWidth: 298,
  resizedHeight: 224,
  cropLeft: 37,
  cropTop: 0,
  width: 224,
  height: 224,
});

/** Boxes inside what the model sees (the crop window of `cropped` is x ∈ [62.1, 437.9]). */
const BOXES: Record<string, Box[]> = {
  padded: [
    [64, 48, 320, 240],
    [0, 0, 640, 480],
    [12.3, 400.7, 13.9, 479.2],
    [333, 17, 600, 18],
  ],
  cropped: [
    [100, 50, 300, 200],
    [63, 0, 437, 375],
    [250.5, 180.25, 251.75, 190],
  ],
};
const TRANSFORMS = { padded, cropped };

/** Original pixels per unit of the codec frame, per axis (the frames are affine in each axis). */
function pixelsPerUnit(codec: LocationCodec, t: ImageTransform): [number, number] {
  const map = frameMap(t, codec.frame);
  const [x0, y0] = map.fromUnit(0, 0);
  const [x1, y1] = map.fromUnit(1, 1);
  return [x1 - x0, y1 - y0];
}

/** Largest round-trip error per coordinate, in frame units. */
const CODECS: { codec: LocationCodec; maxError: number }[] = [
  { codec: new ShikraCodec(), maxError: 0.0005 },
  { codec: new ShikraCodec({ frame: 'square' }), maxError: 0.0005 },
  { codec: new QwenVlCodec(), maxError: 0.5 / 999 },
  { codec: new QwenVlCodec({ frame: 'original' }), maxError: 0.5 / 999 },
  { codec: new MiniGptV2Codec(), maxError: 1 / 100 },
  { codec: new MiniGptV2Codec({ rounding: 'round' }), maxError: 0.5 / 100 },
  { codec: new Kosmos2Codec(), maxError: 1 / 32 },
  { codec: new Kosmos2Codec({ frame: 'original' }), maxError: 1 / 32 },
];

describe('location codecs: hand-computed encodings', () => {
  // padded: [64,48,320,240] → x/640, (y+80)/640 = [0.1, 0.2, 0.5, 0.5] in the processed (square) frame.
  const box: Box = [64, 48, 320, 240];
  it('shikra writes 3 decimals in the padded square', () => {
    expect(new ShikraCodec().encodeBox(box, padded)).toBe('[0.100,0.200,0.500,0.500]');
    // square frame of 500×375: side 500, top = floor(125/2) = 62 → [50/500, 62/500, 250/500, 162/500].
    expect(new ShikraCodec({ frame: 'square' }).encodeBox([50, 0, 250, 100], cropped)).toBe(
      '[0.100,0.124,0.500,0.324]',
    );
    // processed frame through the crop: x·298/500 − 37, y·224/375, over 224:
    // [22.6, 29.867, 141.8, 119.467] / 224 = [0.1009, 0.1333, 0.6330, 0.5333].
    expect(new ShikraCodec().encodeBox([100, 50, 300, 200], cropped)).toBe('[0.101,0.133,0.633,0.533]');
    expect(new ShikraCodec().encodePoint([320, 240], padded)).toBe('[0.500,0.500]');
    expect(new ShikraCodec().encodeBoxes([box, [0, 0, 640, 480]], padded)).toBe(
      '[0.100,0.200,0.500,0.500;0.000,0.125,1.000,0.875]',
    );
  });
  it('qwen_vl rounds v·999 and wraps refs', () => {
    // 0.1·999 = 99.9 → 100, 0.2·999 = 199.8 → 200, 0.5·999 = 499.5 → 500.
    expect(new QwenVlCodec().encodeRef('the dog', [box], padded)).toBe(
      '<ref>the dog</ref><box>(100,200),(500,500)</box>',
    );
    // original frame: [64/640, 48/480, 320/640, 240/480] = [0.1, 0.1, 0.5, 0.5].
    expect(new QwenVlCodec({ frame: 'original' }).encodeBox(box, padded)).toBe(
      '<box>(100,100),(500,500)</box>',
    );
  });
  it('minigpt_v2 truncates to the 0–100 grid', () => {
    expect(new MiniGptV2Codec().encodeBox(box, padded)).toBe('{<10><20><50><50>}');
    // [12.3, 400.7, 13.9, 479.2] → [1.92, 75.11, 2.17, 87.38] → floor.
    expect(new MiniGptV2Codec().encodeBoxes([box, [12.3, 400.7, 13.9, 479.2]], padded)).toBe(
      '{<10><20><50><50>}<delim>{<1><75><2><87>}',
    );
  });
  it('kosmos2 picks the top-left and bottom-right cells and decodes cell centres', () => {
    // ul = (floor(3.2), floor(6.4)) = (3, 6) → 6·32+3 = 195; lr = ceil(16 − 1) = 15 → 15·32+15 = 495.
    const codec = new Kosmos2Codec();
    const text = codec.encodeBox(box, padded);
    expect(text).toBe('<object><patch_index_0195><patch_index_0495></object>');
    // centres 3.5/32, 6.5/32, 15.5/32, 15.5/32 → ×640, −80 on y: [70, 50, 310, 230].
    expect(codec.decodeAll(text, padded).boxes[0].map((v) => +v.toFixed(6))).toEqual([70, 50, 310, 230]);
    // Same row: full cell extents (cells 3..5 of row 6 → x 3/32..6/32, y 6/32..7/32).
    const row = codec.decodeAll('<object><patch_index_0195><patch_index_0197></object>', padded).boxes[0];
    expect(row.map((v) => +v.toFixed(6))).toEqual([60, 40, 120, 60]);
    expect(codec.specialTokens).toHaveLength(6 + 1024);
    expect(codec.specialTokens).toContain('<patch_index_1023>');
  });
});

describe('location codecs: round trips through pad-to-square and resize + centre crop', () => {
  for (const { codec, maxError } of CODECS) {
    for (const [tName, transform] of Object.entries(TRANSFORMS)) {
      it(`${codec.name} (${codec.frame}) through ${tName}`, () => {
        const [px, py] = pixelsPerUnit(codec, transform);
        for (const box of BOXES[tName]) {
          const text = codec.encodeBox(box, transform);
          const { boxes, malformed } = codec.decodeAll(`Sure: ${text}.`, transform);
          expect(malformed).toBe(0);
          expect(boxes).toHaveLength(1);
          const tolerance = [px, py, px, py].map((p) => p * maxError + 1e-6);
          boxes[0].forEach((v, i) => {
            expect(Math.abs(v - box[i])).toBeLessThanOrEqual(tolerance[i]);
          });
          // Decoding then encoding again reproduces the same text (quantisation is stable).
          expect(codec.encodeBox(boxes[0], transform)).toBe(text);
        }
      });
    }
  }

  it('several boxes and refs come back in order', () => {
    for (const { codec } of CODECS) {
      const boxes = BOXES.padded.slice(0, 2);
      const text = `${codec.encodeRef('a cat', boxes, padded)} and ${codec.encodeBox(BOXES.padded[2], padded)}`;
      const out = codec.decodeAll(text, padded);
      expect(out.malformed).toBe(0);
      expect(out.boxes).toHaveLength(3);
      if (codec.name !== 'shikra') {
        expect(out.refs).toHaveLength(1);
        expect(out.refs[0].phrase).toBe('a cat');
        expect(out.refs[0].boxes).toEqual(out.boxes.slice(0, 2));
      }
    }
  });

  it('points: shikra has a point syntax, the others a degenerate box', () => {
    const shikra = new ShikraCodec();
    const point = shikra.decodeAll(shikra.encodePoint([100, 200], padded), padded).points[0];
    expect(Math.abs(point[0] - 100)).toBeLessThanOrEqual(0.32 + 1e-6);
    expect(Math.abs(point[1] - 200)).toBeLessThanOrEqual(0.32 + 1e-6);
    const qwen = new QwenVlCodec();
    const [box] = qwen.decodeAll(qwen.encodePoint([100, 200], padded), padded).boxes;
    expect(box[0]).toBe(box[2]);
    expect(Math.abs(box[0] - 100)).toBeLessThan(0.33);
    // Kosmos-2: the point's cell, decoded as the full cell around it.
    const kosmos = new Kosmos2Codec();
    const [cell] = kosmos.decodeAll(kosmos.encodePoint([100, 200], padded), padded).boxes;
    expect(cell[0]).toBeLessThanOrEqual(100);
    expect(cell[2]).toBeGreaterThanOrEqual(100);
    expect(cell[2] - cell[0]).toBeCloseTo(20, 6);
  });
});

describe('location codecs: malformed output', () => {
  const cases: { codec: LocationCodec; text: string; boxes: number; points?: number; malformed: number }[] = [
    { codec: new ShikraCodec(), text: 'at [0.1,0.2,0.3] or', boxes: 0, malformed: 1 },
    { codec: new ShikraCodec(), text: '[0.5,0.2,0.1,0.4]', boxes: 0, malformed: 1 },
    { codec: new ShikraCodec(), text: '[1.2,0,0.5,0.5] [0.1,0.1,0.2,0.2]', boxes: 1, malformed: 1 },
    { codec: new ShikraCodec(), text: 'it is [0.1,0.2,0.3,0.4', boxes: 0, malformed: 1 },
    { codec: new ShikraCodec(), text: '[0.1,0.2 [0.1,0.2,0.3,0.4]', boxes: 1, malformed: 1 },
    { codec: new ShikraCodec(), text: '[INST] where [0.1,0.2] [a,b]', boxes: 0, points: 1, malformed: 0 },
    { codec: new ShikraCodec(), text: '[0.1,0.2,0.3,0.4;0.5]', boxes: 1, malformed: 1 },
    { codec: new ShikraCodec(), text: '[0.1,0.2,0.3,0.4e1]', boxes: 0, malformed: 1 },
    { codec: new QwenVlCodec(), text: '<box>(1,2),(3)</box>', boxes: 0, malformed: 1 },
    { codec: new QwenVlCodec(), text: '<box>(100,200),(50,300)</box>', boxes: 0, malformed: 1 },
    { codec: new QwenVlCodec(), text: '<box>(1000,0),(1000,10)</box>', boxes: 0, malformed: 1 },
    { codec: new QwenVlCodec(), text: '<box>(1,2),(3,4)<box>(1,2),(3,4)</box>', boxes: 1, malformed: 1 },
    { codec: new QwenVlCodec(), text: '<ref>dog</ref><box>(1,2),(30,40)', boxes: 0, malformed: 1 },
    { codec: new MiniGptV2Codec(), text: '{<10><20><5><30>}', boxes: 0, malformed: 1 },
    { codec: new MiniGptV2Codec(), text: '{<10><20><30>} {<1><2><3><4>}', boxes: 1, malformed: 1 },
    { codec: new MiniGptV2Codec(), text: '{<10><20><30><140>}', boxes: 0, malformed: 1 },
    { codec: new MiniGptV2Codec(), text: '{<1><2><3><4>', boxes: 0, malformed: 1 },
    { codec: new Kosmos2Codec(), text: '<object><patch_index_0195></object>', boxes: 0, malformed: 1 },
    {
      codec: new Kosmos2Codec(),
      text: '<object><patch_index_0495><patch_index_0195></object>',
      boxes: 0,
      malformed: 1,
    },
    {
      codec: new Kosmos2Codec(),
      text: '<object><patch_index_1024><patch_index_1025></object>',
      boxes: 0,
      malformed: 1,
    },
    {
      codec: new Kosmos2Codec(),
      text: '<object><patch_index_0001><patch_index_0099></delimiter_of_multi_objects/><patch_index_7></object>',
      boxes: 1,
      malformed: 1,
    },
    {
      codec: new Kosmos2Codec(),
      text: '<object><patch_index_0195><patch_index_0495>',
      boxes: 0,
      malformed: 1,
    },
  ];
  for (const c of cases) {
    it(`${c.codec.name}: ${c.text}`, () => {
      const out = c.codec.decodeAll(c.text, padded);
      expect(out.boxes).toHaveLength(c.boxes);
      expect(out.points).toHaveLength(c.points ?? 0);
      expect(out.malformed).toBe(c.malformed);
    });
  }

  it('never throws on mutilated output', () => {
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (const { codec } of CODECS) {
      const valid = codec.encodeRef('x', BOXES.padded.slice(0, 3), padded);
      const alphabet = `${valid}<>[](){},;/0123456789. `;
      for (let trial = 0; trial < 300; trial++) {
        const chars = [...valid];
        for (let k = 0; k < 1 + rand(6); k++) {
          const at = rand(chars.length + 1);
          if (rand(2)) chars.splice(at, 1);
          else chars.splice(at, 0, alphabet[rand(alphabet.length)]);
        }
        const out = codec.decodeAll(chars.join(''), padded);
        expect(out.malformed).toBeGreaterThanOrEqual(0);
        for (const b of out.boxes) {
          expect(b[2]).toBeGreaterThanOrEqual(b[0]);
          expect(b[3]).toBeGreaterThanOrEqual(b[1]);
        }
      }
    }
  });

  it('rejects inverted input boxes with a fix in the message', () => {
    expect(() => new ShikraCodec().encodeBox([10, 10, 5, 20], padded)).toThrow(/xywhToXyxy/);
  });
});

describe('codec registry entries', () => {
  it('creates every codec by config and validates options', async () => {
    const registry = createRegistry();
    registerCodecs(registry);
    expect(registry.list('codec').map((e) => e.name)).toEqual(['kosmos2', 'minigpt_v2', 'qwen_vl', 'shikra']);
    const codec = (await registry.create('codec', { type: 'qwen_vl', frame: 'original' })) as LocationCodec;
    expect(codec.encodeBox([64, 48, 320, 240], padded)).toBe('<box>(100,100),(500,500)</box>');
    expect(() => registry.createSync('codec', { type: 'kosmos2', bins: 0 })).toThrow(/bins/);
    expect(createLocationCodec('minigpt_v2', { bins: 50 }).encodeBox([64, 48, 320, 240], padded)).toBe(
      '{<5><10><25><25>}',
    );
    expect(() => createLocationCodec('ferret')).toThrow(/shikra, qwen_vl, minigpt_v2, kosmos2/);
  });
});

describe('shikra codec on an integer grid (bins)', () => {
  const grid = new ShikraCodec({ bins: 32 });
  const image = ImageTransform.identity(64, 64);
  const first = (text: string) => grid.decodeAll(text, image).boxes[0] ?? null;

  it('writes integers on the grid, clamping to the image', () => {
    expect(grid.encodeBox([8, 12, 26, 30], image)).toBe('[4,6,13,15]');
    expect(grid.encodeBox([0, 0, 64, 64], image)).toBe('[0,0,32,32]');
    expect(grid.encodeBox([-3, 5, 70, 40], image)).toBe('[0,3,32,20]');
  });

  it('round-trips within half a cell, and keeps IoU >= 0.6 down to 9.2 px boxes', () => {
    for (let i = 0; i < 200; i++) {
      const side = 9.2 + ((i * 7) % 21);
      const x = (i * 13) % (64 - side);
      const y = (i * 29) % (64 - side);
      const box: Box = [x, y, x + side, y + side];
      const decoded = first(grid.encodeBox(box, image));
      expect(decoded).not.toBeNull();
      for (const [k, v] of (decoded ?? []).entries())
        expect(Math.abs(v - (box[k] as number))).toBeLessThanOrEqual(1 + 1e-9);
      expect(boxIou(decoded as Box, box)).toBeGreaterThanOrEqual(0.6);
    }
  });

  it('finds the box inside text and tolerates spaces', () => {
    expect(first('It is at [4, 6 ,13,15].')).toEqual([8, 12, 26, 30]);
  });

  it.each([
    ['empty', ''],
    ['no box', 'the red circle'],
    ['three numbers', '[1,2,3]'],
    ['five numbers', '[1,2,3,4,5]'],
    ['letters', '[a,b,c,d]'],
    ['beyond the grid', '[1,2,33,4]'],
    ['inverted x', '[9,2,3,4]'],
    ['inverted y', '[1,9,3,4]'],
    ['unclosed', '[1,2,3,4'],
    ['negative', '[-1,2,3,4]'],
    ['decimals on a grid', '[0.1,0.2,0.3,0.4]'],
  ])('gives no box for %s', (_name, text) => {
    expect(first(text)).toBeNull();
  });

  it('validates bins, also through the registry schema', () => {
    expect(() => new ShikraCodec({ bins: 2.5 })).toThrow(/bins must be a positive integer/);
    expect(createLocationCodec('shikra', { bins: 32 }).encodeBox([8, 12, 26, 30], image)).toBe('[4,6,13,15]');
    expect(() => createLocationCodec('shikra', { bins: 0 })).toThrow(/bins/);
  });
});
