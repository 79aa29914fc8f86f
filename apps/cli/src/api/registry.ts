// The registry every command and the high-level API start from: the built-in packages, the plugins a project
// declares by installing them (package.json `"vistune": { "plugin": … }`), then the ones named explicitly.
import { register as registerAdapters } from '@vistune/adapters';
import {
  createRegistry,
  discoverPlugins,
  type LoadedPlugin,
  loadPlugins,
  type Registry,
  register as registerCore,
} from '@vistune/core';
import { register as registerEncoders } from '@vistune/encoders';
import { register as registerGrounding } from '@vistune/tasks-grounding';

export interface RegistryOptions {
  /** Plugins to load after the built-ins: package names or paths (resolved from `from`). */
  plugins?: readonly string[];
  /** Where plugins resolve and where installed plugins are discovered (default: the working directory). */
  from?: string;
  /** Load the plugins declared by installed packages (default true; env VISTUNE_NO_DISCOVERY=1 turns it off). */
  discover?: boolean;
}

/** The plugins a registry was extended with, for `vistune registry` and saved models. */
export const loadedPlugins = new WeakMap<Registry, LoadedPlugin[]>();

/** A registry with the built-in packages' entries, the discovered plugins and `plugins`. */
export async function createVistuneRegistry(opts: RegistryOptions = {}): Promise<Registry> {
  const from = opts.from ?? process.cwd();
  const registry = createRegistry();
  registerCore(registry.withOrigin('@vistune/core'));
  registerEncoders(registry.withOrigin('@vistune/encoders'));
  registerAdapters(registry.withOrigin('@vistune/adapters'));
  registerGrounding(registry.withOrigin('@vistune/tasks-grounding'));
  const discover = (opts.discover ?? true) && process.env.VISTUNE_NO_DISCOVERY !== '1';
  const discovered = discover ? await discoverPlugins(from) : [];
  const wanted = [...new Set([...discovered, ...(opts.plugins ?? [])])];
  loadedPlugins.set(registry, wanted.length ? await loadPlugins(registry, wanted, { from }) : []);
  return registry;
}
