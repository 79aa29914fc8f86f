import { BUILTIN_REGISTRY_KINDS } from '@vistune/core';
import type { Command } from 'commander';
import { loadedPlugins } from '../api/registry.js';
import { addPluginOption, commandRegistry } from '../options.js';
import { CliError, color, printJson, table } from '../ui.js';

export function registerRegistryCommand(program: Command): void {
  const cmd = program
    .command('registry')
    .description(
      'List every registered model family, media kind, encoder, adapter, LLM, head, codec, metric, task … with the package that added it',
    )
    .option('--kind <kind>', 'only entries of this kind (model, media, encoder, adapter, llm, …)');
  addPluginOption(cmd)
    .option('--json', 'print a JSON array')
    .addHelpText(
      'after',
      '\nExamples:\n  $ vistune registry\n  $ vistune registry --kind adapter\n  $ vistune registry --plugin ./my-plugin.mjs',
    )
    .action(async (opts: { kind?: string; json?: boolean }, command: Command) => {
      const registry = await commandRegistry(command);
      const kinds = [...new Set<string>([...BUILTIN_REGISTRY_KINDS, ...registry.kinds()])];
      if (opts.kind !== undefined && !kinds.includes(opts.kind))
        throw new CliError(`--kind: no kind '${opts.kind}' (kinds: ${kinds.join(', ')})`, 2);
      const entries = registry.list(opts.kind as Parameters<typeof registry.list>[0]);
      if (opts.json) return printJson(entries);
      const rows = [['kind', 'name', 'origin', 'about'].map((h) => color.bold(h))];
      for (const e of entries) rows.push([e.kind, color.cyan(e.name), color.dim(e.origin), e.about]);
      process.stdout.write(`${table(rows)}\n${entries.length} entries\n`);
      const plugins = loadedPlugins.get(registry) ?? [];
      for (const p of plugins) process.stdout.write(color.dim(`plugin ${p.origin}: ${p.resolved}\n`));
    });
}
