import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { withTempDir } from '../io/test-utils.js';
import { createRegistry, discoverPlugins, loadPlugins, type Registry } from './index.js';

interface TestWidget {
  width: number;
  label: string;
}

// The pattern other packages use to type their kind (here a test-only kind).
declare module './types.js' {
  interface RegistryKinds {
    'test.widget': TestWidget;
  }
}

const widgetSchema = z.object({ width: z.number().int().positive(), label: z.string().default('plain') });

function registryWithAdapters(): Registry {
  const registry = createRegistry();
  const adapters = registry.withOrigin('@vistune/adapters');
  // Schema declaring `type` itself, as @vistune/adapters' strict schemas do.
  adapters.add({
    kind: 'adapter',
    name: 'mlp',
    about: 'MLP projector',
    schema: z.strictObject({
      type: z.literal('mlp').default('mlp'),
      inDim: z.number(),
      outDim: z.number(),
      depth: z.number().int().min(1).default(2),
    }),
    create: (cfg) => ({ kind: 'mlp', ...cfg }),
  });
  adapters.add({
    kind: 'adapter',
    name: 'linear',
    about: 'one Linear',
    schema: z.object({ inDim: z.number(), outDim: z.number(), bias: z.boolean().default(true) }),
    create: (cfg) => ({ kind: 'linear', ...cfg }),
  });
  return registry;
}

describe('registry', () => {
  it('types create() by kind through RegistryKinds and types the factory config by its schema', async () => {
    const registry = createRegistry();
    registry.add({
      kind: 'test.widget',
      name: 'basic',
      about: 'a widget',
      schema: widgetSchema,
      create: (cfg) => {
        expectTypeOf(cfg).toEqualTypeOf<{ width: number; label: string }>();
        return { width: cfg.width, label: cfg.label };
      },
    });
    registry.add({
      kind: 'test.widget',
      name: 'wrong',
      about: 'produces the wrong type',
      schema: z.object({}),
      // @ts-expect-error a test.widget factory must produce a TestWidget
      create: () => 42,
    });
    // @ts-expect-error not a kind
    expect(() => registry.get('no-such-kind', 'x')).toThrow();

    const widget = await registry.create('test.widget', { type: 'basic', width: 3 });
    expectTypeOf(widget).toEqualTypeOf<TestWidget>();
    expect(widget).toEqual({ width: 3, label: 'plain' });
    expectTypeOf(registry.createSync('test.widget', { type: 'basic', width: 1 })).toEqualTypeOf<TestWidget>();
  });

  it('rejects duplicates, naming both origins', () => {
    const registry = registryWithAdapters();
    expect(() =>
      registry.withOrigin('my-plugin').add({
        kind: 'adapter',
        name: 'mlp',
        about: 'another',
        schema: z.object({}),
        create: () => ({}),
      }),
    ).toThrow(
      "registry: adapter 'mlp' is already registered by @vistune/adapters; my-plugin tried to register it again",
    );
    // The same name under another kind is fine.
    registry.add({ kind: 'head', name: 'mlp', about: 'x', schema: z.object({}), create: () => ({}) });
    expect(registry.has('head', 'mlp')).toBe(true);
  });

  it('lists available names (and a close match) for unknown names', () => {
    const registry = registryWithAdapters();
    expect(() => registry.get('adapter', 'mpl')).toThrow(
      "registry: no adapter named 'mpl'. Available: linear, mlp. Did you mean 'mlp'? components from other packages",
    );
    expect(() => registry.get('adapter', 'qformer')).toThrow(
      /Available: linear, mlp\. components from other packages/,
    );
    expect(() => registry.get('metric', 'bleu')).toThrow(
      "registry: no metric 'bleu': nothing of kind 'metric' is registered (kinds: backend, model, media, llm, encoder,",
    );
    expect(registry.has('adapter', 'mlp')).toBe(true);
    expect(registry.has('adapter', 'mpl')).toBe(false);
  });

  it('validates configs with config paths, fills defaults, strips or keeps `type` as the schema wants', async () => {
    const registry = registryWithAdapters();
    const path = 'model.modalities.image.adapter';
    expect(await registry.create('adapter', { type: 'mlp', inDim: 4, outDim: 8 })).toEqual({
      kind: 'mlp',
      type: 'mlp',
      inDim: 4,
      outDim: 8,
      depth: 2,
    });
    expect(registry.createSync('adapter', { type: 'linear', inDim: 4, outDim: 8 })).toEqual({
      kind: 'linear',
      inDim: 4,
      outDim: 8,
      bias: true,
    });
    await expect(
      registry.create('adapter', { type: 'mlp', inDim: 4, outDim: 'big' }, { path }),
    ).rejects.toThrow(
      "invalid adapter 'mlp' config:\n  model.modalities.image.adapter.outDim: expected number, received string",
    );
    // A plain z.object is made strict, so a typo is an error instead of a silently used default.
    expect(() =>
      registry.createSync('adapter', { type: 'linear', inDim: 4, outDim: 8, baias: false }, { path }),
    ).toThrow("model.modalities.image.adapter: unknown key 'baias'");
    expect(() => registry.createSync('adapter', { inDim: 4 }, { path })).toThrow(
      'invalid adapter config: model.modalities.image.adapter.type: missing adapter type (one of: linear, mlp)',
    );
    expect(() => registry.createSync('adapter', { type: 'mpl' }, { path })).toThrow(
      "invalid adapter config: model.modalities.image.adapter.type: no adapter named 'mpl'. Available: linear, mlp.",
    );
    expect(() => registry.createSync('adapter', 'mlp', { path })).toThrow(
      `invalid adapter config at ${path}: expected an object with a 'type' key, got "mlp"`,
    );
    expect(() => registry.createSync('adapter', { type: 'mlp', inDim: 1 })).toThrow(
      "invalid adapter 'mlp' config:\n  outDim: missing (expected number)",
    );
  });

  it('gives factories the registry and their path for nested components', async () => {
    const registry = registryWithAdapters();
    registry.add({
      kind: 'recipe',
      name: 'stage1',
      about: 'train the projector',
      schema: z.object({ adapter: z.object({ type: z.string() }).loose(), lr: z.number().default(1e-3) }),
      create: async (cfg, ctx) => ({
        lr: cfg.lr,
        adapter: await ctx.registry.create('adapter', cfg.adapter, { path: `${ctx.path}.adapter` }),
      }),
    });
    expect(
      await registry.create('recipe', { type: 'stage1', adapter: { type: 'linear', inDim: 2, outDim: 3 } }),
    ).toEqual({
      lr: 1e-3,
      adapter: { kind: 'linear', inDim: 2, outDim: 3, bias: true },
    });
    await expect(
      registry.create(
        'recipe',
        { type: 'stage1', adapter: { type: 'linear', inDim: 2 } },
        { path: 'recipe' },
      ),
    ).rejects.toThrow('recipe.adapter.outDim: missing (expected number)');
    expect(() => registry.createSync('recipe', { type: 'stage1', adapter: { type: 'linear' } })).toThrow(
      "registry: recipe 'stage1' ((app)) is created asynchronously: use registry.create",
    );
  });

  it('lists entries by kind order, then name, with their origins', () => {
    const registry = registryWithAdapters();
    registry.add({
      kind: 'llm',
      name: 'llama',
      about: 'LLaMA decoder',
      schema: z.object({}),
      create: () => ({}),
    });
    expect(registry.list().map((e) => `${e.kind}/${e.name} ${e.origin}`)).toEqual([
      'llm/llama (app)',
      'adapter/linear @vistune/adapters',
      'adapter/mlp @vistune/adapters',
    ]);
    expect(registry.list('adapter').map((e) => e.name)).toEqual(['linear', 'mlp']);
    expect(registry.list('metric')).toEqual([]);
  });
});

describe('plugins', () => {
  const zodPackageDir = dirname(createRequire(import.meta.url).resolve('zod/package.json'));
  const pluginSource = (name: string) => `
import { z } from 'zod';
export function register(registry) {
  registry.add({
    kind: 'metric',
    name: '${name}',
    about: 'exact match',
    schema: z.object({ ignoreCase: z.boolean().default(false) }),
    create: (cfg) => ({ score: (a, b) => (cfg.ignoreCase ? a.toLowerCase() === b.toLowerCase() : a === b) ? 1 : 0 }),
  });
}
`;

  it('loads a .mjs plugin file and an ESM-only package, recording their origins', async () => {
    await withTempDir(async (dir) => {
      // zod is linked in, as a project that installed it would have it.
      await mkdir(join(dir, 'node_modules'));
      await symlink(zodPackageDir, join(dir, 'node_modules', 'zod'), 'dir');
      await writeFile(join(dir, 'exact-match.mjs'), pluginSource('exact'));
      const pkgDir = join(dir, 'node_modules', '@acme', 'vistune-metrics');
      await mkdir(pkgDir, { recursive: true });
      await writeFile(
        join(pkgDir, 'package.json'),
        JSON.stringify({
          name: '@acme/vistune-metrics',
          type: 'module',
          exports: { '.': { import: './main.mjs' } },
        }),
      );
      // A default-exported plugin object.
      await writeFile(
        join(pkgDir, 'main.mjs'),
        `${pluginSource('exact2').replace('export function register', 'function register')}\nexport default { register };\n`,
      );

      const registry = createRegistry();
      const loaded = await loadPlugins(registry, ['./exact-match.mjs', '@acme/vistune-metrics'], {
        from: dir,
      });
      expect(loaded.map((p) => p.origin)).toEqual([join(dir, 'exact-match.mjs'), '@acme/vistune-metrics']);
      expect(loaded[1].resolved).toBe(join(pkgDir, 'main.mjs'));
      expect(registry.list('metric').map((e) => `${e.name} ${e.origin}`)).toEqual([
        `exact ${join(dir, 'exact-match.mjs')}`,
        'exact2 @acme/vistune-metrics',
      ]);
      const metric = (await registry.create('metric', { type: 'exact', ignoreCase: true })) as {
        score: (a: string, b: string) => number;
      };
      expect(metric.score('Cat', 'cat')).toBe(1);
      expect(() =>
        registry.createSync('metric', { type: 'exact2', ignoreCase: 'yes' }, { path: 'eval.metrics[0]' }),
      ).toThrow('eval.metrics[0].ignoreCase: expected boolean, received string');

      // Loading the same plugin twice collides with itself, and the error says so.
      await expect(loadPlugins(registry, ['./exact-match.mjs'], { from: dir })).rejects.toThrow(
        `plugin './exact-match.mjs' (${join(dir, 'exact-match.mjs')}) failed to register: registry: metric 'exact' is already registered`,
      );
    });
  });

  it('finds installed plugins by their package.json "vistune.plugin" field; a path to that entry records the package', async () => {
    await withTempDir(async (dir) => {
      await mkdir(join(dir, 'node_modules'));
      await symlink(zodPackageDir, join(dir, 'node_modules', 'zod'), 'dir');
      const pkgDir = join(dir, 'node_modules', 'vistune-plugin-demo');
      await mkdir(join(pkgDir, 'dist'), { recursive: true });
      await writeFile(
        join(pkgDir, 'package.json'),
        JSON.stringify({
          name: 'vistune-plugin-demo',
          type: 'module',
          main: './dist/index.mjs',
          vistune: { plugin: './dist/register.mjs' },
        }),
      );
      await writeFile(join(pkgDir, 'dist', 'index.mjs'), 'export const notThePlugin = true;\n');
      await writeFile(join(pkgDir, 'dist', 'register.mjs'), pluginSource('declared'));
      await mkdir(join(dir, 'node_modules', 'lodash-like'));
      await writeFile(
        join(dir, 'node_modules', 'lodash-like', 'package.json'),
        JSON.stringify({ name: 'lodash-like' }),
      );
      await writeFile(
        join(dir, 'package.json'),
        JSON.stringify({ dependencies: { 'vistune-plugin-demo': '^1.0.0', 'lodash-like': '^1.0.0' } }),
      );
      expect(await discoverPlugins(join(dir))).toEqual(['vistune-plugin-demo']);
      const byName = createRegistry();
      const [loaded] = await loadPlugins(byName, ['vistune-plugin-demo'], { from: dir });
      expect(loaded.resolved).toBe(join(pkgDir, 'dist', 'register.mjs'));
      const byPath = createRegistry();
      const [fromPath] = await loadPlugins(byPath, ['./node_modules/vistune-plugin-demo/dist/register.mjs'], {
        from: dir,
      });
      expect(fromPath.origin).toBe('vistune-plugin-demo');
      expect(byPath.list('metric').map((e) => e.origin)).toEqual(['vistune-plugin-demo']);
    });
  });

  it('explains plugins without register, missing files and missing packages', async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, 'nothing.mjs'), 'export const version = 1;\n');
      const registry = createRegistry();
      await expect(loadPlugins(registry, ['./nothing.mjs'], { from: dir })).rejects.toThrow(
        `plugin './nothing.mjs' (${join(dir, 'nothing.mjs')}) does not export a register(registry) function (it exports: version)`,
      );
      await expect(loadPlugins(registry, ['./absent.mjs'], { from: dir })).rejects.toThrow(
        `cannot load plugin './absent.mjs' (from ${dir}): plugin file not found: ${join(dir, 'absent.mjs')}`,
      );
      await expect(
        loadPlugins(registry, ['vistune-plugin-that-does-not-exist'], { from: dir }),
      ).rejects.toThrow(
        `cannot load plugin 'vistune-plugin-that-does-not-exist' (from ${dir}): cannot find package 'vistune-plugin-that-does-not-exist'`,
      );
    });
  });
});
