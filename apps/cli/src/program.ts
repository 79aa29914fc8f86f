import { createRequire } from 'node:module';
import type { MediaKind } from '@vistune/core';
import { Command, Option } from 'commander';
import { registerBackendsCommand } from './commands/backends.js';
import { registerBenchCommand } from './commands/bench.js';
import { registerChatCommand } from './commands/chat.js';
import { registerDemoCommand } from './commands/demo.js';
import { registerEvalCommand } from './commands/eval.js';
import { registerGenerateCommand } from './commands/generate.js';
import { registerPretrainCommand } from './commands/pretrain.js';
import { registerParamsCommand } from './commands/params.js';
import { registerRegistryCommand } from './commands/registry.js';
import { registerServeCommand } from './commands/serve.js';
import { registerTokenizerCommand } from './commands/tokenizer.js';
import { registerTrainCommand } from './commands/train.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

/** The `vistune` command; `mediaKinds` (registered kinds, plugins included) get their own flags (--image …). */
export function buildProgram(mediaKinds: readonly MediaKind[] = []): Command {
  const program = new Command('vistune')
    .description(
      'Visual instruction tuning in TypeScript: encoder + adapter + LLM, tuned on instruction data',
    )
    .version(version)
    .addOption(
      new Option(
        '--backend <name>',
        'tensor backend (default: VISTUNE_BACKEND or the best available)',
      ).choices(['tensorflow', 'webgpu', 'wasm', 'cpu']),
    )
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ outputError: (str, write) => write(str) })
    .exitOverride((err) => {
      // commander's own exits (help, version) are successes; usage errors exit 2.
      if (err.exitCode === 0) process.exit(0);
      process.exit(2);
    });
  registerBackendsCommand(program);
  registerRegistryCommand(program);
  registerGenerateCommand(program, mediaKinds);
  registerChatCommand(program, mediaKinds);
  registerDemoCommand(program);
  registerTrainCommand(program);
  registerPretrainCommand(program);
  registerTokenizerCommand(program);
  registerParamsCommand(program);
  registerEvalCommand(program, mediaKinds);
  registerBenchCommand(program);
  registerServeCommand(program);
  return program;
}
