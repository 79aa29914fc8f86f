import { Command, Option } from 'commander';
import { registerBackendsCommand } from './commands/backends.js';
import { registerBenchCommand } from './commands/bench.js';
import { registerChatCommand } from './commands/chat.js';
import { registerDemoCommand } from './commands/demo.js';
import { registerEvalCommand } from './commands/eval.js';
import { registerGenerateCommand } from './commands/generate.js';
import { registerRegistryCommand } from './commands/registry.js';
import { registerTrainCommand } from './commands/train.js';

export function buildProgram(): Command {
  const program = new Command('vistune')
    .description(
      'Visual instruction tuning in TypeScript: encoder + adapter + LLM, tuned on instruction data',
    )
    .version('0.1.0')
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
  registerGenerateCommand(program);
  registerChatCommand(program);
  registerDemoCommand(program);
  registerTrainCommand(program);
  registerEvalCommand(program);
  registerBenchCommand(program);
  return program;
}

/** The global --backend option, for commands that run models. */
export function backendOption(cmd: Command): 'tensorflow' | 'webgpu' | 'wasm' | 'cpu' | undefined {
  return cmd.optsWithGlobals().backend;
}
