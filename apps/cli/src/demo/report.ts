// The demo's headline figures from per-turn scores: VQA exact match, counting accuracy, grounding Acc@0.5,
// and the per-question-kind table, with the thresholds the default run is expected to meet.
import {
  type BoxCodec,
  type KindScore,
  scoreWorldPredictions,
  type TurnKind,
  type WorldPredictions,
  type WorldRecord,
  type WorldScores,
} from '@vistune/demo-world';
import { splitTurns } from './evaluate.js';

/** Short-answer kinds scored by exact match ("VQA"); counting and boxes have their own metrics. */
export const VQA_KINDS: readonly TurnKind[] = [
  'vqa_color',
  'vqa_shape',
  'vqa_size',
  'vqa_position',
  'vqa_relation',
  'vqa_exist',
];

/** What the default demo must reach on the held-out split (the quick one reports against them too). */
// Grounding raised from the issue's 0.5: the default run reached 0.95 (README).
export const DEMO_TARGETS = { vqaExactMatch: 0.8, countAccuracy: 0.7, groundingAcc50: 0.8 } as const;

/** The three headline figures (and mean IoU), e.g. of the shuffled-media control. */
export interface DemoHeadline {
  vqaExactMatch: number;
  countAccuracy: number;
  groundingAcc50: number;
  groundingMeanIou: number;
}

/** The headline figures of metrics. */
export function headline(metrics: DemoHeadline): DemoHeadline {
  const { vqaExactMatch, countAccuracy, groundingAcc50, groundingMeanIou } = metrics;
  return { vqaExactMatch, countAccuracy, groundingAcc50, groundingMeanIou };
}

export interface DemoMetrics {
  /** Exact match over every turn of a VQA_KINDS kind (conversation turns included). */
  vqaExactMatch: number;
  /** Over every counting turn: the first number equals the true count. */
  countAccuracy: number;
  /** Over every grounding turn: the first box has IoU ≥ 0.5 with the true box. */
  groundingAcc50: number;
  /** Mean IoU of the predicted boxes (gIoU over boxes; malformed answers count 0). No target. */
  groundingMeanIou: number;
  /** One row per question kind, over turns (a conversation's turns count under their own kinds). */
  perQuestionKind: KindScore[];
  /** One row per record kind (conversation records as a whole), as scoreWorldPredictions gives them. */
  perRecordKind: WorldScores;
  /** Each headline figure against DEMO_TARGETS. */
  meetsTargets: { vqaExactMatch: boolean; countAccuracy: boolean; groundingAcc50: boolean };
}

/** Scores predictions on records per question kind and per record kind, and the headline figures. */
export function demoMetrics(
  records: readonly WorldRecord[],
  predictions: WorldPredictions,
  opts: { codec?: BoxCodec } = {},
): DemoMetrics {
  const turns = splitTurns(records, predictions);
  const perTurn = scoreWorldPredictions(turns.records, turns.predictions, opts);
  const rows = perTurn.rows;
  let exact = 0;
  let vqaTurns = 0;
  for (const row of rows) {
    if (!VQA_KINDS.includes(row.kind as TurnKind)) continue;
    exact += row.exactMatch * row.turns;
    vqaTurns += row.turns;
  }
  const count = rows.find((r) => r.kind === 'vqa_count');
  const grounding = rows.find((r) => r.kind === 'grounding');
  const vqaExactMatch = vqaTurns > 0 ? exact / vqaTurns : 0;
  const countAccuracy = count?.countAccuracy ?? 0;
  const groundingAcc50 = grounding?.groundingAcc50 ?? 0;
  return {
    vqaExactMatch,
    countAccuracy,
    groundingAcc50,
    groundingMeanIou: grounding?.groundingMeanIou ?? 0,
    perQuestionKind: [...rows, perTurn.overall],
    perRecordKind: scoreWorldPredictions(records, predictions, opts),
    meetsTargets: {
      vqaExactMatch: vqaExactMatch >= DEMO_TARGETS.vqaExactMatch,
      countAccuracy: countAccuracy >= DEMO_TARGETS.countAccuracy,
      groundingAcc50: groundingAcc50 >= DEMO_TARGETS.groundingAcc50,
    },
  };
}

const pct = (value: number): string => `${(100 * value).toFixed(1)} %`;

/**
 * The three headline lines, each with its target and, given the shuffled-media control, the same figure with
 * every image swapped for another record's (what the model gets without looking at the right image).
 */
export function formatDemoHeadline(metrics: DemoMetrics, shuffled?: DemoHeadline): string {
  const control = (value: number | undefined) =>
    value === undefined ? '' : `   shuffled images ${pct(value).padStart(7)}`;
  const line = (name: string, key: keyof DemoHeadline, target: number, met: boolean) =>
    `${name.padEnd(26)} ${pct(metrics[key]).padStart(8)}   ${`(target ≥ ${pct(target)}${met ? ', met)' : ', not met)'}`.padEnd(27)}${control(shuffled?.[key])}`.trimEnd();
  return [
    line('VQA exact match', 'vqaExactMatch', DEMO_TARGETS.vqaExactMatch, metrics.meetsTargets.vqaExactMatch),
    line(
      'counting accuracy',
      'countAccuracy',
      DEMO_TARGETS.countAccuracy,
      metrics.meetsTargets.countAccuracy,
    ),
    line(
      'grounding Acc@0.5',
      'groundingAcc50',
      DEMO_TARGETS.groundingAcc50,
      metrics.meetsTargets.groundingAcc50,
    ),
    `${'grounding gIoU (mean IoU)'.padEnd(26)} ${pct(metrics.groundingMeanIou).padStart(8)}   ${''.padEnd(27)}${control(shuffled?.groundingMeanIou)}`.trimEnd(),
  ].join('\n');
}
