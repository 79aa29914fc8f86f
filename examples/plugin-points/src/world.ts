#!/usr/bin/env node
// vistune-points-world --out DIR [--n 2000] [--seed 0] [--test-fraction 0.2] [--steps 400]
// Writes a point-cloud QA world and a recipe for `vistune train --config DIR/recipe.yaml`.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { generatePointsWorld } from './world/generate.js';

const USAGE =
  'usage: vistune-points-world --out DIR [--n 2000] [--seed 0] [--test-fraction 0.2] [--steps 400]';

function integer(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new Error(`--${name}: expected an integer ≥ 0, got "${value}"\n${USAGE}`);
  return n;
}

try {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      n: { type: 'string' },
      seed: { type: 'string' },
      'test-fraction': { type: 'string' },
      steps: { type: 'string' },
    },
  });
  if (!values.out) throw new Error(`--out: missing\n${USAGE}`);
  const testFraction = values['test-fraction'] === undefined ? 0.2 : Number(values['test-fraction']);
  if (!(testFraction > 0 && testFraction < 1))
    throw new Error(`--test-fraction: expected a number in (0, 1), got "${values['test-fraction']}"`);
  const summary = await generatePointsWorld({
    outDir: resolve(values.out),
    n: integer('n', values.n, 2000),
    seed: integer('seed', values.seed, 0),
    testFraction,
    steps: integer('steps', values.steps, 400),
  });
  console.log(
    `points world: ${summary.train} train + ${summary.test} test clouds, ${summary.vocabSize} tokens → ${summary.outDir}\n` +
      `train it: vistune train --config ${summary.recipe}`,
  );
} catch (err) {
  console.error((err as Error).message);
  process.exit(2);
}
