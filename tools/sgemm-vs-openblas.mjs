#!/usr/bin/env node
// The native SGEMM against OpenBLAS on this machine (issue 14: ≥ 90 % of OpenBLAS' best kernel), both single
// threaded, in interleaved rounds so a busy neighbour slows both sides alike. OpenBLAS is reached through
// Debian's python3-torch (a measuring stick, not a dependency), once per OPENBLAS_CORETYPE so its best kernel
// for this CPU is the one compared.
// usage: node tools/sgemm-vs-openblas.mjs [--python /usr/bin/python3] [--rounds 3] [--coretypes ,Haswell,Zen,SkylakeX]
// Needs `pnpm --filter @vistune/native build` first.
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { loadNativeKernels } from '../packages/native/dist/index.js';

const { values } = parseArgs({
  options: {
    python: { type: 'string', default: '/usr/bin/python3' },
    rounds: { type: 'string', default: '3' },
    coretypes: { type: 'string' },
  },
});
const kernels = loadNativeKernels();
if (!kernels) throw new Error('the native addon did not load: run pnpm --filter @vistune/native build');
const avx512 = kernels.isas.includes('avx512');
const coretypes = (values.coretypes ?? (avx512 ? ',Haswell,Zen,SkylakeX' : ',Haswell,Zen')).split(',');

// [m, n, k, transposeB]: squares, then the shapes a tiny/small LLaVA train step spends its time in.
const SHAPES = [
  [256, 256, 256, false],
  [512, 512, 512, false],
  [1024, 1024, 1024, false],
  [1024, 1024, 1024, true],
  [768, 768, 256, true],
  [768, 256, 768, false],
  [508, 32064, 256, true],
  [508, 256, 32064, false],
];
const label = ([m, n, k, t]) => `${m}×${n}×${k}${t ? ' (Bᵀ)' : ''}`;
const flops = ([m, n, k]) => 2 * m * n * k;
const reps = (s) => Math.max(3, Math.ceil(1.5e9 / flops(s)));

function native(shape) {
  const [m, n, k, transposeB] = shape;
  const a = Float32Array.from({ length: m * k }, () => Math.random() - 0.5);
  const b = Float32Array.from({ length: k * n }, () => Math.random() - 0.5);
  const c = new Float32Array(m * n);
  const run = () => kernels.sgemm({ a, b, c, m, n, k, transposeB });
  run();
  let best = Number.POSITIVE_INFINITY;
  for (let t = 0; t < 5; t++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < reps(shape); i++) run();
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9 / reps(shape));
  }
  return flops(shape) / best / 1e9;
}

const PY = `
import json, sys, time, torch
torch.set_num_threads(1)
out = []
for m, n, k, tb, reps in json.loads(sys.argv[1]):
    a = torch.randn(m, k); b = torch.randn(n, k) if tb else torch.randn(k, n)
    f = (lambda: a @ b.t()) if tb else (lambda: a @ b)
    f(); best = 1e9
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(reps): f()
        best = min(best, (time.perf_counter() - t) / reps)
    out.append(2 * m * n * k / best / 1e9)
print(json.dumps(out))
`;
function openblas(coretype) {
  const env = { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' };
  if (coretype) env.OPENBLAS_CORETYPE = coretype;
  else delete env.OPENBLAS_CORETYPE;
  const arg = JSON.stringify(SHAPES.map((s) => [...s, reps(s)]));
  return JSON.parse(execFileSync(values.python, ['-c', PY, arg], { env, encoding: 'utf8' }));
}

const rounds = Number(values.rounds);
const ours = SHAPES.map(() => []);
const theirs = new Map(coretypes.map((c) => [c, SHAPES.map(() => [])]));
for (let r = 0; r < rounds; r++) {
  process.stderr.write(`round ${r + 1}/${rounds}, load ${loadavg()[0].toFixed(2)}\n`);
  for (const [i, s] of SHAPES.entries()) ours[i].push(native(s));
  for (const c of coretypes) for (const [i, g] of openblas(c).entries()) theirs.get(c)[i].push(g);
}
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const head = [
  'shape',
  `native ${kernels.isa}`,
  ...coretypes.map((c) => `OpenBLAS ${c || 'default'}`),
  'native / best',
];
const rows = SHAPES.map((s, i) => {
  const mine = median(ours[i]);
  const others = coretypes.map((c) => median(theirs.get(c)[i]));
  const best = Math.max(...others);
  return [
    label(s),
    mine.toFixed(1),
    ...others.map((g) => g.toFixed(1)),
    `${((100 * mine) / best).toFixed(0)} %`,
  ];
});
console.log(`| ${head.join(' | ')} |\n|${head.map(() => '---').join('|')}|`);
for (const row of rows) console.log(`| ${row.join(' | ')} |`);
console.log(`GFLOP/s, one thread, medians of ${rounds} interleaved rounds (best of 5 timings each)`);
