// COCO-style detection mAP@[.50:.05:.95] for multi-box answers, following pycocotools' evaluateImg and
// accumulate for area range `all`: per image and class the top-`maxDetections` detections by score are matched
// greedily (in score order) to the unmatched ground truth of highest IoU ≥ t; crowd boxes are matched by
// intersection / detection area and make their detections ignored. Per class and threshold, precision is made
// monotone and read at 101 recall points (0, 0.01, …, 1); AP is their mean; mAP averages classes with ground
// truth and thresholds.
import { type Box, boxArea, boxIntersection, boxIou } from '../box.js';

export type ClassLabel = string | number;

export interface Detection {
  box: Box;
  score: number;
  label?: ClassLabel;
}

export interface GroundTruthBox {
  box: Box;
  label?: ClassLabel;
  /** COCO iscrowd: may absorb any number of detections, which are then neither TP nor FP. */
  iscrowd?: boolean;
}

export interface DetectionMapOptions {
  /** IoU thresholds (COCO: 0.50, 0.55, …, 0.95). */
  iouThresholds?: readonly number[];
  /** Detections kept per image and class, highest scores first (COCO: 100). */
  maxDetections?: number;
  /** One class for everything (labels ignored). */
  classAgnostic?: boolean;
}

export interface DetectionMapResult {
  /** Mean AP over classes with ground truth and all thresholds; 0 when there is no ground truth. */
  map: number;
  /** AP at IoU 0.5 / 0.75 (when those thresholds are evaluated; else NaN). */
  ap50: number;
  ap75: number;
  /** Per class: AP averaged over thresholds. */
  perClass: Map<ClassLabel, number>;
  /** Per threshold: AP averaged over classes. */
  perThreshold: number[];
}

export const COCO_IOU_THRESHOLDS: readonly number[] = Array.from({ length: 10 }, (_, i) => 0.5 + 0.05 * i);
const RECALL_POINTS = Array.from({ length: 101 }, (_, i) => i / 100);
const AGNOSTIC = '*';

/** Per image-and-class evaluation at every threshold (pycocotools evaluateImg). */
interface ImageClassMatch {
  scores: number[];
  /** [threshold][detection]: matched to a ground truth / ignored. */
  matched: boolean[][];
  ignored: boolean[][];
  /** Non-crowd ground truth count. */
  positives: number;
}

function matchImageClass(
  dets: Detection[],
  gts: GroundTruthBox[],
  thresholds: readonly number[],
  maxDet: number,
): ImageClassMatch {
  // Stable sorts, as numpy's mergesort: non-crowd ground truth first, detections by descending score.
  const gt = [...gts].sort((a, b) => Number(!!a.iscrowd) - Number(!!b.iscrowd));
  const dt = [...dets].sort((a, b) => b.score - a.score).slice(0, maxDet);
  const crowd = gt.map((g) => !!g.iscrowd);
  const ious = dt.map((d) =>
    gt.map((g, j) => {
      if (!crowd[j]) return boxIou(d.box, g.box);
      const area = boxArea(d.box);
      return area > 0 ? boxIntersection(d.box, g.box) / area : 0;
    }),
  );
  const matched: boolean[][] = [];
  const ignored: boolean[][] = [];
  for (const t of thresholds) {
    const gtTaken = gt.map(() => false);
    const dtMatched = dt.map(() => false);
    const dtIgnored = dt.map(() => false);
    dt.forEach((_, d) => {
      let best = Math.min(t, 1 - 1e-10);
      let m = -1;
      for (let g = 0; g < gt.length; g++) {
        if (gtTaken[g] && !crowd[g]) continue;
        // A match to real ground truth is never traded for a crowd region (they are sorted last).
        if (m > -1 && !crowd[m] && crowd[g]) break;
        if (ious[d][g] < best) continue;
        best = ious[d][g];
        m = g;
      }
      if (m === -1) return;
      dtIgnored[d] = crowd[m];
      dtMatched[d] = true;
      gtTaken[m] = true;
    });
    matched.push(dtMatched);
    ignored.push(dtIgnored);
  }
  return { scores: dt.map((d) => d.score), matched, ignored, positives: crowd.filter((c) => !c).length };
}

/** AP of one class at one threshold from its per-image matches (pycocotools accumulate), or null without ground truth. */
function averagePrecision(images: ImageClassMatch[], tIndex: number): number | null {
  const positives = images.reduce((s, m) => s + m.positives, 0);
  if (positives === 0) return null;
  const rows = images.flatMap((m) =>
    m.scores.map((score, d) => ({ score, tp: m.matched[tIndex][d], ignored: m.ignored[tIndex][d] })),
  );
  rows.sort((a, b) => b.score - a.score);
  const recall: number[] = [];
  const precision: number[] = [];
  let tp = 0;
  let fp = 0;
  for (const r of rows) {
    if (!r.ignored) {
      if (r.tp) tp++;
      else fp++;
    }
    recall.push(tp / positives);
    precision.push(tp / (tp + fp + Number.EPSILON));
  }
  for (let i = precision.length - 1; i > 0; i--) precision[i - 1] = Math.max(precision[i - 1], precision[i]);
  let sum = 0;
  let at = 0;
  for (const r of RECALL_POINTS) {
    while (at < recall.length && recall[at] < r) at++; // searchsorted(side='left')
    if (at < recall.length) sum += precision[at];
  }
  return sum / RECALL_POINTS.length;
}

export class DetectionMap {
  readonly iouThresholds: readonly number[];
  readonly maxDetections: number;
  readonly classAgnostic: boolean;
  /** class → one match record per image that has detections or ground truth of that class. */
  private readonly byClass = new Map<ClassLabel, ImageClassMatch[]>();

  constructor(opts: DetectionMapOptions = {}) {
    this.iouThresholds = opts.iouThresholds ?? COCO_IOU_THRESHOLDS;
    this.maxDetections = opts.maxDetections ?? 100;
    this.classAgnostic = opts.classAgnostic ?? false;
    if (!this.iouThresholds.length || this.iouThresholds.some((t) => !(t > 0 && t <= 1)))
      throw new Error('DetectionMap: iouThresholds must be a non-empty list of numbers in (0, 1]');
  }

  private label(x: { label?: ClassLabel }): ClassLabel {
    if (this.classAgnostic) return AGNOSTIC;
    if (x.label === undefined)
      throw new Error('DetectionMap: a box has no label; give every box a label or set classAgnostic: true');
    return x.label;
  }

  /** Adds one image's detections and ground truth. */
  addImage(detections: readonly Detection[], groundTruth: readonly GroundTruthBox[]): void {
    const classes = new Set([...detections, ...groundTruth].map((x) => this.label(x)));
    for (const c of classes) {
      const match = matchImageClass(
        detections.filter((d) => this.label(d) === c),
        groundTruth.filter((g) => this.label(g) === c),
        this.iouThresholds,
        this.maxDetections,
      );
      this.byClass.set(c, [...(this.byClass.get(c) ?? []), match]);
    }
  }

  result(): DetectionMapResult {
    const perClass = new Map<ClassLabel, number>();
    const T = this.iouThresholds.length;
    const thresholdSums = new Array<number>(T).fill(0);
    for (const [c, images] of this.byClass) {
      const aps = this.iouThresholds.map((_, t) => averagePrecision(images, t));
      if (aps[0] === null) continue; // no ground truth of this class: COCO leaves it out (-1)
      const values = aps as number[];
      values.forEach((ap, t) => {
        thresholdSums[t] += ap;
      });
      perClass.set(c, values.reduce((s, v) => s + v, 0) / T);
    }
    const K = perClass.size;
    const perThreshold = thresholdSums.map((s) => (K ? s / K : 0));
    const at = (iou: number) => {
      const i = this.iouThresholds.findIndex((t) => Math.abs(t - iou) < 1e-9);
      return i < 0 ? Number.NaN : perThreshold[i];
    };
    return {
      map: K ? perThreshold.reduce((s, v) => s + v, 0) / T : 0,
      ap50: at(0.5),
      ap75: at(0.75),
      perClass,
      perThreshold,
    };
  }
}
