import { register as registerAdapters } from '@vistune/adapters';
import { createRegistry, loadPlugins, type Registry, register as registerCore } from '@vistune/core';
import { register as registerEncoders } from '@vistune/encoders';
import { register as registerGrounding } from '@vistune/tasks-grounding';

/** The built-in packages' entries, then any plugins (package names or paths, resolved from `from`). */
export async function builtinRegistry(plugins: string[] = [], from = process.cwd()): Promise<Registry> {
  const registry = createRegistry();
  registerCore(registry.withOrigin('@vistune/core'));
  registerEncoders(registry.withOrigin('@vistune/encoders'));
  registerAdapters(registry.withOrigin('@vistune/adapters'));
  registerGrounding(registry.withOrigin('@vistune/tasks-grounding'));
  if (plugins.length) await loadPlugins(registry, plugins, { from });
  return registry;
}
