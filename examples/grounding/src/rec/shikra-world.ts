// Command (not a test): writes a run folder for recipes/shikra-tiny.yaml — a demo world of referring
// (`grounding`) and region-caption records whose boxes are re-encoded with the `shikra` codec, its tokenizer,
// the preprocessor config and the recipe (vocab_size set to the tokenizer's). Run from
// examples/grounding:
//   pnpm build && node dist/shikra-world.js --out /tmp/shikra [--train 3000] [--test 200] [--seed 1]
// Then `vistune train --config /tmp/shikra/shikra-tiny.yaml` (see the recipe's header for eval and scoring).
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  type BoxFormat,
  generateWorld,
  SPLITS,
  type WorldRecord,
  worldVocabulary,
  writeWorldTokenizer,
} from '@vistune/demo-world';
import { ImageTransform } from '@vistune/encoders';
import { type Box, ShikraCodec } from '@vistune/tasks-grounding';

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: '/tmp/shikra-tiny' },
    recipe: { type: 'string', default: 'src/rec/recipes/shikra-tiny.yaml' },
    train: { type: 'string', default: '3000' },
    test: { type: 'string', default: '200' },
    seed: { type: 'string', default: '1' },
    /** Records per image (kinds mixed). */
    questions: { type: 'string', default: '3' },
    /** Merge the train records of one image into one conversation (off: a region question then leaks the
     * box a later grounding turn asks for, and the model learns to copy instead of to look). */
    merge: { type: 'boolean', default: false },
    /** Objects per scene at most (1: localisation without reference resolution). */
    'max-objects': { type: 'string', default: '3' },
    /** Decimals per coordinate (Shikra: 3). 2 makes most coordinates one token of the world vocabulary. */
    decimals: { type: 'string', default: '2' },
  },
});
const out = resolve(values.out as string);
const recipe = resolve(values.recipe as string);
const world = join(out, 'world');
// The world's own decimal format is the shikra codec's text for square images; every answer and question box
// is rewritten below through the shikra codec anyway (and counted if it differed).
const decimals = Number(values.decimals);
const boxFormat: BoxFormat = { format: 'decimal', decimals };
await generateWorld({
  outDir: world,
  seed: Number(values.seed),
  counts: { train: Number(values.train), val: 0, test: Number(values.test) },
  imageSize: 64,
  // VQA about colour and shape gives the from-scratch tower an easy reason to be read early on.
  kinds: ['grounding', 'grounding', 'grounding', 'region_caption', 'vqa_color'],
  questionsPerImage: Number(values.questions),
  minObjects: 1,
  maxObjects: Number(values['max-objects']),
  boxFormat,
});
const codec = new ShikraCodec({ frame: 'square', decimals });
let rewritten = 0;
for (const split of SPLITS) {
  const file = join(world, `${split}.json`);
  const records = JSON.parse(await readFile(file, 'utf8')) as WorldRecord[];
  for (const record of records) {
    const transform = ImageTransform.identity(record.imageSize, record.imageSize);
    const gpt = record.conversations.filter((t) => t.from === 'gpt');
    record.truth.forEach((truth, n) => {
      if (!truth.box) return;
      const text = codec.encodeBox(truth.box as unknown as Box, transform);
      const turn = gpt[n];
      if (!turn)
        throw new Error(
          `${file}: record ${record.id} has ${gpt.length} gpt turns for ${record.truth.length} truths`,
        );
      if (truth.kind === 'grounding') {
        if (turn.value !== text) rewritten++;
        turn.value = text;
        truth.answer = text;
      } else {
        // region_caption: the box is in the question (the human turn just before).
        const human = record.conversations[record.conversations.indexOf(turn) - 1];
        if (!human) throw new Error(`${file}: record ${record.id}: no question before turn ${n}`);
        const boxText = /\[[^\]]*\]/.exec(human.value)?.[0];
        if (!boxText) throw new Error(`${file}: record ${record.id}: no box in "${human.value}"`);
        if (boxText !== text) rewritten++;
        human.value = human.value.replace(boxText, text);
      }
    });
  }
  // Merged: training sees each image once per multi-turn conversation (as the demo's samples); test stays one
  // question per record for the per-kind scores.
  const written = split === 'train' && values.merge ? mergeByImage(records) : records;
  await writeFile(file, `[\n${written.map((r) => JSON.stringify(r)).join(',\n')}\n]\n`);
}
const tokenizer = await writeWorldTokenizer(join(world, 'tokenizer'), worldVocabulary(boxFormat));
const yaml = (await readFile(recipe, 'utf8')).replace(
  /^(\s+vocab_size:) \d+.*$/m,
  `$1 ${tokenizer.vocabSize} # the world tokenizer`,
);
await mkdir(out, { recursive: true });
await writeFile(join(out, 'shikra-tiny.yaml'), yaml);
await copyFile(join(dirname(recipe), 'preprocessor_config.json'), join(out, 'preprocessor_config.json'));
console.log(
  JSON.stringify({
    out,
    vocabSize: tokenizer.vocabSize,
    boxesRewrittenByCodec: rewritten,
    script: fileURLToPath(import.meta.url),
  }),
);

/** The records of each image as one conversation: turns in order, `<image>` only in the first question. */
function mergeByImage(records: readonly WorldRecord[]): WorldRecord[] {
  const byImage = new Map<string, WorldRecord>();
  for (const r of records) {
    const merged = byImage.get(r.image);
    if (!merged) {
      byImage.set(r.image, { ...r, conversations: [...r.conversations], truth: [...r.truth] });
      continue;
    }
    merged.conversations.push(
      ...r.conversations.map((t) => ({ ...t, value: t.value.replace('<image>\n', '') })),
    );
    merged.truth.push(...r.truth);
    merged.kind = 'conversation';
  }
  return [...byImage.values()];
}
