// Command (not a test): generates a segmentation world, trains the LISA-style tiny recipe on it with core's
// Trainer, prints held-out gIoU / cIoU as JSON and saves the model (with its head) to <out>/model. Run from
// examples/grounding:
//   pnpm build && node dist/lisa-tiny.js --out /tmp/lisa-tiny \
//     [--recipe src/seg/recipes/lisa-tiny.yaml] [--steps N] [--train N] [--test N] [--no-generate]
//     [--kinds segmentation,grounding,…] [--questions N] [--answers labelled|lisa]
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { register as registerAdapters } from '@vistune/adapters';
import {
  createRegistry,
  initBackend,
  LlavaForConditionalGeneration,
  loadRecipe,
  register as registerCore,
  saveLlava,
} from '@vistune/core';
import {
  generateWorld,
  type RecordKind,
  type SegmentationAnswerStyle,
  worldVocabulary,
  writeWorldTokenizer,
} from '@vistune/demo-world';
import { register as registerEncoders } from '@vistune/encoders';
import {
  evaluateSegmentation,
  prepareLisaRun,
  register as registerGrounding,
  trainLisa,
} from '@vistune/tasks-grounding';

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: '/tmp/lisa-tiny' },
    recipe: { type: 'string', default: 'src/seg/recipes/lisa-tiny.yaml' },
    steps: { type: 'string' },
    train: { type: 'string', default: '2000' },
    test: { type: 'string', default: '200' },
    seed: { type: 'string', default: '1' },
    generate: { type: 'boolean', default: true },
    /** World record kinds (comma-separated; add e.g. grounding,vqa_color for a recipe with textStages). */
    kinds: { type: 'string', default: 'segmentation' },
    questions: { type: 'string', default: '1' },
    /** lisa ("Sure, [SEG].") or labelled ("Sure, [SEG] red circle."); the recipe's readOffset must match. */
    answers: { type: 'string', default: 'labelled' },
  },
  allowNegative: true,
});
const out = values.out as string;
const recipeSource = resolve(values.recipe as string);
const started = performance.now();

await initBackend({ backend: 'wasm' });
await mkdir(out, { recursive: true });
const world = join(out, 'world');
if (!existsSync(join(world, 'manifest.json'))) {
  await generateWorld({
    outDir: world,
    seed: Number(values.seed),
    counts: { train: Number(values.train), val: 0, test: Number(values.test) },
    imageSize: 64,
    kinds: (values.kinds as string).split(',') as RecordKind[],
    questionsPerImage: Number(values.questions),
    segmentationAnswers: values.answers as SegmentationAnswerStyle,
  });
  await writeWorldTokenizer(join(world, 'tokenizer'), worldVocabulary(undefined, { segmentation: true }));
}
// The recipe's relative paths resolve next to the world: copy it (with a step override) into the run folder.
let yaml = await readFile(recipeSource, 'utf8');
if (values.steps) yaml = yaml.replace(/^(\s+steps:) \d+/gm, `$1 ${values.steps}`);
await writeFile(join(out, 'lisa-tiny.yaml'), yaml);
await copyFile(
  join(dirname(recipeSource), 'preprocessor_config.json'),
  join(out, 'preprocessor_config.json'),
);
const recipe = await loadRecipe(join(out, 'lisa-tiny.yaml'));

const registry = createRegistry();
registerCore(registry);
registerEncoders(registry);
registerAdapters(registry);
registerGrounding(registry);
const run = await prepareLisaRun(recipe, registry);
const prepared = performance.now();
let last = 0;
const result = await trainLisa(recipe, run, {
  onStep: (m) => {
    if (m.step % 25 === 0 || m.step === 1)
      process.stderr.write(
        `${m.stage} step ${m.step}/${m.totalSteps} loss ${m.loss.toFixed(4)} (${m.stepSeconds.toFixed(2)} s)\n`,
      );
    last = m.loss;
  },
});
const trained = performance.now();
const test = await run.examples(join(world, 'test.json'));
const segTest = test.examples.filter((e) => e.masks.length > 0);
const scores = await evaluateSegmentation(run, segTest, { generate: values.generate as boolean });
const done = performance.now();
// A HF LLaVA folder with the head (vistune generate --model <out>/model --image … prints and draws masks).
const modelDir = join(out, 'model');
if (run.model instanceof LlavaForConditionalGeneration) {
  await saveLlava(run.model, modelDir);
  await run.tokenizer.saveTo(modelDir);
  await copyFile(join(out, 'preprocessor_config.json'), join(modelDir, 'preprocessor_config.json'));
}
console.log(
  JSON.stringify(
    {
      recipe: recipeSource,
      trainExamples: run.source.examples.length,
      trainSkipped: run.trainSkipped.length,
      testExamples: segTest.length,
      steps: result.step,
      modelDir,
      finalLoss: last,
      parameters: run.model.numParameters(),
      seconds: {
        prepare: (prepared - started) / 1000,
        train: (trained - prepared) / 1000,
        eval: (done - trained) / 1000,
      },
      scores,
    },
    null,
    2,
  ),
);
run.model.dispose();
