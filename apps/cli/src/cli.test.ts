import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const bin = new URL('../dist/bin.js', import.meta.url).pathname;
const run = promisify(execFile);

async function vistune(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args], {
      env: { ...process.env, NO_COLOR: '1' },
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('vistune CLI', () => {
  it('backends --json names the chosen backend and explains the missing ones', async () => {
    const r = await vistune('backends', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      chosen: { name: string };
      backends: { provider: string; available: boolean; howToGet: string }[];
    };
    expect(out.chosen.name).toBe('wasm');
    const gpu = out.backends.find((b) => b.provider === 'tfjs-node-gpu');
    expect(gpu?.available).toBe(false);
    expect(gpu?.howToGet).toMatch(/CUDA 11\.2.*cuDNN 8\.1/);
  });

  it('--backend cpu backends --check runs forward and backward of every op family', async () => {
    const r = await vistune('--backend', 'cpu', 'backends', '--check', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      chosen: { name: string };
      check: { family: string; ok: boolean }[];
    };
    expect(out.chosen.name).toBe('cpu');
    expect(out.check.length).toBeGreaterThan(8);
    expect(out.check.filter((c) => !c.ok)).toEqual([]);
  });

  it('registry lists built-in entries with their origin and loads a plugin file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vistune-plugin-'));
    const plugin = join(dir, 'plugin.mjs');
    // A third-party plugin imports zod itself; resolve the copy @vistune/core uses, as a package manager would.
    const coreRequire = createRequire(createRequire(import.meta.url).resolve('@vistune/core'));
    const zod = pathToFileURL(coreRequire.resolve('zod')).href;
    await writeFile(
      plugin,
      `import { z } from '${zod}';
      export function register(registry) {
        registry.add({ kind: 'metric', name: 'always_one', about: 'test metric', schema: z.object({}), create: () => () => 1 });
      }`,
    );
    const r = await vistune('registry', '--json', '--plugin', plugin);
    expect(r.code, r.stderr).toBe(0);
    const entries = JSON.parse(r.stdout) as { kind: string; name: string; origin: string }[];
    expect(entries).toContainEqual(
      expect.objectContaining({ kind: 'adapter', name: 'mlp2x_gelu', origin: '@vistune/adapters' }),
    );
    expect(entries).toContainEqual(
      expect.objectContaining({ kind: 'encoder', name: 'clip_vision', origin: '@vistune/encoders' }),
    );
    expect(entries).toContainEqual(
      expect.objectContaining({ kind: 'llm', name: 'llama', origin: '@vistune/core' }),
    );
    expect(entries).toContainEqual(
      expect.objectContaining({ kind: 'metric', name: 'always_one', origin: plugin }),
    );
  });

  it('exits 2 on a usage error and 1 with a clear message on a bad plugin', async () => {
    expect((await vistune('no-such-command')).code).toBe(2);
    const r = await vistune('registry', '--plugin', './does-not-exist.mjs');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/plugin file not found: .*does-not-exist\.mjs/);
  });
});
