import { initBackend } from '@vistune/core';
import { formatWorldScores } from '@vistune/demo-world';
import { type Command, Option } from 'commander';
import { builtinRegistry } from '../builtins.js';
import { runDemo } from '../demo.js';
import { backendOption } from '../program.js';
import { color, type Progress, printJson, progress } from '../ui.js';

interface DemoFlags {
  out: string;
  seed: string;
  quick?: boolean;
  smoke?: boolean;
  json?: boolean;
}

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description(
      'Generate a world of shapes, build a tiny LLaVA from scratch, tune it on visual instructions, evaluate it and talk to it',
    )
    .option('--out <dir>', 'where the world, the run and the model go', 'runs/demo')
    .option('--seed <n>', 'seed of the world and the model', '7')
    .option('--quick', 'a smaller world and fewer steps (about 3 minutes)')
    .addOption(
      new Option(
        '--smoke',
        'a few steps on a handful of images: checks the wiring, learns nothing',
      ).hideHelp(),
    )
    .option('--json', 'print the metrics as one JSON object')
    .addHelpText(
      'after',
      '\nExamples:\n  $ vistune demo --quick\n  $ vistune demo --out runs/demo && vistune chat --model runs/demo/run/model',
    )
    .action(async (flags: DemoFlags, cmd: Command) => {
      const info = await initBackend({ backend: backendOption(cmd), quiet: true });
      const log = (line: string) => {
        if (!flags.json) process.stderr.write(`${line}\n`);
      };
      log(color.bold(`vistune demo${flags.quick ? ' --quick' : ''} on ${info.name} (${info.detail})`));
      let bar: Progress | undefined;
      const result = await runDemo(await builtinRegistry(), {
        out: flags.out,
        seed: Number(flags.seed),
        size: flags.smoke ? 'smoke' : flags.quick ? 'quick' : 'full',
        onLog: log,
        onStage: (name, steps) => {
          bar?.stop();
          log(color.bold(`stage ${name}: ${steps} steps`));
          bar = flags.json ? undefined : progress(name, steps, ['loss', 'tok_s']);
        },
        onStep: (m) => {
          bar?.update(m.stageStep, { loss: m.loss.toFixed(3), tok_s: m.tokensPerSec.toFixed(0) });
          if (!process.stderr.isTTY && m.stageStep % 50 === 0)
            log(
              `  ${m.stage} step ${m.stageStep}/${m.stageSteps} loss ${m.loss.toFixed(3)} ${m.tokensPerSec.toFixed(0)} tok/s`,
            );
        },
        onEval: (done, total) => {
          if (done === 1) {
            bar?.stop();
            bar = flags.json ? undefined : progress('eval', total);
          }
          bar?.update(done);
        },
      });
      bar?.stop();
      const s = result.scores;
      const metrics = {
        vqaExactMatch: vqaExactMatch(s),
        countAccuracy: s.rows.find((r) => r.kind === 'vqa_count')?.countAccuracy ?? null,
        groundingAcc50: s.rows.find((r) => r.kind === 'grounding')?.groundingAcc50 ?? null,
        perKind: s.rows,
        overall: s.overall,
        trainSeconds: result.trainSeconds,
        totalSeconds: result.totalSeconds,
        modelDir: result.modelDir,
      };
      if (flags.json) return printJson(metrics);
      const pct = (v: number | null) => (v === null ? '-' : `${(100 * v).toFixed(1)}%`);
      process.stdout.write(`\n${color.bold('held-out report')}\n${formatWorldScores(s)}\n\n`);
      process.stdout.write(
        `VQA exact match ${pct(metrics.vqaExactMatch)} · counting ${pct(metrics.countAccuracy)} · grounding Acc@0.5 ${pct(metrics.groundingAcc50)}\n`,
      );
      process.stdout.write(
        `trained in ${result.trainSeconds.toFixed(0)} s, whole demo ${result.totalSeconds.toFixed(0)} s\n\n`,
      );
      process.stdout.write(`${color.bold('sample conversations')}\n`);
      for (const c of result.samples) {
        process.stdout.write(
          `${color.dim(c.image)}\n  user: ${c.question}\n  model: ${c.answer || '(nothing)'}   ${color.dim(`truth: ${c.truth}`)}\n`,
        );
      }
      process.stdout.write(
        `\ntalk to it: vistune chat --model ${result.modelDir} --image ${result.samples[0]?.image ?? 'IMG'}\n`,
      );
    });
}

/** Exact match over the short-answer VQA kinds (colour, shape, size, count, position, relation, existence). */
function vqaExactMatch(s: { rows: { kind: string; turns: number; exactMatch: number }[] }): number | null {
  const vqa = s.rows.filter((r) => r.kind.startsWith('vqa_'));
  const turns = vqa.reduce((n, r) => n + r.turns, 0);
  return turns ? vqa.reduce((n, r) => n + r.exactMatch * r.turns, 0) / turns : null;
}
