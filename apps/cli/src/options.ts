// Options shared by commands, in one module so commands never import the program (no cycle). Numbers are
// parsed and checked by commander as the arguments are read: a bad value is a usage error (exit 2).
import type { BackendName, GenerateOptions, MediaKind, Registry } from '@vistune/core';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { createVistuneRegistry } from './api/registry.js';

/** The global --backend option, for commands that run models. */
export function backendOption(cmd: Command): BackendName | undefined {
  return cmd.optsWithGlobals<{ backend?: BackendName }>().backend;
}

function numberParser(check: (n: number) => boolean, what: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || !check(n))
      throw new InvalidArgumentError(`expected ${what}, got "${value}"`);
    return n;
  };
}

export const parsePositiveInt = numberParser((n) => Number.isInteger(n) && n > 0, 'a positive integer');
export const parseNonNegativeInt = numberParser((n) => Number.isInteger(n) && n >= 0, 'an integer ≥ 0');
export const parseNonNegative = numberParser((n) => n >= 0, 'a number ≥ 0');
export const parsePositive = numberParser((n) => n > 0, 'a number > 0');
export const parseProbability = numberParser((n) => n > 0 && n <= 1, 'a probability in (0, 1]');
export const parseFraction = numberParser((n) => n >= 0 && n <= 1, 'a fraction in [0, 1]');

/** Repeated `--plugin` values accumulate. */
function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `--plugin NAME|PATH` (repeatable) on every command that builds a registry. */
export function addPluginOption(cmd: Command): Command {
  return cmd.option(
    '--plugin <name|path>',
    'load a plugin package or file (exports register(registry)); repeatable. Installed packages with a "vistune.plugin" field load by themselves',
    collect,
  );
}

/** `--allow-nonfinite` on commands that load weights. */
export function addAllowNonfiniteOption(cmd: Command): Command {
  return cmd.option('--allow-nonfinite', 'load weights that hold NaN or Inf instead of refusing them');
}

/** `--lm-head <dtype>`: the LM head in float32 or weight-only int8 rows (loadModel's lmHead). */
export function addLmHeadOption(cmd: Command): Command {
  return cmd.addOption(
    new Option(
      '--lm-head <dtype>',
      'the LM head in float32 or weight-only int8 rows (one scale per row; faster decode)',
    )
      .choices(['float32', 'int8'])
      .default('float32'),
  );
}

/** The registry of a command: built-ins, discovered plugins and its --plugin values. */
export async function commandRegistry(cmd: Command, extra: readonly string[] = []): Promise<Registry> {
  const plugins = cmd.opts<{ plugin?: string[] }>().plugin ?? [];
  return createVistuneRegistry({ plugins: [...plugins, ...extra] });
}

export interface SamplingFlags {
  maxNewTokens: number;
  temperature: number;
  topP?: number;
  topK?: number;
  repetitionPenalty?: number;
  seed?: number;
  stop?: string[];
  eos: boolean;
}

/** Sampling flags shared by generate, chat and serve. */
export function addSamplingOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--max-new-tokens <n>', 'tokens to generate at most')
        .argParser(parsePositiveInt)
        .default(128),
    )
    .addOption(
      new Option('--temperature <t>', 'sampling temperature; 0 = greedy')
        .argParser(parseNonNegative)
        .default(0),
    )
    .addOption(
      new Option(
        '--top-p <p>',
        'nucleus sampling: keep the smallest set of tokens with probability ≥ p',
      ).argParser(parseProbability),
    )
    .addOption(new Option('--top-k <k>', 'sample among the k most likely tokens').argParser(parsePositiveInt))
    .addOption(
      new Option('--repetition-penalty <r>', 'HF repetition penalty (> 1 discourages repeats)').argParser(
        parsePositive,
      ),
    )
    .addOption(new Option('--seed <n>', 'random seed for sampling').argParser(parseNonNegativeInt))
    .option('--stop <text...>', 'stop when the output contains this text')
    .addOption(new Option('--no-eos', 'do not stop at the end-of-sequence token'));
}

/** Sampling flags → generate options; temperature 0 means greedy (top-p/top-k then have no effect). */
export function samplingOptions(flags: SamplingFlags): Omit<GenerateOptions, 'decode'> {
  const sample = flags.temperature > 0;
  return {
    maxNewTokens: flags.maxNewTokens,
    doSample: sample,
    temperature: sample ? flags.temperature : undefined,
    topP: flags.topP,
    topK: flags.topK,
    repetitionPenalty: flags.repetitionPenalty,
    seed: flags.seed,
    stopStrings: flags.stop,
    ...(flags.eos ? {} : { eosTokenIds: [] }),
  };
}

/** Media kinds the CLI offers flags for: the registry's (built-ins and plugins named on the command line). */
export async function mediaKindsFor(argv: readonly string[]): Promise<MediaKind[]> {
  const plugins: string[] = [];
  argv.forEach((arg, i) => {
    if (arg === '--plugin' && argv[i + 1]) plugins.push(argv[i + 1]);
    else if (arg.startsWith('--plugin=')) plugins.push(arg.slice('--plugin='.length));
  });
  try {
    const registry = await createVistuneRegistry({ plugins });
    return registry.list('media').map((e) => registry.createSync('media', { type: e.name }) as MediaKind);
  } catch {
    // The command reports the plugin error itself when it builds its registry.
    return [];
  }
}

/** `--<kind> PATH...` per media kind, plus `--media KIND=PATH` for any kind. */
export function addMediaOptions(
  cmd: Command,
  kinds: readonly MediaKind[],
  what = 'placed before the text',
): Command {
  for (const kind of kinds) {
    if (cmd.options.some((o) => o.long === `--${kind.name}`)) continue;
    cmd.option(`--${kind.name} <path...>`, `${kind.name} file(s) (${kind.extensions.join(' ')}), ${what}`);
  }
  return cmd.option(
    '--media <kind=path...>',
    'media of any registered kind (e.g. --media points=scan.ply); a bare PATH picks the kind by its extension',
  );
}

/** The media items of a command's flags, keyed by kind or (bare `--media PATH`) by file. */
export function mediaFromFlags(
  flags: Readonly<Record<string, unknown>>,
  kinds: readonly MediaKind[],
): { byKind: Record<string, string[]>; untyped: string[] } {
  const byKind: Record<string, string[]> = {};
  for (const kind of kinds) {
    const value = flags[kind.name];
    if (Array.isArray(value)) byKind[kind.name] = value.map(String);
  }
  const untyped: string[] = [];
  for (const spec of (flags.media as string[] | undefined) ?? []) {
    const eq = spec.indexOf('=');
    if (eq > 0 && !spec.slice(0, eq).includes('/')) {
      const kind = spec.slice(0, eq);
      byKind[kind] = [...(byKind[kind] ?? []), spec.slice(eq + 1)];
    } else untyped.push(spec);
  }
  return { byKind, untyped };
}
