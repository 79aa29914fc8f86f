// `vistune demo`: the embedded demo (apps/cli/src/demo) with progress, the report and sample
// conversations on the terminal, or the metrics as JSON.
import { initBackend } from '@vistune/core';
import { formatWorldScores } from '@vistune/demo-world';
import { type Command, Option } from 'commander';
import {
  type DemoPlan,
  type DemoResult,
  type DemoSize,
  demoPlan,
  formatDemoHeadline,
  formatTowerSummary,
  runDemo,
} from '../demo/index.js';
import { addPluginOption, backendOption, commandRegistry, parsePositiveInt } from '../options.js';
import { CliError, color, type Progress, printJson, progress } from '../ui.js';

interface DemoFlags {
  out: string;
  seed: string;
  quick?: boolean;
  smoke?: boolean;
  workers?: number;
  json?: boolean;
  plan?: string;
}

/**
 * demoPlan(size) with a JSON object's fields over it (`--plan '{"instruct":{"lr":2e-3},"trainBudgetSeconds":null}'`);
 * stage and image objects merge field by field, and a null budget means none (a fixed step count).
 */
export function overridePlan(plan: DemoPlan, json: string): DemoPlan {
  let patch: unknown;
  try {
    patch = JSON.parse(json);
  } catch (err) {
    throw new CliError(`--plan must be a JSON object: ${(err as Error).message}`, 2);
  }
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch))
    throw new CliError('--plan must be a JSON object', 2);
  const merged: Record<string, unknown> = { ...plan };
  for (const [key, value] of Object.entries(patch)) {
    if (
      !(key in plan) &&
      !['kinds', 'boxFormat', 'mergeTurns', 'lengthGroupBatches', 'lengthBuckets'].includes(key)
    )
      throw new CliError(`--plan: unknown field "${key}"`, 2);
    const base = merged[key];
    merged[key] =
      key === 'trainBudgetSeconds' && value === null
        ? Number.POSITIVE_INFINITY
        : typeof base === 'object' &&
            base !== null &&
            typeof value === 'object' &&
            value !== null &&
            !Array.isArray(value)
          ? { ...base, ...value }
          : value;
  }
  return merged as unknown as DemoPlan;
}

/** The metrics --json prints: headline figures, per-kind rows, timings and where everything is. */
export function demoJson(result: DemoResult) {
  const m = result.metrics;
  return {
    size: result.plan.size,
    seed: result.seed,
    vqaExactMatch: m.vqaExactMatch,
    countAccuracy: m.countAccuracy,
    groundingAcc50: m.groundingAcc50,
    groundingMeanIou: m.groundingMeanIou,
    meetsTargets: m.meetsTargets,
    /** The same held-out prompts, each record given another record's image. */
    shuffledMedia: result.shuffled,
    perKind: m.perQuestionKind.filter((r) => r.kind !== 'overall'),
    overall: m.perQuestionKind.find((r) => r.kind === 'overall'),
    perRecordKind: m.perRecordKind.rows,
    evalTurns: result.evalTurns,
    calibration: result.calibration,
    budget: result.budget,
    tower: result.tower,
    losses: result.losses,
    parameters: result.parameters,
    imageTokens: result.imageTokens,
    seconds: result.seconds,
    modelDir: result.paths.model,
    paths: result.paths,
    samples: result.samples,
  };
}

function printReport(result: DemoResult): void {
  const write = (text: string) => process.stdout.write(`${text}\n`);
  const s = result.seconds;
  write('');
  write(color.bold('Held-out test split: accuracy per question kind (turns inside conversations included)'));
  write(
    formatWorldScores({
      rows: result.metrics.perQuestionKind.slice(0, -1),
      overall: result.metrics.perQuestionKind.at(-1) ?? result.metrics.perRecordKind.overall,
    }),
  );
  write('');
  write(formatDemoHeadline(result.metrics, result.shuffled));
  write('');
  const t = result.tower;
  write(
    `stage tower: ${t.steps} steps, loss ${t.firstLoss.toFixed(3)} → ${t.lastLoss.toFixed(3)}; ${formatTowerSummary(t.heldOut)}`,
  );
  const c = result.calibration;
  // With a time budget the trainer's own line below says what ran; the calibration only made the first plan.
  if (!result.budget && c.steps < c.plannedSteps)
    write(
      color.yellow(
        `ran ${c.steps} of ${c.plannedSteps} planned steps (a step took ~${(1000 * c.stepSeconds).toFixed(0)} ms here, over the time budget)`,
      ),
    );
  const b = result.budget;
  if (b)
    write(
      `time budget ${b.seconds.toFixed(0)} s: ${b.steps} steps in ${b.usedSeconds.toFixed(0)} s` +
        (b.replans > 0 ? `, re-planned ${b.replans}× as step times changed` : '') +
        (b.shortfall ? color.yellow(`; ${b.shortfall}`) : ''),
    );
  for (const l of result.losses)
    write(`stage ${l.stage}: ${l.steps} steps, loss ${l.first.toFixed(3)} → ${l.last.toFixed(3)}`);
  write(
    `time: world ${s.world.toFixed(0)} s, training ${s.train.toFixed(0)} s, evaluation ${s.eval.toFixed(0)} s, total ${s.total.toFixed(0)} s`,
  );
  write('');
  write(color.bold('Sample conversations (model answer, then the truth)'));
  for (const sample of result.samples) {
    write(color.dim(`${sample.image} → ${sample.picture} (true boxes green, predicted red)`));
    for (const t of sample.turns) {
      const mark = t.correct ? color.green('✓') : color.red('✗');
      const iou = t.iou === undefined ? '' : color.dim(` IoU ${t.iou.toFixed(2)}`);
      const exact = t.answer.trim() === t.truth;
      write(`  user:  ${t.question}`);
      write(
        `  model: ${t.answer || '(nothing)'} ${mark}${iou}${exact ? '' : color.dim(`   truth: ${t.truth}`)}`,
      );
    }
  }
  const image = result.samples[0] ? `${result.paths.out}/world/${result.samples[0].image}` : 'IMAGE.png';
  write('');
  write(color.bold('Talk to it'));
  write(
    `  vistune generate --model ${result.paths.model} --image ${image} --prompt "How many objects are there?"`,
  );
  write(`  vistune chat --model ${result.paths.model}      (then /image ${image})`);
  write(
    color.dim(
      `run folder ${result.paths.out}: world/, checkpoints/, model/, metrics.jsonl, loss.html, report.json, samples/`,
    ),
  );
}

export function registerDemoCommand(program: Command): void {
  const demo = program.command('demo');
  addPluginOption(demo)
    .description(
      'Build a tiny LLaVA from scratch, tune it on a generated world of shapes, evaluate it and talk to it (offline)',
    )
    .option('--out <dir>', 'run folder: world, checkpoints, model, metrics, loss curve, samples', 'runs/demo')
    .option('--seed <n>', 'seed of the worlds and the model', '7')
    .option('--quick', 'smaller world, fewer steps: under 3 minutes, learns less')
    .addOption(
      new Option(
        '--smoke',
        'a few steps on a handful of images: checks the wiring, learns nothing',
      ).hideHelp(),
    )
    .addOption(
      new Option(
        '--workers <n>',
        'model replicas training stages 1 and 2 side by side, one per core (default: 2 where there are 2 cores and batches of ≥ 32, as --quick has; else 1)',
      ).argParser(parsePositiveInt),
    )
    .option('--json', 'print the metrics as one JSON object (progress goes to stderr)')
    .addOption(
      new Option('--plan <json>', 'run sizes over the chosen plan, as JSON (experiments)').hideHelp(),
    )
    .addHelpText(
      'after',
      '\nExamples:\n  $ vistune demo --quick\n  $ vistune demo --out runs/demo && vistune chat --model runs/demo/model',
    )
    .action(async (flags: DemoFlags, cmd: Command) => {
      const seed = Number(flags.seed);
      if (!Number.isInteger(seed)) throw new CliError(`--seed must be an integer, got "${flags.seed}"`, 2);
      const size: DemoSize = flags.smoke ? 'tiny' : flags.quick ? 'quick' : 'default';
      const info = await initBackend({ backend: backendOption(cmd), quiet: true });
      const log = (line: string) => process.stderr.write(`${line}\n`);
      log(color.bold(`vistune demo (${size}) on ${info.name}: ${info.detail}`));
      let bar: Progress | undefined;
      const plan = flags.plan ? overridePlan(demoPlan(size), flags.plan) : demoPlan(size);
      const towerSteps = plan.tower.steps;
      const result = await runDemo(await commandRegistry(cmd), {
        out: flags.out,
        seed,
        size,
        plan,
        workers: flags.workers,
        onLog: log,
        onStageStart: (stage, steps) => {
          bar?.stop();
          log(color.bold(`stage ${stage}: ${steps} steps`));
          bar = progress(stage, steps, ['loss', 'tok_s']);
        },
        onTowerStep: (step, loss) => {
          bar?.update(step, { loss: loss.toFixed(3), tok_s: '-' });
          if (!process.stderr.isTTY && (step % 100 === 0 || step === towerSteps))
            log(`  tower ${step}/${towerSteps} loss ${loss.toFixed(3)}`);
        },
        onStep: (m) => {
          bar?.update(m.stageStep, { loss: m.loss.toFixed(3), tok_s: m.tokensPerSec.toFixed(0) });
          if (!process.stderr.isTTY && (m.stageStep % 50 === 0 || m.stageStep === m.stageSteps))
            log(
              `  ${m.stage} ${m.stageStep}/${m.stageSteps} loss ${m.loss.toFixed(3)} ${m.tokensPerSec.toFixed(0)} tok/s, ${m.eta.toFixed(0)} s left`,
            );
        },
        onEvalStart: (total) => {
          bar?.stop();
          bar = progress('eval', total);
        },
        onEvalProgress: (done) => bar?.update(done),
      });
      bar?.stop();
      if (flags.json) printJson(demoJson(result));
      else printReport(result);
    });
}
