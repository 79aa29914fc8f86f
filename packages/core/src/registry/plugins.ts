// Plugins: any module exporting `register(registry)`. Specifiers are package names (resolved from `from`, as
// if imported by a file in that folder) or paths (relative to `from`).
import { readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Registry } from './types.js';

export interface VistunePlugin {
  register(registry: Registry): void | Promise<void>;
}

export interface LoadedPlugin {
  specifier: string;
  /** Absolute path of the module that was imported. */
  resolved: string;
  /** Recorded as the origin of the entries it added: the package name, or the path for a file plugin. */
  origin: string;
}

function isPathSpecifier(spec: string): boolean {
  return (
    spec.startsWith('./') ||
    spec.startsWith('../') ||
    spec === '.' ||
    isAbsolute(spec) ||
    spec.startsWith('file:')
  );
}

/** `@scope/name/sub` → `@scope/name`; `name/sub` → `name`. */
function packageNameOf(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** The ESM entry named by package.json `exports` ('.' → import/node/default) or `module`/`main`. */
function esmEntry(pkg: Record<string, unknown>, subpath: string): string | null {
  const pick = (target: unknown): string | null => {
    if (typeof target === 'string') return target;
    if (Array.isArray(target)) return target.map(pick).find((t) => t !== null) ?? null;
    if (target && typeof target === 'object') {
      const conditions = target as Record<string, unknown>;
      for (const c of ['import', 'node', 'default']) if (c in conditions) return pick(conditions[c]);
    }
    return null;
  };
  const { exports } = pkg;
  if (exports !== undefined) {
    const isSubpathMap =
      typeof exports === 'object' && exports !== null && Object.keys(exports).some((k) => k.startsWith('.'));
    return pick(
      isSubpathMap ? (exports as Record<string, unknown>)[subpath] : subpath === '.' ? exports : undefined,
    );
  }
  if (subpath !== '.') return subpath;
  return typeof pkg.module === 'string' ? pkg.module : typeof pkg.main === 'string' ? pkg.main : 'index.js';
}

/** package.json `"vistune": { "plugin": "./dist/register.js" }`: the module whose register() the package offers. */
export function declaredPluginEntry(pkg: Record<string, unknown>): string | undefined {
  const field = pkg.vistune;
  if (typeof field !== 'object' || field === null) return undefined;
  const entry = (field as { plugin?: unknown }).plugin;
  return typeof entry === 'string' && entry.length > 0 ? entry : undefined;
}

/** The folder of an installed package, walking node_modules upward from `from`. */
export async function findPackageDir(name: string, from: string): Promise<string | null> {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    const pkgDir = join(dir, 'node_modules', name);
    if (await stat(join(pkgDir, 'package.json')).catch(() => null)) return pkgDir;
    if (dirname(dir) === dir) return null;
  }
}

/**
 * Plugins a project declares by installing them: dependencies of `from`'s package.json (or the nearest one above)
 * whose own package.json has a `vistune.plugin` field. Returns package names, in package.json order.
 */
export async function discoverPlugins(from: string): Promise<string[]> {
  let manifest: Record<string, unknown> | null = null;
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    const text = await readFile(join(dir, 'package.json'), 'utf8').catch(() => null);
    if (text !== null) {
      try {
        manifest = JSON.parse(text) as Record<string, unknown>;
      } catch {
        throw new Error(
          `${join(dir, 'package.json')} is not valid JSON: fix it, or run vistune from another folder`,
        );
      }
      from = dir;
      break;
    }
    if (dirname(dir) === dir) return [];
  }
  const names = ['dependencies', 'devDependencies', 'optionalDependencies'].flatMap((field) =>
    Object.keys((manifest?.[field] as Record<string, string> | undefined) ?? {}),
  );
  const found: string[] = [];
  for (const name of new Set(names)) {
    const dir = await findPackageDir(name, from);
    if (!dir) continue;
    const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
    if (declaredPluginEntry(pkg)) found.push(name);
  }
  return found;
}

/**
 * A package's `vistune.plugin` entry when it declares one; else require.resolve, which fails on ESM-only
 * packages (exports without a require/default condition), so then walk node_modules upward from `from` and
 * read the package's exports ourselves.
 */
async function resolveBare(spec: string, from: string): Promise<string> {
  if (spec === packageNameOf(spec)) {
    const dir = await findPackageDir(spec, from);
    const pkg = dir
      ? (JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as Record<string, unknown>)
      : null;
    const entry = pkg && declaredPluginEntry(pkg);
    if (dir && entry) return join(dir, entry);
  }
  try {
    return createRequire(join(from, '__vistune_plugin_resolver__.js')).resolve(spec);
  } catch {
    const name = packageNameOf(spec);
    const subpath = spec === name ? '.' : `.${spec.slice(name.length)}`;
    for (let dir = from; ; dir = dirname(dir)) {
      const pkgDir = join(dir, 'node_modules', name);
      const pkgJson = await readFile(join(pkgDir, 'package.json'), 'utf8').catch(() => null);
      if (pkgJson !== null) {
        const entry = esmEntry(JSON.parse(pkgJson) as Record<string, unknown>, subpath);
        if (entry) return join(pkgDir, entry);
        throw new Error(`package ${name} (${pkgDir}) does not export '${subpath}'`);
      }
      if (dirname(dir) === dir) break;
    }
    throw new Error(`cannot find package '${name}' from ${from} (is it installed? npm install ${name})`);
  }
}

/**
 * The package a plugin file is the declared entry of (nearest package.json whose `vistune.plugin` is this file),
 * so `--plugin ./node_modules/x/dist/register.js` and `--plugin x` record the same origin.
 */
async function packageDeclaring(file: string): Promise<string | null> {
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    const text = await readFile(join(dir, 'package.json'), 'utf8').catch(() => null);
    if (text !== null) {
      const pkg = JSON.parse(text) as Record<string, unknown>;
      const entry = declaredPluginEntry(pkg);
      return entry && typeof pkg.name === 'string' && resolve(dir, entry) === file ? pkg.name : null;
    }
    if (dirname(dir) === dir) return null;
  }
}

export async function resolvePlugin(
  spec: string,
  from: string,
): Promise<{ resolved: string; origin: string }> {
  if (!isPathSpecifier(spec)) return { resolved: await resolveBare(spec, from), origin: packageNameOf(spec) };
  const resolved = spec.startsWith('file:') ? fileURLToPath(spec) : resolve(from, spec);
  if (!(await stat(resolved).catch(() => null))?.isFile())
    throw new Error(`plugin file not found: ${resolved}`);
  return { resolved, origin: (await packageDeclaring(resolved).catch(() => null)) ?? resolved };
}

/** Import each plugin and call its `register` with a registry view that records the plugin as origin. */
export async function loadPlugins(
  registry: Registry,
  specifiers: string[],
  opts: { from?: string } = {},
): Promise<LoadedPlugin[]> {
  const from = resolve(opts.from ?? process.cwd());
  const loaded: LoadedPlugin[] = [];
  for (const specifier of specifiers) {
    let target: { resolved: string; origin: string };
    let mod: Record<string, unknown>;
    try {
      target = await resolvePlugin(specifier, from);
      mod = (await import(pathToFileURL(target.resolved).href)) as Record<string, unknown>;
    } catch (err) {
      throw new Error(`cannot load plugin '${specifier}' (from ${from}): ${(err as Error).message}`);
    }
    // `export function register` or `export default { register }` (called on its object, keeping `this`).
    const host = (typeof mod.register === 'function' ? mod : mod.default) as
      | Partial<VistunePlugin>
      | undefined;
    if (typeof host?.register !== 'function') {
      const exported = Object.keys(mod).join(', ') || 'nothing';
      throw new Error(
        `plugin '${specifier}' (${target.resolved}) does not export a register(registry) function (it exports: ${exported})`,
      );
    }
    try {
      await host.register(registry.withOrigin(target.origin));
    } catch (err) {
      throw new Error(
        `plugin '${specifier}' (${target.resolved}) failed to register: ${(err as Error).message}`,
      );
    }
    loaded.push({ specifier, ...target });
  }
  return loaded;
}
