// Sample conversations of the demo: every question asked about a few held-out images, the model's answer
// next to the truth, and each image saved upscaled with the predicted (red) and true (green) boxes drawn.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BoxCodec,
  scoreOneTurn,
  type TurnKind,
  type WorldPredictions,
  type WorldRecord,
} from '@vistune/demo-world';
import { drawBoxes, type LabelledBox } from '@vistune/tasks-grounding';

export interface SampleTurn {
  kind: TurnKind;
  question: string;
  answer: string;
  truth: string;
  /** By the kind's measure: a box with IoU ≥ 0.5, the right count, else exact match. */
  correct: boolean;
  /** Grounding turns: IoU of the answer's box with the true one (0 when no box could be read). */
  iou?: number;
}

export interface SampleConversation {
  /** The world image (relative to the world folder). */
  image: string;
  /** The saved picture with boxes drawn. */
  picture: string;
  turns: SampleTurn[];
}

/** Held-out images with the most grounding turns first (boxes make the best pictures), `count` of them. */
function pickImages(records: readonly WorldRecord[], count: number): string[] {
  const boxes = new Map<string, number>();
  for (const r of records) {
    const n = r.truth.filter((t) => t.kind === 'grounding').length;
    boxes.set(r.image, (boxes.get(r.image) ?? 0) + n);
  }
  return [...boxes.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, count)
    .map(([image]) => image);
}

/** Builds `count` sample conversations and saves their pictures under `outDir`. */
export async function sampleConversations(
  records: readonly WorldRecord[],
  predictions: WorldPredictions,
  opts: { worldDir: string; outDir: string; count: number; codec?: BoxCodec },
): Promise<SampleConversation[]> {
  const codec = opts.codec ?? new BoxCodec();
  await mkdir(opts.outDir, { recursive: true });
  const samples: SampleConversation[] = [];
  for (const image of pickImages(records, opts.count)) {
    const turns: SampleTurn[] = [];
    const boxes: LabelledBox[] = [];
    for (const record of records.filter((r) => r.image === image)) {
      const predicted = predictions[record.id];
      const answers = typeof predicted === 'string' ? [predicted] : (predicted ?? []);
      record.truth.forEach((truth, turn) => {
        const answer = answers[turn] ?? '';
        const question = (record.conversations[2 * turn]?.value ?? '').replace('<image>\n', '');
        const score = scoreOneTurn(truth, answer, record.imageSize, codec);
        turns.push({ kind: truth.kind, question, answer, truth: truth.answer, ...score });
        if (truth.kind !== 'grounding' || !truth.box) return;
        const label = `#${boxes.filter((b) => b.color === 'green').length + 1}`;
        boxes.push({ box: truth.box, label, color: 'green' });
        const box = codec.decode(answer, record.imageSize);
        if (box) boxes.push({ box, label, color: 'red' });
      });
    }
    const picture = join(opts.outDir, image.replace(/^.*\//, '').replace(/\.png$/, '-boxes.png'));
    await drawBoxes(join(opts.worldDir, image), boxes, picture);
    samples.push({ image, picture, turns });
  }
  return samples;
}
