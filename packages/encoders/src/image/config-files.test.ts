// A processor's preprocessor_config.json that is missing or holds null: the error names the file and the fix
// (it was a bare ENOENT, or a TypeError on null).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRegistry } from '@vistune/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { register } from '../index.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vistune-preprocessor-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('processor config files', () => {
  it('a model folder without preprocessor_config.json names the file it looked for', async () => {
    const r = createRegistry();
    register(r);
    await expect(r.create('processor', { type: 'clip', pretrained: dir })).rejects.toThrow(
      `image processor config not found: ${join(dir, 'preprocessor_config.json')} (expected preprocessor_config.json or the model folder holding it)`,
    );
  });

  it('a preprocessor_config.json holding null is refused by name', async () => {
    const r = createRegistry();
    register(r);
    const path = join(dir, 'preprocessor_config.json');
    await writeFile(path, 'null');
    await expect(r.create('processor', { type: 'clip', pretrained: dir })).rejects.toThrow(
      `image processor config ${path} holds null, expected a JSON object`,
    );
  });
});
