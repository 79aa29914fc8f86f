// Command (not a test): REC Acc@0.5 of `vistune eval --out` predictions against a split's box truth, with a
// registry codec (default shikra, frame square). Run from examples/grounding:
//   pnpm build && node dist/rec-score.js \
//     --data /tmp/shikra/world/test.json --predictions /tmp/shikra/preds.jsonl [--codec shikra] [--frame square]
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import {
  createLocationCodec,
  type RecPrediction,
  type RecTruthRecord,
  scoreRecPredictions,
} from '@vistune/tasks-grounding';

const { values } = parseArgs({
  options: {
    data: { type: 'string' },
    predictions: { type: 'string' },
    codec: { type: 'string', default: 'shikra' },
    frame: { type: 'string', default: 'square' },
  },
});
if (!values.data || !values.predictions)
  throw new Error(
    'rec-score: give --data <split.json> and --predictions <preds.jsonl> (from vistune eval --out)',
  );
const records = JSON.parse(await readFile(values.data, 'utf8')) as RecTruthRecord[];
const predictions = (await readFile(values.predictions, 'utf8'))
  .split('\n')
  .filter((line) => line.trim())
  .map((line) => JSON.parse(line) as RecPrediction);
const codec = createLocationCodec(values.codec as string, { frame: values.frame });
const score = scoreRecPredictions(records, predictions, codec);
console.log(
  JSON.stringify({ data: values.data, predictions: values.predictions, codec: values.codec, ...score }),
);
