import type { Command } from 'commander';
import { builtinRegistry } from '../builtins.js';
import { color, printJson, table } from '../ui.js';

export function registerRegistryCommand(program: Command): void {
  program
    .command('registry')
    .description(
      'List every registered encoder, adapter, LLM, head, codec, template … with the package that added it',
    )
    .option('--kind <kind>', 'only entries of this kind (encoder, adapter, llm, …)')
    .option('--plugin <spec...>', 'load plugin packages or files first (each exports register(registry))')
    .option('--json', 'print a JSON array')
    .addHelpText(
      'after',
      '\nExamples:\n  $ vistune registry\n  $ vistune registry --kind adapter\n  $ vistune registry --plugin ./my-plugin.mjs',
    )
    .action(async (opts: { kind?: string; plugin?: string[]; json?: boolean }) => {
      const registry = await builtinRegistry(opts.plugin ?? []);
      const entries = registry.list(opts.kind as Parameters<typeof registry.list>[0]);
      if (opts.json) return printJson(entries);
      const rows = [['kind', 'name', 'origin', 'about'].map((h) => color.bold(h))];
      for (const e of entries) rows.push([e.kind, color.cyan(e.name), color.dim(e.origin), e.about]);
      process.stdout.write(`${table(rows)}\n${entries.length} entries\n`);
    });
}
