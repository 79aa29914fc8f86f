// Loading weights and files: an integer tensor for a float parameter and NaN/Inf weights are errors naming
// tensor and file (allowNonfinite / allowNonfiniteWeights lift the NaN check); a folder named
// model.safetensors, a config holding null, a file in the way of an output folder and a full disk give
// messages naming the file and the fix.
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { Module } from '../nn/module.js';
import {
  allowNonfiniteWeights,
  fsError,
  loadSafetensors,
  loadSafetensorsDir,
  readJsonFile,
  SafetensorsReader,
  saveSafetensors,
  writeAtomically,
} from './index.js';
import { rawSafetensors, withTempDir, writeBytes } from './test-utils.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** One float parameter `w` [2, 2]. */
class Tiny extends Module {
  readonly w = this.param('w', tf.zeros([2, 2]));
}

const bytesOf = (view: ArrayBufferView) => new Uint8Array(view.buffer, view.byteOffset, view.byteLength);

/** A safetensors file with one tensor 'w' [2, 2] of the given dtype and raw bytes. */
function oneTensor(dtype: string, data: Uint8Array): Uint8Array {
  return rawSafetensors({ w: { dtype, shape: [2, 2], data_offsets: [0, data.length] } }, data);
}

async function loadInto(model: Module, path: string, opts: { allowNonfinite?: boolean } = {}) {
  const weights = await loadSafetensors(path);
  try {
    return model.loadStateDict(weights, { source: path, ...opts });
  } finally {
    tf.dispose([...weights.values()]);
  }
}

describe('weight validation on load', () => {
  it.each([
    ['I16', bytesOf(new Int16Array([1, 2, 3, 4]))],
    ['I32', bytesOf(new Int32Array([1, 2, 3, 4]))],
    ['U8', new Uint8Array([1, 2, 3, 4])],
  ])('a float parameter stored as %s is an error naming tensor, file and dtype', async (dtype, data) => {
    await withTempDir(async (dir) => {
      const path = await writeBytes(join(dir, 'model.safetensors'), oneTensor(dtype, data));
      const model = new Tiny();
      await expect(loadInto(model, path)).rejects.toThrow(
        `w: tensor 'w' in ${path} is stored as ${dtype}, an integer type, but the parameter is float`,
      );
      expect(model.w.dataSync()).toEqual(new Float32Array(4)); // nothing copied
      model.dispose();
    });
  });

  it('NaN or Inf in the weights is an error naming tensor, file and index, unless allowed', async () => {
    await withTempDir(async (dir) => {
      const path = await writeBytes(
        join(dir, 'model.safetensors'),
        oneTensor('F32', bytesOf(new Float32Array([1, 2, Number.POSITIVE_INFINITY, Number.NaN]))),
      );
      const model = new Tiny();
      await expect(loadInto(model, path)).rejects.toThrow(
        new RegExp(
          `w: tensor 'w' in ${path} holds Infinity at flat index 2: the weights are corrupt.*allowNonfinite \\(--allow-nonfinite\\)`,
        ),
      );
      await loadInto(model, path, { allowNonfinite: true });
      expect(Array.from(model.w.dataSync())).toEqual([1, 2, Number.POSITIVE_INFINITY, Number.NaN]);
      model.dispose();
      // The scope form, for loaders that never pass Module options through (the CLI's --allow-nonfinite).
      const scoped = new Tiny();
      await allowNonfiniteWeights(() => loadInto(scoped, path));
      expect(scoped.w.dataSync()[3]).toBeNaN();
      await expect(loadInto(scoped, path)).rejects.toThrow(/holds Infinity/); // only inside the scope
      scoped.dispose();
    });
  });

  it('checks in-memory tensors too, naming the source', () => {
    const model = new Tiny();
    const bad = tf.tensor2d([0, Number.NaN, 0, 0], [2, 2]);
    expect(() => model.loadStateDict({ w: bad }, { source: 'resizeTokenEmbeddings' })).toThrow(
      'w: the tensor given in resizeTokenEmbeddings holds NaN at flat index 1',
    );
    const ints = tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32');
    expect(() => model.loadStateDict({ w: ints })).toThrow('stored as int32, an integer type');
    tf.dispose([bad, ints]);
    model.dispose();
  });
});

describe('file errors name the file and the fix', () => {
  it('a model.safetensors that is a folder', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'model.safetensors');
      await mkdir(path);
      await expect(loadSafetensorsDir(dir)).rejects.toThrow(
        `${path} is a folder, expected a safetensors file: remove or rename the folder`,
      );
      await expect(SafetensorsReader.open(path)).rejects.toThrow(
        `safetensors file ${path} is a folder, expected a file`,
      );
    });
  });

  it.each([
    ['null', 'null'],
    ['[]', 'an array'],
    ['7', 'a number'],
  ])('a config.json holding %s', async (text, held) => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'config.json');
      await writeFile(path, text);
      await expect(
        readJsonFile(path, 'model config', { hint: 'expected a Hugging Face model folder' }),
      ).rejects.toThrow(
        `model config ${path} holds ${held}, expected a JSON object: restore or re-export the file (expected a Hugging Face model folder)`,
      );
      expect(await readJsonFile(path, 'value', { anyValue: true })).toEqual(JSON.parse(text));
    });
  });

  it('an output path below a file (ENOTDIR) or equal to one (EEXIST)', async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, 'model');
      await writeFile(file, 'a file, not a folder');
      const w = tf.zeros([1]);
      await expect(saveSafetensors(join(file, 'sub', 'model.safetensors'), { w })).rejects.toThrow(
        `cannot create the output folder ${join(file, 'sub')}: a file is in the way (it or one of its parents is a file, ENOTDIR)`,
      );
      await expect(saveSafetensors(join(file, 'model.safetensors'), { w })).rejects.toThrow(
        /cannot create the output folder .*: a file is in the way \(it or one of its parents is a file, EEXIST\)/,
      );
      w.dispose();
    });
  });

  it('ENOSPC while writing names the file, says nothing was left half-written, and leaves no temp file', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'model.safetensors');
      const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      const error = await writeAtomically(path, async (file) => {
        await file.write(new Uint8Array(16));
        throw full;
      }).catch((e: unknown) => e);
      expect((error as Error).message).toBe(
        `cannot write (nothing was left half-written): no space left on the device holding ${path}: free disk space or write elsewhere (ENOSPC)`,
      );
      expect((error as Error).cause).toBe(full);
      expect(await readdir(dir)).toEqual([]);
      expect(fsError(new TypeError('x'), path, 'write')).toBeInstanceOf(TypeError); // not an fs error: unchanged
    });
  });
});
