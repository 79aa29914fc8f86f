// The gate of a third-party task package: the real `vistune` CLI trains, evaluates, generates and chats with
// this package's parts, with no change to core or the CLI. Commands run from the package folder, so the
// recipe's `plugins: [vistune-plugin-points]`, `--plugin vistune-plugin-points` and the saved model's
// `vistune_plugins` all resolve the package by its name (Node's package self-reference). Needs the built
// dist/ of this package and of apps/cli (turbo builds them before the tests).
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHAPES } from './shapes.js';
import type { PointsRecord } from './world/generate.js';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const bin = fileURLToPath(new URL('../../../apps/cli/dist/bin.js', import.meta.url));
const worldBin = join(packageDir, 'dist', 'world.js');
const run = promisify(execFile);
const env = { ...process.env, NO_COLOR: '1' };

/** Runs the vistune CLI from the package folder; resolves with stdout. */
async function vistune(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [bin, ...args], {
    cwd: packageDir,
    env,
    maxBuffer: 16 << 20,
  });
  return stdout;
}

interface EvalScores {
  scores: { kind: string; n: number; metrics: Record<string, { mean: number; n: number }> }[];
}

/** shape_accuracy over every answer it scored. */
const shapeAccuracy = (out: string) =>
  (JSON.parse(out) as EvalScores).scores.find((s) => s.kind === 'overall')?.metrics.shape_accuracy;

let work = '';
let world = '';
let modelDir = '';
let test: PointsRecord[] = [];

beforeAll(async () => {
  // Inside the package folder, so a bare `vistune-plugin-points` resolves from the recipe and the model.
  await mkdir(join(packageDir, '.work'), { recursive: true });
  work = await mkdtemp(join(packageDir, '.work', 'cli-'));
  world = join(work, 'world');
  await run(process.execPath, [worldBin, '--out', world, '--n', '600', '--steps', '200', '--seed', '1'], {
    env,
  });
  test = JSON.parse(await readFile(join(world, 'test.json'), 'utf8'));
  const started = Date.now();
  const summary = JSON.parse(await vistune('train', '--config', join(world, 'recipe.yaml'), '--json'));
  console.log(
    `vistune train: ${summary.step} steps, last loss ${summary.finalLoss.toFixed(4)}, ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  expect(summary).toMatchObject({ status: 'completed', step: 200 });
  modelDir = summary.modelDir;
}, 240_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('vistune-plugin-points through the vistune CLI', () => {
  it('saves a model that names the plugin, and eval --task points_qa answers from the points, not the prior', async () => {
    const config = JSON.parse(await readFile(join(modelDir, 'config.json'), 'utf8'));
    expect(config.vistune_plugins).toEqual(['vistune-plugin-points']);
    expect(config.modalities.points).toMatchObject({
      media: 'points',
      encoder: { type: 'point_mlp' },
      processor: { type: 'points' },
    });

    const real = shapeAccuracy(
      await vistune(
        'eval',
        '--model',
        modelDir,
        '--data',
        join(world, 'test.json'),
        '--task',
        'points_qa',
        '--max-new-tokens',
        '3',
        '--json',
      ),
    );
    // The same questions with each record's cloud swapped for the next record's: the shape word has to come
    // from the points, so accuracy falls to chance (1 in 5 shapes).
    const shuffled = test.map((r, i) => ({ ...r, points: test[(i + 1) % test.length].points }));
    await writeFile(join(world, 'test-shuffled.json'), JSON.stringify(shuffled));
    const swapped = shapeAccuracy(
      await vistune(
        'eval',
        '--model',
        modelDir,
        '--data',
        join(world, 'test-shuffled.json'),
        '--task',
        'points_qa',
        '--max-new-tokens',
        '3',
        '--json',
      ),
    );
    console.log(
      `shape_accuracy: ${real?.mean.toFixed(3)} on ${real?.n} test questions; ${swapped?.mean.toFixed(3)} with the clouds swapped between records (chance 0.2)`,
    );
    expect(real?.n).toBeGreaterThan(50);
    expect(real?.mean).toBeGreaterThan(0.6);
    expect(swapped?.mean).toBeLessThan(0.4);
  });

  it('generate answers with --media points=X.ply, and the same with --points X.ply once --plugin names the package', async () => {
    const record = test.find((r) => r.kind === 'shape') as PointsRecord;
    const ply = join(world, record.points);
    const prompt = ['--prompt', 'What shape is this?', '--max-new-tokens', '3', '--json'];
    const byKind = JSON.parse(
      await vistune('generate', '--model', modelDir, '--media', `points=${ply}`, ...prompt),
    );
    expect(SHAPES).toContain(byKind.text.trim());
    // --points exists only when the points kind is registered as the command line is parsed: --plugin does it.
    const byFlag = JSON.parse(
      await vistune(
        'generate',
        '--model',
        modelDir,
        '--plugin',
        'vistune-plugin-points',
        '--points',
        ply,
        ...prompt,
      ),
    );
    expect(byFlag.text).toBe(byKind.text);
    expect(byFlag.inputIds.filter((id: number) => id === 4)).toHaveLength(8);
    console.log(
      `vistune generate --points ${record.points}: "${byFlag.text.trim()}" (truth: ${record.shape})`,
    );
  });

  it('chat takes /attach X.ply on stdin and answers about it', async () => {
    const record = test.find((r) => r.kind === 'colour') as PointsRecord;
    const child = spawn(process.execPath, [bin, 'chat', '--model', modelDir, '--max-new-tokens', '3'], {
      cwd: packageDir,
      env,
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stdin.end(`/attach ${join(world, record.points)}\nWhat colour is this?\n/exit\n`);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(0);
    expect(out).toContain(`attached ${join(world, record.points)} (points)`);
    const answer = /assistant> (.*)/.exec(out)?.[1]?.trim();
    console.log(`vistune chat /attach ${record.points} → "${answer}" (truth: ${record.colour})`);
    expect(answer).toMatch(/^(red|green|blue|yellow|purple|white)$/);
  });
});
