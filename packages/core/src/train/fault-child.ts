// The training process of fault.test.ts (bundled and started by it, never imported by the package): the
// resume test's toy run (7 steps over two stages, a checkpoint every 2 steps, the newest 2 kept) into argv[2],
// fresh or ('resume') from the latest checkpoint. VISTUNE_TRAINER_FAULT makes it SIGKILL itself at a named point.
import { initBackend } from '../backend/index.js';
import { ToyBatchSource, tinyMultimodalModel, toyRecipe, toySamples } from './test-utils.js';
import { Trainer } from './trainer.js';

const [output, mode] = process.argv.slice(2);
await initBackend({ backend: 'wasm', native: false });
const recipe = toyRecipe(output, { checkpoint: { every: 2, keep: 2 } });
const model = tinyMultimodalModel(7);
const result = await new Trainer({
  model,
  recipe,
  data: (_stage, i) => new ToyBatchSource(toySamples(10), recipe.data.batchSize, 10 + i),
  onEvent: (e) => {
    if (e.type === 'warning') process.stderr.write(`warning: ${e.message}\n`);
  },
}).run(mode === 'resume' ? { resumeFrom: 'latest' } : {});
process.stdout.write(
  `${JSON.stringify({ status: result.status, step: result.step, checkpoint: result.checkpoint })}\n`,
);
