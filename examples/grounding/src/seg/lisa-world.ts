// Command (not a test): prepares a `vistune train` run folder for LISA-style segmentation: the generated world
// in <out>/world and a recipe (default lisa-train.yaml) copied next to it. Prints the commands to run. From
// examples/grounding:
//   pnpm build && node dist/lisa-world.js --out /tmp/lisa-train [--recipe src/seg/recipes/lisa-train.yaml] \
//     [--steps N] [--train N] [--test N] [--seed N]
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { copyRecipe, writeLisaWorld } from './world.js';

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: '/tmp/lisa-train' },
    recipe: { type: 'string', default: 'src/seg/recipes/lisa-train.yaml' },
    steps: { type: 'string' },
    train: { type: 'string', default: '2000' },
    test: { type: 'string', default: '200' },
    seed: { type: 'string', default: '1' },
  },
});
const out = resolve(values.out as string);
const world = await writeLisaWorld(out, {
  train: Number(values.train),
  test: Number(values.test),
  seed: Number(values.seed),
});
const recipe = await copyRecipe(resolve(values.recipe as string), out, {
  set: { steps: values.steps === undefined ? undefined : Number(values.steps) },
});
console.log(
  JSON.stringify(
    {
      world,
      recipe,
      train: `vistune train --config ${recipe}`,
      generate: `vistune generate --model ${join(out, 'run', 'model')} --image ${join(world, 'images', 'test-00000.png')} --prompt "Segment the red circle." --json`,
    },
    null,
    2,
  ),
);
