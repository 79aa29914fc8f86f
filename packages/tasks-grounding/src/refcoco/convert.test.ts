import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageTransform } from '@vistune/encoders';
import { describe, expect, it } from 'vitest';
import { QwenVlCodec } from '../codecs/qwen-vl.js';
import { ShikraCodec } from '../codecs/shikra.js';
import { recAccuracy } from '../metrics/rec.js';
import { convertRefcoco, convertRefcocoFiles, type RefcocoRecord } from './convert.js';
import { segmentationToMask } from './masks.js';

const instances = {
  images: [
    { id: 1, file_name: 'COCO_train2014_000000000001.jpg', width: 200, height: 100 },
    { id: 2, file_name: 'COCO_train2014_000000000002.jpg', width: 50, height: 80 },
  ],
  annotations: [
    // bbox [x, y, w, h] = [20, 10, 50, 40] → [20, 10, 70, 50]; a rectangle polygon on the same pixels.
    {
      id: 11,
      image_id: 1,
      category_id: 1,
      bbox: [20, 10, 50, 40],
      segmentation: [[20, 10, 70, 10, 70, 50, 20, 50]],
      iscrowd: 0,
    },
    {
      id: 12,
      image_id: 2,
      category_id: 2,
      bbox: [5, 5, 10, 20],
      segmentation: { size: [80, 50], counts: [405, 20, 60, 20, 3495] },
    },
    { id: 13, image_id: 2, category_id: 2, bbox: [5, 5, 0, 20], segmentation: [[5, 5, 5, 25, 6, 25]] },
  ],
  categories: [
    { id: 1, name: 'person' },
    { id: 2, name: 'dog' },
  ],
};
const refs = [
  {
    ref_id: 100,
    ann_id: 11,
    image_id: 1,
    split: 'train',
    sentences: [{ sent: 'man on the left' }, { sent: 'guy in red', raw: 'Guy in red' }],
  },
  {
    ref_id: 101,
    ann_id: 12,
    image_id: 2,
    split: 'testA',
    sentences: [{ sent: 'small dog' }, { sent: '  ' }],
  },
  { ref_id: 102, ann_id: 99, image_id: 2, split: 'testA', sentences: [{ sent: 'ghost' }] },
  { ref_id: 103, ann_id: 13, image_id: 2, split: 'val', sentences: [{ sent: 'thin line' }] },
];

describe('RefCOCO converter', () => {
  it('writes REC records per split with codec-encoded boxes, and counts what it skips', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'refcoco-'));
    try {
      await writeFile(join(dir, 'refs.json'), JSON.stringify(refs));
      await writeFile(join(dir, 'instances.json'), JSON.stringify(instances));
      const { files, conversion } = await convertRefcocoFiles(
        join(dir, 'refs.json'),
        join(dir, 'instances.json'),
        dir,
        {
          codec: new ShikraCodec(),
          imagePrefix: 'train2014/',
        },
      );
      expect([...files.keys()].sort()).toEqual(['testA', 'train']);
      expect(conversion.skipped).toMatchObject({ missing_annotation: 1, empty_box: 1, empty_sentence: 1 });
      const train = JSON.parse(await readFile(join(dir, 'refcoco_train.json'), 'utf8')) as RefcocoRecord[];
      expect(train).toHaveLength(2);
      expect(train[0]).toMatchObject({
        id: 'refcoco_rec_100_0',
        image: 'train2014/COCO_train2014_000000000001.jpg',
        task: 'rec',
        category: 'person',
        box: [20, 10, 70, 50],
      });
      expect(train[0].conversations[0].value).toMatch(/^<image>\n.*man on the left/);
      // Identity transform: [20/200, 10/100, 70/200, 50/100].
      expect(train[0].conversations[1]).toEqual({ from: 'gpt', value: '[0.100,0.100,0.350,0.500]' });
      expect(train[1].conversations[0].value).toContain('guy in red');
    } finally {
      await rm(dir, { recursive: true });
    }
  });

  it('encodes through the processor transform; decoding the answers gives the boxes back (Acc@0.5 = 1)', () => {
    // Shikra's padded square: the 200×100 image sits 50 px down in a 200×200 square resized to 100.
    const transformFor = (w: number, h: number) => {
      const side = Math.max(w, h);
      return new ImageTransform({
        originalWidth: w,
        originalHeight: h,
        padLeft: Math.floor((side - w) / 2),
        padTop: Math.floor((side - h) / 2),
        paddedWidth: side,
        paddedHeight: side,
        resizedWidth: 100,
        resizedHeight: 100,
        cropLeft: 0,
        cropTop: 0,
        width: 100,
        height: 100,
      });
    };
    const codec = new QwenVlCodec();
    const { splits } = convertRefcoco(refs, instances, {
      codec,
      transformFor,
      recAnswer: 'ref',
      sentences: 'first',
    });
    const records = [...splits.values()].flat();
    expect(records).toHaveLength(2);
    // [20, 10+50, 70, 50+50] / 200 · 999 = [99.9, 299.7, 349.65, 499.5] → rounded.
    expect(records[0].conversations[1].value).toBe(
      '<ref>man on the left</ref><box>(100,300),(350,500)</box>',
    );
    const decoded = records.map(
      (r) => codec.decodeAll(r.conversations[1].value, transformFor(r.width, r.height)).boxes[0],
    );
    expect(
      recAccuracy(
        decoded,
        records.map((r) => r.box),
      ).accuracy,
    ).toBe(1);
  });

  it('REG (box text or <region> placeholder) and RES (segmentation carried for the mask head)', () => {
    const { splits } = convertRefcoco(refs, instances, {
      codec: new ShikraCodec(),
      tasks: ['reg', 'res'],
      regionInput: 'placeholder',
      name: 'refcoco+',
      seed: 3,
    });
    const train = splits.get('train') ?? [];
    expect(train.map((r) => r.id)).toEqual([
      'refcoco+_reg_100_0',
      'refcoco+_res_100_0',
      'refcoco+_reg_100_1',
      'refcoco+_res_100_1',
    ]);
    const [reg, res] = train;
    expect(reg.conversations[0].value).toContain('<region>');
    expect(reg.regions).toEqual([[20, 10, 70, 50]]);
    expect(reg.conversations[1].value).toBe('man on the left');
    expect(res.conversations[1].value).toContain('[SEG]');
    // The polygon covers exactly the box's pixels: 50 × 40.
    const mask = segmentationToMask(res.segmentation ?? [], res.width, res.height);
    expect(mask.reduce((s, v) => s + v, 0)).toBe(2000);
    const dog = (splits.get('testA') ?? []).find((r) => r.task === 'res');
    // RLE: 20 px in column 5 and 20 in column 6 (rows 5..24).
    const dogMask = segmentationToMask(dog?.segmentation ?? [], 50, 80);
    expect(dogMask.reduce((s, v) => s + v, 0)).toBe(40);
    expect(dogMask[5 * 50 + 5]).toBe(1);
    expect(dogMask[24 * 50 + 6]).toBe(1);
    const text =
      convertRefcoco(refs, instances, { codec: new ShikraCodec(), tasks: ['reg'] }).splits.get('train') ?? [];
    expect(text[0].conversations[0].value).toContain('[0.100,0.100,0.350,0.500]');
  });

  it('names the field when the input is not the expected JSON, and checks templates', () => {
    expect(() => convertRefcoco([{ ref_id: 1 }], instances, { codec: new ShikraCodec() })).toThrow(
      /refs JSON.*\n.*ann_id/,
    );
    expect(() =>
      convertRefcoco(refs, instances, { codec: new ShikraCodec(), templates: { rec: ['Where is it?'] } }),
    ).toThrow(/templates.rec .* has no \{expr\}/);
  });
});
