// Shared by the train/ tests that run code outside vitest (a child process, a worker thread): Node cannot run
// TypeScript, so the code is bundled with esbuild into the package's node_modules/.cache, where its external
// imports (the package's dependencies) resolve as the package's own.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const packageDir = fileURLToPath(new URL('../../', import.meta.url));

/** The part of esbuild's API used here (esbuild is tsup's dependency, not the package's: no typings). */
interface EsbuildPlugin {
  name: string;
  setup(build: {
    onResolve(opts: { filter: RegExp }, cb: (args: { path: string }) => { external: true } | undefined): void;
  }): void;
}
interface Esbuild {
  build(options: Record<string, unknown> & { plugins: EsbuildPlugin[] }): Promise<unknown>;
}

/** Where a test's bundle goes: node_modules/.cache/<folder>/<file>. */
export function testBundlePath(folder: string, file: string): string {
  return join(packageDir, 'node_modules', '.cache', folder, file);
}

/**
 * Bundles a src file (`entry`, relative to the package) or inline TypeScript (`source`, resolved from src/train)
 * into the ESM file `outfile`, with the package's dependencies left external.
 */
export async function bundleForNode(
  outfile: string,
  code: { entry: string } | { source: string },
): Promise<void> {
  const require = createRequire(join(packageDir, 'package.json'));
  // esbuild comes with tsup, the repository's build tool.
  const esbuild = createRequire(require.resolve('tsup'))('esbuild') as Esbuild;
  const pkg = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as Record<string, object>;
  const deps = Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies, ...pkg.peerDependencies });
  // tfjs-core's gradient registrations must be bundled, as tsup.config.ts does for dist.
  const external = (path: string) =>
    !path.includes('register_all_gradients') && deps.some((d) => path === d || path.startsWith(`${d}/`));
  mkdirSync(dirname(outfile), { recursive: true });
  writeFileSync(join(dirname(outfile), 'package.json'), '{"type":"module"}\n');
  await esbuild.build({
    ...('entry' in code
      ? { entryPoints: [join(packageDir, code.entry)] }
      : { stdin: { contents: code.source, resolveDir: join(packageDir, 'src', 'train'), loader: 'ts' } }),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile,
    logLevel: 'warning',
    plugins: [
      {
        name: 'package-dependencies-external',
        setup: (build) => {
          build.onResolve({ filter: /^[^./]/ }, (args) =>
            external(args.path) ? { external: true } : undefined,
          );
        },
      },
    ],
  });
}
