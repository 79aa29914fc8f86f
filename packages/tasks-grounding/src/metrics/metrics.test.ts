import { createRegistry } from '@vistune/core';
import { ImageTransform } from '@vistune/encoders';
import { describe, expect, it } from 'vitest';
import type { Box } from '../box.js';
import { QwenVlCodec } from '../codecs/qwen-vl.js';
import { type Detection, DetectionMap, type GroundTruthBox } from './detection-map.js';
import { type BinaryMask, binarizeLogits, MaskIoU } from './mask-iou.js';
import { RecAccuracy, recAccuracy, recPredictionFromText } from './rec.js';
import { registerMetrics } from './register.js';

describe('REC Acc@0.5', () => {
  it('counts IoU ≥ 0.5 as correct and missing boxes as misses', () => {
    const gt: Box = [0, 0, 10, 10];
    // [0,0,10,5]: IoU 50/100 = 0.5 exactly; [5,0,15,10]: 50/150 = 1/3; [0,0,10,10]: 1.
    const result = recAccuracy([[0, 0, 10, 5], [5, 0, 15, 10], null, [0, 0, 10, 10]], [gt, gt, gt, gt]);
    expect(result).toEqual({
      accuracy: 0.5,
      correct: 2,
      total: 4,
      missing: 1,
      meanIou: (0.5 + 1 / 3 + 1) / 4,
    });
    // Shikra / MiniGPT-v2 compare strictly: the IoU-0.5 box is a miss.
    expect(recAccuracy([[0, 0, 10, 5]], [gt], { comparison: '>' }).correct).toBe(0);
  });

  it('scores model text through a codec; malformed text is a miss', () => {
    const t = ImageTransform.identity(1000, 1000);
    const codec = new QwenVlCodec({ frame: 'original', denominator: 1000 });
    const metric = new RecAccuracy();
    expect(
      metric.add(
        recPredictionFromText(codec, 'It is <box>(100,100),(300,300)</box>.', t),
        [100, 100, 300, 310],
      ),
    ).toBe(true);
    expect(
      metric.add(recPredictionFromText(codec, '<box>(100,100),(50)</box>', t), [100, 100, 300, 300]),
    ).toBe(false);
    expect(metric.result()).toMatchObject({ correct: 1, total: 2, missing: 1 });
  });
});

const mask = (rows: string[]): BinaryMask => ({
  width: rows[0].length,
  height: rows.length,
  data: Uint8Array.from(rows.join('').split(''), (c) => (c === '#' ? 1 : 0)),
});

describe('gIoU / cIoU (LISA)', () => {
  it('averages per-mask IoU and accumulates intersections and unions', () => {
    const metric = new MaskIoU();
    // A: I = 2, U = 4 (pred 3 px, target 3 px, 2 shared).
    metric.add(mask(['##..', '#...']), mask(['##..', '..#.']));
    // B: I = 0, U = 1.
    metric.add(mask(['....', '....']), mask(['...#', '....']));
    // C: empty prediction and target: U = 0 → IoU 1 (LISA adds 1 where union is 0).
    metric.add(mask(['....', '....']), mask(['....', '....']));
    const r = metric.result();
    expect(r.gIoU).toBeCloseTo((2 / (4 + 1e-5) + 0 + 1) / 3, 12);
    expect(r.cIoU).toBeCloseTo(2 / 5, 9);
    expect(r).toMatchObject({ count: 3, intersection: 2, union: 5 });
  });

  it('binarises logits at 0 and refuses masks of different sizes', () => {
    expect(Array.from(binarizeLogits([-1, 0, 0.2, 3], 2, 2).data)).toEqual([0, 0, 1, 1]);
    expect(() => new MaskIoU().add(mask(['#']), mask(['##']))).toThrow(/resize the prediction/);
  });
});

describe('COCO detection mAP', () => {
  // Image A: g1 [0,0,10,10] (cat), g2 [20,20,30,30] (dog). Image B: g3 [0,0,10,10] (cat).
  // d1 .9 = g1 (IoU 1); d2 .8 [22,20,32,30] vs g2: 80/120 = 0.667; d3 .6 [50,50,60,60] matches nothing;
  // d4 .7 (image B) [1,0,11,10] vs g3: 90/110 = 0.818.
  const gtA: GroundTruthBox[] = [
    { box: [0, 0, 10, 10], label: 'cat' },
    { box: [20, 20, 30, 30], label: 'dog' },
  ];
  const gtB: GroundTruthBox[] = [{ box: [0, 0, 10, 10], label: 'cat' }];
  const detA: Detection[] = [
    { box: [0, 0, 10, 10], score: 0.9, label: 'cat' },
    { box: [22, 20, 32, 30], score: 0.8, label: 'dog' },
    { box: [50, 50, 60, 60], score: 0.6, label: 'cat' },
  ];
  const detB: Detection[] = [{ box: [1, 0, 11, 10], score: 0.7, label: 'cat' }];

  it('class-agnostic: hand-computed AP per threshold', () => {
    // Score order d1 d2 d4 d3, 3 positives.
    // t ≤ .65: TP TP TP FP → precision 1 at every recall ≤ 1 → AP 1 (4 thresholds).
    // t ∈ {.70,.75,.80}: TP FP TP FP → recall 1/3,1/3,2/3,2/3, monotone precision 1,2/3,2/3,1/2:
    //   r ≤ 1/3 (34 points) → 1, r ∈ (1/3, 2/3] (33 points) → 2/3, r > 2/3 → 0: AP = (34 + 22)/101 = 56/101.
    // t ≥ .85: TP FP FP FP → recall stays 1/3: AP = 34/101.
    // mAP = (4 + 3·56/101 + 3·34/101)/10 = 674/1010.
    const metric = new DetectionMap({ classAgnostic: true });
    metric.addImage(detA, gtA);
    metric.addImage(detB, gtB);
    const r = metric.result();
    const expected = [1, 1, 1, 1, 56 / 101, 56 / 101, 56 / 101, 34 / 101, 34 / 101, 34 / 101];
    for (const [i, ap] of r.perThreshold.entries()) expect(ap).toBeCloseTo(expected[i], 12);
    expect(r.map).toBeCloseTo(674 / 1010, 12);
    expect(r.ap50).toBeCloseTo(1, 12);
    expect(r.ap75).toBeCloseTo(56 / 101, 12);
  });

  it('per class: hand-computed AP', () => {
    // dog (1 positive, d2 only): AP 1 for t ≤ .65, 0 above → 0.4.
    // cat (2 positives; d1 .9, d4 .7, d3 .6): t ≤ .8: TP TP FP → AP 1;
    //   t ≥ .85: TP FP FP → recall 1/2, precision 1 for r ≤ .5 (51 points) → 51/101.
    //   cat = (7 + 3·51/101)/10 = 860/1010. mAP = (0.4 + 860/1010)/2 = 1264/2020.
    const metric = new DetectionMap();
    metric.addImage(detA, gtA);
    metric.addImage(detB, gtB);
    const r = metric.result();
    expect(r.perClass.get('dog')).toBeCloseTo(0.4, 12);
    expect(r.perClass.get('cat')).toBeCloseTo(860 / 1010, 12);
    expect(r.map).toBeCloseTo(1264 / 2020, 12);
  });

  it('crowd regions absorb detections; classes without ground truth are left out; maxDetections cuts', () => {
    const base = new DetectionMap({ classAgnostic: true });
    base.addImage(detA, gtA);
    base.addImage(detB, gtB);
    const withCrowd = new DetectionMap({ classAgnostic: true });
    // Image C: a crowd region and a detection inside it (intersection / detection area = 1): ignored.
    withCrowd.addImage(detA, gtA);
    withCrowd.addImage(detB, gtB);
    withCrowd.addImage(
      [{ box: [110, 110, 150, 150], score: 0.95 }],
      [{ box: [100, 100, 200, 200], iscrowd: true }],
    );
    expect(withCrowd.result().map).toBeCloseTo(base.result().map, 12);
    // The same region as ordinary ground truth: the detection (IoU 0.16) is a false positive at the top.
    const noCrowd = new DetectionMap({ classAgnostic: true });
    noCrowd.addImage(detA, gtA);
    noCrowd.addImage(detB, gtB);
    noCrowd.addImage([{ box: [110, 110, 150, 150], score: 0.95 }], [{ box: [100, 100, 200, 200] }]);
    expect(noCrowd.result().map).toBeLessThan(base.result().map);

    const onlyFalse = new DetectionMap();
    onlyFalse.addImage(
      [{ box: [0, 0, 1, 1], score: 0.5, label: 'bird' }],
      [{ box: [0, 0, 10, 10], label: 'cat' }],
    );
    const r = onlyFalse.result();
    expect([...r.perClass.keys()]).toEqual(['cat']);
    expect(r.map).toBe(0);

    // maxDetections 1 keeps only d1 in image A: agnostic AP50 then has TP (d1), TP (d4): recall 2/3, precision 1
    // → r ≤ 2/3 (67 points) → 67/101.
    const cut = new DetectionMap({ classAgnostic: true, maxDetections: 1, iouThresholds: [0.5] });
    cut.addImage(detA, gtA);
    cut.addImage(detB, gtB);
    expect(cut.result().map).toBeCloseTo(67 / 101, 12);
    expect(() => new DetectionMap().addImage([{ box: [0, 0, 1, 1], score: 1 }], [])).toThrow(/classAgnostic/);
  });
});

describe('metric registry entries', () => {
  it('creates fresh accumulators by config', async () => {
    const registry = createRegistry();
    registerMetrics(registry);
    expect(registry.list('metric').map((e) => e.name)).toEqual(['box_accuracy', 'box_iou', 'detection_map', 'mask_iou', 'rec_accuracy']);
    const rec = (await registry.create('metric', { type: 'rec_accuracy', comparison: '>' })) as RecAccuracy;
    expect(rec.comparison).toBe('>');
    const map = registry.createSync('metric', { type: 'detection_map', classAgnostic: true }) as DetectionMap;
    expect(map.maxDetections).toBe(100);
    expect(() => registry.createSync('metric', { type: 'detection_map', maxDetections: 0 })).toThrow(
      /maxDetections/,
    );
  });
});
