#!/usr/bin/env node
// Packs every publishable package with `pnpm pack` (workspace:^ becomes ^x.y.z there), installs the tarballs
// with npm into an empty project outside the workspace, and runs what a user would: import `vistune`, run its
// bin, and generate from fixtures/tiny-llava-hf with `loadModel`, checking the greedy ids of a fixture case.
// Then the third-party task package examples/plugin-points, packed and installed beside them: its world
// generator, `npx vistune train` on a tiny recipe, `generate --points` and `eval --task points_qa`, with the
// plugin found by discovery alone (it is a dependency of the project with a "vistune.plugin" field).
// Needs built dist/ folders (`pnpm build`) and the npm registry for third-party dependencies.
//
//   node tools/pack-smoke.mjs [--keep] [--json]
//
// Prints one line per stage (or, with --json, one JSON report at the end) and exits non-zero at the first
// failing stage. VISTUNE_NATIVE_BUILD is set to 0 for the install unless set: compiling @vistune/native from
// source is its own package's concern and takes longer than the rest of the smoke test.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Every package that is published, in dependency order (the order only makes the log easier to read). */
export const PUBLISHED = [
  'packages/native',
  'packages/core',
  'packages/encoders',
  'packages/adapters',
  'packages/tasks-grounding',
  'packages/demo-world',
  'apps/cli',
];
/** Task packages installed beside them, as a user project would (private: packed, never published). */
export const PLUGINS = ['examples/plugin-points'];
const PACKED = [...PUBLISHED, ...PLUGINS];
const FIXTURE_DIR = join(ROOT, 'fixtures', 'tiny-llava-hf');
/** The fixture case the generate stage replays: one image, and a prompt with no characters a shell could mangle. */
const CASE_NAME = 'case2';
const NEW_TOKENS = 5;

const args = new Set(process.argv.slice(2));
const keep = args.has('--keep');
const asJson = args.has('--json');
const report = { ok: false, work: '', stages: [] };

function stage(name, detail) {
  report.stages.push({ name, ...detail });
  if (!asJson) console.log(`pack-smoke: ${name}${detail.note ? ` — ${detail.note}` : ''}`);
}

function fail(name, message) {
  report.stages.push({ name, error: message });
  report.error = `${name}: ${message}`;
  finish(1);
}

function finish(code) {
  report.ok = code === 0;
  if (!keep && report.work) rmSync(report.work, { recursive: true, force: true });
  if (asJson) console.log(JSON.stringify(report));
  else if (code !== 0) console.error(`pack-smoke: FAILED at ${report.error}`);
  process.exit(code);
}

/** Runs a command; the stage fails with the command's last output lines when it exits non-zero. */
function run(name, command, commandArgs, options = {}) {
  const result = spawnSync(command, commandArgs, { encoding: 'utf8', maxBuffer: 64 << 20, ...options });
  if (result.error) fail(name, `${command} could not start: ${result.error.message}`);
  if (result.status !== 0) {
    const output = `${result.stdout ?? ''}\n${result.stderr ?? ''}`.trim().split('\n').slice(-25).join('\n');
    fail(name, `${command} ${commandArgs.join(' ')} exited with ${result.status}:\n${output}`);
  }
  return result.stdout;
}

/** `pnpm` when it is on PATH, else the root's packageManager version through npx. */
function pnpmCommand() {
  const probe = spawnSync('pnpm', ['--version'], { encoding: 'utf8' });
  if (probe.status === 0) return ['pnpm'];
  const manager = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).packageManager ?? 'pnpm';
  return ['npx', '--yes', manager];
}

// 1. Every package is built: a tarball without dist/ would install and then fail at import.
for (const dir of PACKED) {
  const manifest = JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8'));
  const entry = manifest.main ?? manifest.bin?.[manifest.name];
  if (!entry || !existsSync(join(ROOT, dir, entry)))
    fail(
      'built',
      `${dir}/package.json points at ${entry ?? 'no main'}, which is missing: run \`pnpm build\` first`,
    );
}
stage('built', { note: `${PACKED.length} packages have their dist/` });

// 2. Pack each one; pnpm rewrites workspace:^ to the version range npm understands.
report.work = mkdtempSync(join(tmpdir(), 'vistune-pack-smoke-'));
const tarballs = join(report.work, 'tarballs');
const [pnpm, ...pnpmArgs] = pnpmCommand();
const filters = PACKED.flatMap((dir) => ['--filter', `./${dir}`]);
run('pack', pnpm, [...pnpmArgs, '-r', ...filters, 'pack', '--pack-destination', tarballs], { cwd: ROOT });
const packed = readdirSync(tarballs).filter((f) => f.endsWith('.tgz'));
if (packed.length !== PACKED.length)
  fail('pack', `expected ${PACKED.length} tarballs in ${tarballs}, found ${packed.join(', ') || 'none'}`);
for (const file of packed) {
  const listing = run(`inspect ${file}`, 'tar', ['-xzOf', join(tarballs, file), 'package/package.json']);
  const manifest = JSON.parse(listing);
  const sections = ['dependencies', 'optionalDependencies', 'peerDependencies'];
  const leaked = sections.flatMap((s) =>
    Object.entries(manifest[s] ?? {}).filter(([, range]) => /^(workspace|link|file):/.test(range)),
  );
  if (leaked.length)
    fail(
      'pack',
      `${file} still has workspace-only ranges: ${leaked.map(([n, r]) => `${n}@${r}`).join(', ')}`,
    );
  const files = run(`list ${file}`, 'tar', ['-tzf', join(tarballs, file)]).split('\n');
  for (const needed of ['package/LICENSE', 'package/README.md'])
    if (!files.includes(needed)) fail('pack', `${file} lacks ${needed.slice('package/'.length)}`);
}
stage('pack', { note: packed.join(', '), tarballs: packed });

// 3. An empty project outside the workspace installs the tarballs (third-party dependencies from the registry).
const project = join(report.work, 'project');
run('project', 'mkdir', ['-p', project]);
writeFileSync(
  join(project, 'package.json'),
  `${JSON.stringify({ name: 'vistune-pack-smoke', private: true, type: 'module' }, null, 2)}\n`,
);
const installEnv = { ...process.env };
installEnv.VISTUNE_NATIVE_BUILD ??= '0';
const started = Date.now();
run(
  'install',
  'npm',
  ['install', '--no-audit', '--no-fund', '--loglevel=error', ...packed.map((f) => join(tarballs, f))],
  { cwd: project, env: installEnv },
);
stage('install', {
  note: `npm install of ${packed.length} tarballs in ${Math.round((Date.now() - started) / 1000)} s`,
});

// 4. The bin runs.
const version = run('bin', join(project, 'node_modules', '.bin', 'vistune'), ['--version'], {
  cwd: project,
}).trim();
stage('bin', { note: `vistune --version → ${version}`, version });

// 5. The library imports, then generates from the fixture with the greedy ids of a PyTorch-reference case.
const fixtureCase = JSON.parse(readFileSync(join(FIXTURE_DIR, 'cases.json'), 'utf8')).cases.find(
  (c) => c.name === CASE_NAME,
);
if (fixtureCase?.images.length !== 1)
  fail('fixture', `${FIXTURE_DIR}/cases.json has no one-image case named ${CASE_NAME}`);
const expectedIds = fixtureCase.expected.greedy_ids.slice(0, NEW_TOKENS);
const imports = run('import', process.execPath, ['--input-type=module', '-e', exportsScript()], {
  cwd: project,
});
const exported = JSON.parse(imports.trim().split('\n').at(-1));
stage('import', { note: `vistune exports ${exported.join(', ')}`, exports: exported });
if (!exported.includes('loadModel')) fail('generate', 'the installed vistune does not export loadModel');

const smoke = join(project, 'smoke.mjs');
writeFileSync(
  smoke,
  generateScript(FIXTURE_DIR, join(FIXTURE_DIR, fixtureCase.images[0]), fixtureCase.question),
);
const generated = run('generate', process.execPath, [smoke], { cwd: project });
const out = JSON.parse(generated.trim().split('\n').at(-1));
if (JSON.stringify(out.ids) !== JSON.stringify(expectedIds))
  fail(
    'generate',
    `greedy ids ${JSON.stringify(out.ids)} differ from ${CASE_NAME}'s ${JSON.stringify(expectedIds)}`,
  );
stage('generate', {
  note: `${CASE_NAME}: ids ${JSON.stringify(out.ids)} match, text ${JSON.stringify(out.text)}`,
  ...out,
});

// 6. The installed task package through the installed CLI: nothing names the plugin on the command line.
const npxVistune = (name, args) =>
  run(name, 'npx', ['--no', '--', 'vistune', ...args], {
    cwd: project,
    env: { ...process.env, NO_COLOR: '1' },
  });
/** A --json command's report: its last stdout line. */
const npxVistuneJson = (name, args) =>
  JSON.parse(
    npxVistune(name, [...args, '--json'])
      .trim()
      .split('\n')
      .at(-1),
  );
const world = join(project, 'points-world');
run(
  'plugin world',
  'npx',
  ['--no', '--', 'vistune-points-world', '--out', world, '--n', '100', '--steps', '20'],
  {
    cwd: project,
  },
);
const listing = npxVistune('plugin registry', ['registry', '--kind', 'task']);
if (!/points_qa\s+vistune-plugin-points/.test(listing))
  fail('plugin registry', `vistune registry does not list points_qa from vistune-plugin-points:\n${listing}`);
stage('plugin registry', { note: 'discovered: points_qa (vistune-plugin-points)' });
const trained = npxVistuneJson('plugin train', ['train', '--config', join(world, 'recipe.yaml')]);
if (trained.status !== 'completed' || !trained.modelDir)
  fail('plugin train', `expected a completed run with a model, got ${JSON.stringify(trained)}`);
const savedPlugins = JSON.parse(readFileSync(join(trained.modelDir, 'config.json'), 'utf8')).vistune_plugins;
if (JSON.stringify(savedPlugins) !== '["vistune-plugin-points"]')
  fail(
    'plugin train',
    `config.json vistune_plugins is ${JSON.stringify(savedPlugins)}, not ["vistune-plugin-points"]`,
  );
stage('plugin train', {
  note: `${trained.step} steps, last loss ${trained.finalLoss.toFixed(4)}`,
  step: trained.step,
});
const ask = ['--model', trained.modelDir, '--max-new-tokens', '3'];
const cloud = join(world, 'points', 'test-00000.ply');
const answer = npxVistuneJson('plugin generate', [
  'generate',
  ...ask,
  '--points',
  cloud,
  '--prompt',
  'What shape is this?',
]);
if (!answer.ids?.length) fail('plugin generate', `no answer: ${JSON.stringify(answer)}`);
stage('plugin generate', {
  note: `--points test-00000.ply → ${JSON.stringify(answer.text)}`,
  text: answer.text,
});
const evaluated = npxVistuneJson('plugin eval', [
  'eval',
  ...ask,
  '--data',
  join(world, 'test.json'),
  '--task',
  'points_qa',
]);
const overall = evaluated.scores?.find((s) => s.kind === 'overall');
if (!overall?.metrics?.shape_accuracy || !overall.metrics.exact_match)
  fail(
    'plugin eval',
    `--task points_qa did not score shape_accuracy and exact_match: ${JSON.stringify(overall)}`,
  );
stage('plugin eval', {
  note: `${overall.n} answers, shape_accuracy ${overall.metrics.shape_accuracy.mean.toFixed(3)}, exact_match ${overall.metrics.exact_match.mean.toFixed(3)}`,
  metrics: Object.keys(overall.metrics),
});
finish(0);

/** What `vistune` exports, as a JSON array on the last line. */
function exportsScript() {
  return "const m = await import('vistune'); console.log(JSON.stringify(Object.keys(m).sort()));";
}

/** The user's script: loadModel on the fixture, one image, greedy decoding of NEW_TOKENS tokens. */
function generateScript(fixtureDir, imagePath, question) {
  return `import { loadModel } from 'vistune';
const vlm = await loadModel(${JSON.stringify(fixtureDir)});
const out = await vlm.generate({
  messages: [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: ${JSON.stringify(question)} }] }],
  media: { image: [${JSON.stringify(imagePath)}] },
  maxNewTokens: ${NEW_TOKENS},
});
console.log(JSON.stringify({ ids: out.ids, text: out.text }));
`;
}
