import {
  type BackendStatus,
  checkBackend,
  initBackend,
  type NativeMatmulStatus,
  nativeMatmulStatus,
  probeBackends,
} from '@vistune/core';
import type { Command } from 'commander';
import { backendOption } from '../options.js';
import { CliError, color, printJson, table } from '../ui.js';

export function registerBackendsCommand(program: Command): void {
  program
    .command('backends')
    .description(
      'List tensor backends: which are available, which one is chosen, and how to get the missing ones',
    )
    .option('--check', 'run forward + backward of every op family on the chosen backend and report failures')
    .option('--json', 'print one JSON object')
    .addHelpText(
      'after',
      "\nOn wasm, float32 matMuls run on @vistune/native's SGEMM: its prebuilt addon (linux-x64, glibc) or the one compiled\nat install (VISTUNE_NATIVE=0 turns it off, VISTUNE_NATIVE_PATH names another .node file); the chosen and\nnative addon lines say which ran and why.\n\nExamples:\n  $ vistune backends\n  $ vistune --backend cpu backends --check\n  $ VISTUNE_BACKEND=wasm vistune backends --json",
    )
    .action(async (opts: { check?: boolean; json?: boolean }, cmd: Command) => {
      const statuses = await probeBackends();
      const chosen = await initBackend({ backend: backendOption(cmd), quiet: true });
      const checks = opts.check ? await checkBackend() : undefined;
      const failed = checks?.filter((c) => !c.ok) ?? [];
      if (opts.json) {
        printJson({ chosen, backends: statuses, nativeMatmul: nativeMatmulStatus(), check: checks });
      } else {
        process.stdout.write(`${formatStatuses(statuses, chosen.provider)}\n\n`);
        process.stdout.write(`chosen: ${color.bold(chosen.name)} (${chosen.provider}) — ${chosen.detail}\n`);
        process.stdout.write(`${formatNativeAddon(nativeMatmulStatus())}\n`);
        if (checks) {
          process.stdout.write(`\nop check on ${chosen.name}:\n`);
          const rows = [['op family', 'result', 'max rel diff vs cpu', 'ms']];
          for (const c of checks) {
            rows.push([
              c.family,
              c.ok ? color.green('ok') : color.red(`FAIL ${c.error ?? ''}`),
              c.maxRelDiffVsCpu === undefined ? '-' : c.maxRelDiffVsCpu.toExponential(1),
              c.ms.toFixed(1),
            ]);
          }
          process.stdout.write(`${table(rows)}\n`);
          process.stdout.write(`${checks.length - failed.length}/${checks.length} op families pass\n`);
        }
      }
      if (failed.length) {
        throw new CliError(
          `${failed.length} op families fail on ${chosen.name}: ${failed.map((f) => f.family).join(', ')}`,
        );
      }
    });
}

/**
 * Which native addon runs the matmuls ("prebuilt (linux-x64, glibc)", "compiled at install", VISTUNE_NATIVE_PATH)
 * and the files passed over on the way (a missing compiled addon is no news when a prebuilt one loaded); or none
 * and why.
 */
export function formatNativeAddon(status: NativeMatmulStatus): string {
  if (!status.addon) return `native addon: none (${status.reason ?? 'not loaded'})`;
  const lines = [`native addon: ${status.addon.label} — ${status.addon.path}`];
  for (const a of status.addonsPassedOver ?? [])
    if (!/^(not built|none shipped)/.test(a.error))
      lines.push(`  passed over ${a.label} (${a.path}): ${a.error}`);
  return lines.join('\n');
}

function formatStatuses(statuses: BackendStatus[], chosen: string): string {
  const rows = [['', 'provider', 'backend', 'status', 'how to get it']];
  for (const s of statuses) {
    rows.push([
      s.provider === chosen ? color.green('→') : ' ',
      s.provider,
      s.backend,
      s.available
        ? color.green(`available${s.detail ? ` (${s.detail})` : ''}`)
        : color.yellow(`missing: ${s.reason}`),
      s.available ? '' : s.howToGet,
    ]);
  }
  return table(rows);
}
