// Command (not a test): generates a segmentation world, trains the LISA-style tiny recipe on it with core's
// Trainer through the LISA runner (text stages, head calibration), prints held-out gIoU / cIoU as JSON and
// saves the model (with its head) to <out>/model. `vistune train` trains lisa-train.yaml the generic way. Run from
// examples/grounding:
//   pnpm build && node dist/lisa-tiny.js --out /tmp/lisa-tiny \
//     [--recipe src/seg/recipes/lisa-tiny.yaml] [--steps N] [--train N] [--test N] [--no-generate]
//     [--kinds segmentation,grounding,…] [--questions N] [--answers labelled|lisa]
import { copyFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { register as registerAdapters } from '@vistune/adapters';
import { createRegistry, initBackend, loadRecipe, register as registerCore } from '@vistune/core';
import type { RecordKind, SegmentationAnswerStyle } from '@vistune/demo-world';
import { register as registerEncoders } from '@vistune/encoders';
import {
  evaluateSegmentation,
  prepareLisaRun,
  register as registerGrounding,
  trainLisa,
} from '@vistune/tasks-grounding';
import { copyRecipe, writeLisaWorld } from './world.js';

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
const world = await writeLisaWorld(out, {
  train: Number(values.train),
  test: Number(values.test),
  seed: Number(values.seed),
  kinds: (values.kinds as string).split(',') as RecordKind[],
  questionsPerImage: Number(values.questions),
  answers: values.answers as SegmentationAnswerStyle,
});
// The recipe's relative paths resolve next to the world: copy it (with a step override) into the run folder.
const recipe = await loadRecipe(
  await copyRecipe(recipeSource, out, {
    set: { steps: values.steps === undefined ? undefined : Number(values.steps) },
  }),
);

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
// A model folder with the head, in its family's layout (vistune generate --model <out>/model --image … prints
// and draws masks).
const modelDir = join(out, 'model');
await run.model.save(modelDir, { tokenizer: run.tokenizer });
await run.tokenizer.saveTo(modelDir);
await copyFile(join(out, 'preprocessor_config.json'), join(modelDir, 'preprocessor_config.json'));
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
