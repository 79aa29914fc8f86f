// Held-out evaluation of a world model: every assistant turn of every record is answered by greedy decoding
// from the conversation before it (earlier turns carry the reference answers, as LLaVA's multi-turn
// evaluation does), in left-padded batches of prompts that need similar answer lengths.
import {
  type ChatMessage,
  expandPlaceholders,
  type MultimodalModel,
  type Tokenizer,
  tf,
} from '@vistune/core';
import type { TurnKind, WorldPredictions, WorldRecord } from '@vistune/demo-world';

/** One assistant turn to answer: the prompt ids (image placeholders expanded) and where the answer goes. */
export interface EvalPrompt {
  recordId: string;
  turn: number;
  kind: TurnKind;
  /** Image path as written in the record (relative to the split file's folder). */
  image: string;
  ids: number[];
  /** Tokens generated at most for this turn. */
  maxNewTokens: number;
}

/** Longest answer a kind can need, in world tokens, plus the end token: boxes are `[x1,y1,x2,y2]`, nine tokens. */
const ANSWER_TOKENS: Readonly<Record<TurnKind, number>> = {
  vqa_color: 4,
  vqa_shape: 4,
  vqa_size: 4,
  vqa_count: 4,
  vqa_position: 4,
  vqa_relation: 4,
  vqa_exist: 4,
  grounding: 12,
  region_caption: 6,
  description: 96,
  segmentation: 16,
};

/** The chat messages before assistant turn `turn` of a record: its user turns and the reference answers. */
export function messagesBeforeTurn(record: WorldRecord, turn: number): ChatMessage[] {
  const messages: ChatMessage[] = [];
  for (let j = 0; j <= turn; j++) {
    const question = record.conversations[2 * j]?.value ?? '';
    const text = question.replace('<image>\n', '');
    messages.push({
      role: 'user',
      content: question.includes('<image>') ? [{ type: 'image' }, { type: 'text', text }] : text,
    });
    if (j < turn) messages.push({ role: 'assistant', content: record.conversations[2 * j + 1]?.value ?? '' });
  }
  return messages;
}

/** Prompts for every assistant turn of `records`, rendered with the tokenizer's chat template (what `vistune generate` sends). */
export function evalPrompts(
  records: readonly WorldRecord[],
  tokenizer: Tokenizer,
  image: { tokenId: number; slots: number },
): EvalPrompt[] {
  return records.flatMap((record) =>
    record.truth.map((truth, turn) => {
      const text = tokenizer.applyChatTemplate(messagesBeforeTurn(record, turn), {
        addGenerationPrompt: true,
      });
      const ids = tokenizer.encode(text);
      const placeholders = ids.filter((id) => id === image.tokenId).length;
      if (placeholders !== 1)
        throw new Error(
          `evalPrompts: record ${record.id} turn ${turn} renders ${placeholders} image tokens, expected 1: the chat template or the record's <image> marker is off`,
        );
      return {
        recordId: record.id,
        turn,
        kind: truth.kind,
        image: record.image,
        ids: expandPlaceholders(ids, image.tokenId, [image.slots]),
        maxNewTokens: ANSWER_TOKENS[truth.kind],
      };
    }),
  );
}

/**
 * The prompts with each image swapped for the next distinct image of the list (the last gets the first): the
 * shuffled-media control. Prompts about one image all move to the same other image; the text stays as it was.
 */
export function shuffledMedia(prompts: readonly EvalPrompt[]): EvalPrompt[] {
  const images = [...new Set(prompts.map((p) => p.image))];
  if (images.length < 2) throw new Error('shuffledMedia: needs prompts about at least two images');
  const next = new Map(images.map((image, i) => [image, images[(i + 1) % images.length] as string]));
  return prompts.map((p) => ({ ...p, image: next.get(p.image) as string }));
}

export interface GenerateAnswersOptions {
  /** Decoded pixels of an image path of the records ([3, H, W]); the caller owns the cache, the tensor is disposed here. */
  loadImage: (image: string) => Promise<tf.Tensor3D>;
  tokenizer: Tokenizer;
  /** Prompts decoded together (default 64). */
  batchSize?: number;
  /** Called after each batch with the answered and the total prompt counts. */
  onProgress?: (done: number, total: number) => void;
}

/** Greedy answers to `prompts`, keyed as scoreWorldPredictions expects (one text per assistant turn). */
export async function generateAnswers(
  model: MultimodalModel,
  prompts: readonly EvalPrompt[],
  opts: GenerateAnswersOptions,
): Promise<Record<string, string[]>> {
  const batchSize = opts.batchSize ?? 64;
  const pad = opts.tokenizer.padTokenId ?? 0;
  const eos = opts.tokenizer.eosTokenIds;
  // Batches of one answer length, longest prompts together: little padding, no wasted decode steps.
  const order = [...prompts].sort((a, b) => a.maxNewTokens - b.maxNewTokens || a.ids.length - b.ids.length);
  const answers: Record<string, string[]> = {};
  const wasTraining = model.training;
  model.eval();
  try {
    for (let start = 0; start < order.length; ) {
      const first = order[start] as EvalPrompt;
      let end = start;
      while (end < order.length && end - start < batchSize && order[end]?.maxNewTokens === first.maxNewTokens)
        end++;
      const batch = order.slice(start, end);
      const width = Math.max(...batch.map((p) => p.ids.length));
      const ids = tf.tensor2d(
        batch.map((p) => [...new Array<number>(width - p.ids.length).fill(pad), ...p.ids]),
        [batch.length, width],
        'int32',
      );
      const mask = tf.tensor2d(
        batch.map((p) => [...new Array<number>(width - p.ids.length).fill(0), ...p.ids.map(() => 1)]),
        [batch.length, width],
        'int32',
      );
      const images = await Promise.all(batch.map((p) => opts.loadImage(p.image)));
      try {
        const result = await model.generateAsync(
          ids,
          { image: images.map((image) => [image]) },
          { attentionMask: mask, maxNewTokens: first.maxNewTokens, eosTokenIds: eos, padTokenId: pad },
        );
        batch.forEach((p, row) => {
          const text = opts.tokenizer.decode(result.ids[row] ?? [], { skipSpecialTokens: true }).trim();
          const list = answers[p.recordId] ?? [];
          list[p.turn] = text;
          answers[p.recordId] = list;
        });
      } finally {
        tf.dispose([ids, mask, ...images]);
      }
      start = end;
      opts.onProgress?.(start, order.length);
    }
  } finally {
    if (wasTraining) model.train();
  }
  return answers;
}

/** Turns of `records` as one-turn records keyed `${id}#${turn}` with the turn's kind: per-question-kind scores. */
export function splitTurns(
  records: readonly WorldRecord[],
  predictions: WorldPredictions,
): { records: WorldRecord[]; predictions: Record<string, string> } {
  const turns: WorldRecord[] = [];
  const byTurn: Record<string, string> = {};
  for (const record of records) {
    const predicted = predictions[record.id];
    const list = typeof predicted === 'string' ? [predicted] : (predicted ?? []);
    record.truth.forEach((truth, turn) => {
      const id = `${record.id}#${turn}`;
      turns.push({
        ...record,
        id,
        kind: truth.kind,
        conversations: record.conversations.slice(2 * turn, 2 * turn + 2),
        truth: [truth],
      });
      const answer = list[turn];
      if (answer !== undefined) byTurn[id] = answer;
    });
  }
  return { records: turns, predictions: byTurn };
}
