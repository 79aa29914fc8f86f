// The points world: N clouds of one object each (shape, colour, size) as ASCII .ply, LLaVA-format records
// asking for the shape or the colour ("<points>\nWhat shape is this?" → "cube"), a train/test split, the
// word-level tokenizer and a recipe that trains a `model_type: vistune` composition from scratch on it.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { plyText } from '../ply.js';
import { COLOUR_NAMES, type ObjectSpec, SHAPES, SIZE_NAMES, sampleObject, seededRandom } from '../shapes.js';
import { QUESTIONS, type QuestionKind, worldTexts } from './questions.js';
import { POINTS_TOKEN_ID, writeTokenizer } from './tokenizer.js';

export interface PointsWorldOptions {
  outDir: string;
  /** Clouds (= records) in all. Default 2000. */
  n?: number;
  /** Fraction of them in test.json. Default 0.2. */
  testFraction?: number;
  seed?: number;
  /** Fraction of records asking for the shape (the rest ask for the colour). Default 0.75. */
  shapeFraction?: number;
  /** Points per file: uniform in [min, max]. Default [200, 500]. */
  pointsPerCloud?: readonly [number, number];
  /** Optimizer steps of the recipe's one stage. Default 400. */
  steps?: number;
}

export interface PointsRecord extends ObjectSpec {
  id: string;
  /** Path of the .ply, relative to the data file. */
  points: string;
  kind: QuestionKind;
  conversations: { from: 'human' | 'gpt'; value: string }[];
}

export interface PointsWorldSummary {
  outDir: string;
  train: number;
  test: number;
  vocabSize: number;
  recipe: string;
}

function pick<T>(items: readonly T[], rand: () => number): T {
  return items[Math.floor(rand() * items.length)] as T;
}

/** The recipe text: a tiny llama, the points modality with this package's parts, one stage training everything. */
export function recipeYaml(vocabSize: number, steps: number): string {
  return `# vistune train --config recipe.yaml — written by vistune-points-world (vistune-plugin-points).
# A composition from scratch: a tiny LLaMA reads K=8 point tokens (point_mlp → point_pool) spliced in at
# <points>; the task (points_qa) names the metrics vistune eval --task points_qa scores with.
# initializer_range and init_std 0.1 instead of HF's 0.02: at 0.02 a model this small learns the answers'
# prior, then sits ~250 steps at chance before it uses the points; at 0.1 it answers from them in ~100.
plugins: [vistune-plugin-points]
task: { type: points_qa }
model:
  tokenizer: ./tokenizer
  model_type: vistune
  llm:
    type: llama
    config: { vocab_size: ${vocabSize}, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 4, max_position_embeddings: 256, tie_word_embeddings: false, initializer_range: 0.1, bos_token_id: 1, eos_token_id: 2, pad_token_id: 3 }
  modalities:
    points:
      placeholder_token_id: ${POINTS_TOKEN_ID}
      encoder: { type: point_mlp, in_channels: 6, hidden_size: 64, num_layers: 3, groups: 8 }
      adapter: { type: point_pool, pool: 1, init_std: 0.1 }
      processor: { type: points, num_points: 128, colour: true }
data: { train: ./train.json, template: hf, maxLength: 64, batchSize: 16 }
stages:
  - { name: joint, train: ['*'], lr: 3.0e-3, steps: ${steps}, warmupSteps: 10, schedule: cosine, weightDecay: 0 }
optimizer: { type: adamw, clip: 1.0 }
checkpoint: { every: 0 }
seed: 0
output: ./run
`;
}

/** Writes points/, train.json, test.json, tokenizer/ and recipe.yaml under `outDir`. */
export async function generatePointsWorld(opts: PointsWorldOptions): Promise<PointsWorldSummary> {
  const n = opts.n ?? 2000;
  const testCount = Math.round(n * (opts.testFraction ?? 0.2));
  const [minPoints, maxPoints] = opts.pointsPerCloud ?? [200, 500];
  if (!(n >= 2 && testCount >= 1 && testCount < n))
    throw new Error(
      `points world: n=${n} with testFraction ${opts.testFraction ?? 0.2} leaves an empty split: raise --n`,
    );
  if (!(minPoints >= 1 && maxPoints >= minPoints))
    throw new Error(`points world: pointsPerCloud [${minPoints}, ${maxPoints}] must be 1 ≤ min ≤ max`);
  const rand = seededRandom(opts.seed ?? 0);
  await mkdir(join(opts.outDir, 'points'), { recursive: true });
  const splits: Record<'train' | 'test', PointsRecord[]> = { train: [], test: [] };
  for (let i = 0; i < n; i++) {
    const split = i < n - testCount ? 'train' : 'test';
    const id = `${split}-${String(splits[split].length).padStart(5, '0')}`;
    const spec: ObjectSpec = {
      shape: pick(SHAPES, rand),
      colour: pick(COLOUR_NAMES, rand),
      size: pick(SIZE_NAMES, rand),
    };
    const count = minPoints + Math.floor(rand() * (maxPoints - minPoints + 1));
    const file = `points/${id}.ply`;
    await writeFile(join(opts.outDir, file), plyText(sampleObject(spec, count, rand)));
    const kind: QuestionKind = rand() < (opts.shapeFraction ?? 0.75) ? 'shape' : 'colour';
    splits[split].push({
      id,
      points: file,
      kind,
      ...spec,
      conversations: [
        { from: 'human', value: `<points>\n${pick(QUESTIONS[kind], rand)}` },
        { from: 'gpt', value: kind === 'shape' ? spec.shape : spec.colour },
      ],
    });
  }
  for (const [split, records] of Object.entries(splits))
    await writeFile(join(opts.outDir, `${split}.json`), `${JSON.stringify(records, null, 1)}\n`);
  const tokenizer = await writeTokenizer(join(opts.outDir, 'tokenizer'), worldTexts());
  const recipe = join(opts.outDir, 'recipe.yaml');
  await writeFile(recipe, recipeYaml(tokenizer.vocabSize, opts.steps ?? 400));
  return {
    outDir: opts.outDir,
    train: splits.train.length,
    test: splits.test.length,
    vocabSize: tokenizer.vocabSize,
    recipe,
  };
}
