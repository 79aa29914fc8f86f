import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Plugin } from 'esbuild';
import { defineConfig, type Options } from 'tsup';

// The browser build of a vistune library: src/browser.ts → dist/browser.js with no Node built-in left. Each
// `node:*` import becomes a module re-exporting @vistune/core's stand-ins (browser/node-shims.ts: the in-memory
// file system, POSIX paths …), names that have none throw "Node-only" when called; sharp and @vistune/native
// become modules that fail the same way, and @vistune/* imports point at their browser entries.

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? sourceFiles(join(dir, e.name))
      : e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')
        ? [join(dir, e.name)]
        : [],
  );
}

/** Names each module specifier is imported with across `srcDir` (static and destructured dynamic imports). */
function importedNames(srcDir: string): Map<string, Set<string>> {
  const names = new Map<string, Set<string>>();
  const add = (spec: string, list: string) => {
    const set = names.get(spec) ?? new Set<string>();
    for (const raw of list.split(',')) {
      const name = raw
        .trim()
        .replace(/^type\s+/, '')
        .split(/\s+as\s+/)[0]
        .trim();
      if (name && !raw.trim().startsWith('type ')) set.add(name);
    }
    names.set(spec, set);
  };
  for (const file of sourceFiles(srcDir)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/import\s+(?:type\s+)?\{([^}]*)\}\s+from\s+'([^']+)'/g)) add(m[2], m[1]);
    for (const m of text.matchAll(/const\s+\{([^}]*)\}\s*=\s*await\s+import\('([^']+)'\)/g)) add(m[2], m[1]);
  }
  return names;
}

function browserShims(
  srcDir: string,
  coreBrowser: string,
  aliases: Readonly<Record<string, string>>,
): Plugin {
  const names = importedNames(srcDir);
  return {
    name: 'vistune-browser-shims',
    setup(build) {
      for (const [spec, file] of Object.entries(aliases))
        build.onResolve({ filter: new RegExp(`^${spec.replace(/[/.]/g, '\\$&')}$`) }, () => ({
          path: resolve(srcDir, file),
        }));
      build.onResolve({ filter: /^node:/ }, (args) => ({ path: args.path, namespace: 'vistune-node' }));
      build.onResolve(
        { filter: /^(sharp|@vistune\/native|@tensorflow\/tfjs-node(-gpu)?|webgpu)$/ },
        (args) => ({
          path: args.path,
          namespace: 'vistune-node-only',
        }),
      );
      build.onResolve({ filter: /^@vistune\/(core|encoders|adapters)(\/browser)?$/ }, (args) => ({
        path: args.path.endsWith('/browser') ? args.path : `${args.path}/browser`,
        external: true,
      }));
      build.onLoad({ filter: /.*/, namespace: 'vistune-node' }, (args) => {
        const exported = [...(names.get(args.path) ?? [])].filter((n) => n !== 'default');
        const lines = [
          `import { nodeShims, nodeOnly } from ${JSON.stringify(coreBrowser)};`,
          `const shim = nodeShims[${JSON.stringify(args.path)}] ?? {};`,
          ...exported.map(
            (n) =>
              `export const ${n} = shim.${n} ?? nodeOnly(${JSON.stringify(args.path)}, ${JSON.stringify(n)});`,
          ),
          'export default shim;',
        ];
        return { contents: lines.join('\n'), loader: 'js', resolveDir: srcDir };
      });
      build.onLoad({ filter: /.*/, namespace: 'vistune-node-only' }, (args) => {
        const message = `${args.path} is Node-only: it is not part of vistune's browser build`;
        // sharp is imported statically (its calls fail); the others are dynamic imports that must reject.
        const failAtLoad = args.path !== 'sharp';
        return {
          contents: `const fail = () => { throw new Error(${JSON.stringify(message)}); };\n${failAtLoad ? 'fail();\n' : ''}export default fail;`,
          loader: 'js',
        };
      });
    },
  };
}

/**
 * tsup options of a package's browser entry; `core` is true for @vistune/core itself (it bundles the shims);
 * `aliases` maps a module to a browser implementation in the package's src (e.g. sharp → browser/sharp.ts).
 */
export function browserConfig(opts: { core?: boolean; aliases?: Record<string, string> } & Options = {}) {
  const { core, aliases = {}, ...extra } = opts;
  const packageDir = process.cwd(); // tsup runs in the package folder
  const srcDir = resolve(packageDir, 'src');
  const coreBrowser = core ? resolve(srcDir, 'browser/node-shims.ts') : '@vistune/core/browser';
  const globals = resolve(packageDir, core ? 'src/browser/globals.ts' : '../core/src/browser/globals.ts');
  return defineConfig({
    entry: { browser: 'src/browser.ts' },
    format: ['esm'],
    platform: 'browser',
    target: 'es2022',
    dts: { entry: { browser: 'src/browser.ts' } },
    sourcemap: true,
    clean: false,
    splitting: false,
    removeNodeProtocol: false, // our plugin must see the node: specifiers
    external: [/^@tensorflow\/tfjs-(core|backend-cpu|backend-wasm|backend-webgpu)(\/|$)/],
    // Not left to tsup's externals, so the plugin below resolves them (browser entries, shims).
    noExternal: [/register_all_gradients/, /^@vistune\//, /^sharp$/, /^webgpu$/],
    inject: [globals],
    esbuildPlugins: [browserShims(srcDir, coreBrowser, aliases)],
    ...extra,
  });
}
