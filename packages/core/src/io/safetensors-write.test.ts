import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  loadSafetensors,
  loadSafetensorsDir,
  readJsonFile,
  readSafetensorsHeader,
  resolveWeightFiles,
  saveSafetensors,
  saveShardedSafetensors,
} from './index.js';
import { withTempDir } from './test-utils.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const disposeAll = (m: Map<string, tf.Tensor>) => {
  for (const t of m.values()) t.dispose();
};

describe('saveSafetensors', () => {
  it('matches the reference serialization test vector byte for byte', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'golden.safetensors');
      const t = tf.tensor([0, 1, 2, 3, 4, 5], [1, 2, 3], 'float32');
      await saveSafetensors(path, { 'attn.0': t }, { metadata: {} });
      t.dispose();
      const json = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
      const expected = Buffer.concat([
        Buffer.from([64, 0, 0, 0, 0, 0, 0, 0]),
        Buffer.from(json),
        Buffer.from(new Float32Array([0, 1, 2, 3, 4, 5]).buffer),
      ]);
      expect(json.length).toBe(64);
      expect(await readFile(path)).toEqual(expected);
    });
  });

  it('writes the empty file as the reference does: {} padded to 8 bytes', async () => {
    await withTempDir(async (dir) => {
      await saveSafetensors(join(dir, 'empty.safetensors'), {}, { metadata: {} });
      const bytes = await readFile(join(dir, 'empty.safetensors'));
      expect([...bytes]).toEqual([8, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d, 32, 32, 32, 32, 32, 32]);
    });
  });

  it('round-trips float32 (F32/F16/BF16), int32 and bool; deterministic, aligned layout', async () => {
    const make = () =>
      new Map<string, tf.Tensor>([
        ['z.mask', tf.tensor([true, false, true], [3], 'bool')],
        [
          'b.ids',
          tf.tensor(
            [
              [-5, 2147483647],
              [-2147483648, 0],
            ],
            [2, 2],
            'int32',
          ),
        ],
        ['a.weight', tf.tensor([1, -2, 0.5, 65504, 2 ** -24, 1 + 2 ** -11], [2, 3], 'float32')],
        ['0', tf.scalar(3.25)],
      ]);
    await withTempDir(async (dir) => {
      const tensors = make();
      for (const dtype of ['F32', 'F16', 'BF16'] as const) {
        const path = join(dir, `${dtype}.safetensors`);
        await saveSafetensors(path, tensors, { dtype, metadata: { note: 'x' } });
        const header = await readSafetensorsHeader(path);
        expect(header.metadata).toEqual({ note: 'x' });
        // Descending alignment, then name: 4-byte dtypes, then 2-byte, then BOOL.
        const floatsFirst = dtype === 'F32' ? ['0', 'a.weight', 'b.ids'] : ['b.ids', '0', 'a.weight'];
        expect([...header.tensors.keys()]).toEqual([...floatsFirst, 'z.mask']);
        expect(header.dataStart % 8).toBe(0);
        for (const info of header.tensors.values()) {
          const size = info.dtype === 'BOOL' ? 1 : info.dtype === 'I32' || info.dtype === 'F32' ? 4 : 2;
          expect(info.dataOffsets[0] % size).toBe(0);
        }
        const back = await loadSafetensors(path);
        expect(back.get('z.mask')!.dtype).toBe('bool');
        expect(Array.from(back.get('z.mask')!.dataSync())).toEqual([1, 0, 1]);
        expect(back.get('b.ids')!.dtype).toBe('int32');
        expect(back.get('b.ids')!.shape).toEqual([2, 2]);
        expect(Array.from(back.get('b.ids')!.dataSync())).toEqual([-5, 2147483647, -2147483648, 0]);
        expect(back.get('0')!.shape).toEqual([]);
        expect(back.get('0')!.dataSync()[0]).toBe(3.25);
        const weight = Array.from(back.get('a.weight')!.dataSync());
        // F16 keeps 65504 and 2^-24 exactly and rounds the tie 1 + 2^-11 to 1; BF16 (8-bit mantissa) rounds
        // 65504 up to 65536 and 1 + 2^-11 down to 1, and keeps 2^-24 (same exponent range as float32).
        const expected = {
          F32: [1, -2, 0.5, 65504, 2 ** -24, 1 + 2 ** -11],
          F16: [1, -2, 0.5, 65504, 2 ** -24, 1],
          BF16: [1, -2, 0.5, 65536, 2 ** -24, 1],
        }[dtype];
        expect(weight).toEqual(expected);
        disposeAll(back);
      }
      // Same tensors inserted in another order (and as a record) → identical bytes.
      const reordered = Object.fromEntries([...tensors].reverse());
      await saveSafetensors(join(dir, 'again.safetensors'), reordered, {
        dtype: 'F32',
        metadata: { note: 'x' },
      });
      expect(await readFile(join(dir, 'again.safetensors'))).toEqual(
        await readFile(join(dir, 'F32.safetensors')),
      );
      disposeAll(tensors);
    });
  });

  it("defaults __metadata__ to { format: 'pt' } (transformers refuses files without it)", async () => {
    await withTempDir(async (dir) => {
      const t = tf.ones([2]);
      await saveSafetensors(join(dir, 'm.safetensors'), { t });
      t.dispose();
      expect((await readSafetensorsHeader(join(dir, 'm.safetensors'))).metadata).toEqual({ format: 'pt' });
    });
  });

  it('never leaves a half-written target: a failing save keeps the old file and no temp file', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'model.safetensors');
      const old = tf.tensor([1, 2, 3]);
      await saveSafetensors(path, { old });
      const before = await readFile(path);
      const a = tf.ones([4]);
      const b = tf.ones([4]);
      const saving = saveSafetensors(path, { a, b });
      b.dispose(); // disposed while the save is in flight: its data() fails after the header is written
      await expect(saving).rejects.toThrow(/disposed/);
      expect(await readFile(path)).toEqual(before);
      expect(await readdir(dir)).toEqual(['model.safetensors']);
      old.dispose();
      a.dispose();
    });
  });

  it('rejects dtypes safetensors cannot hold, naming the tensor', async () => {
    const c = tf.complex([1], [2]);
    await expect(saveSafetensors('/tmp/never-written.safetensors', { c })).rejects.toThrow(
      "cannot save tensor 'c': dtype complex64 has no safetensors equivalent",
    );
    c.dispose();
  });
});

describe('sharded checkpoints', () => {
  it('round-trips through shards + index, then a single file replaces them cleanly', async () => {
    await withTempDir(async (dir) => {
      const tensors: Record<string, tf.Tensor> = {
        'layers.0.w': tf.range(0, 100, 1, 'float32'), // 400 bytes
        'layers.1.w': tf.range(100, 200, 1, 'float32'), // 400
        'layers.2.w': tf.range(200, 250, 1, 'float32'), // 200
        'lm_head.weight': tf.ones([60]), // 240
        step: tf.scalar(7, 'int32'), // 4
      };
      const saved = await saveShardedSafetensors(dir, tensors, { maxShardBytes: 640 });
      // Greedy in name order: [layers.0] 400, [layers.1 + layers.2] 600, [lm_head + step] 244.
      expect(saved.files.map((f) => f.slice(dir.length + 1))).toEqual([
        'model-00001-of-00003.safetensors',
        'model-00002-of-00003.safetensors',
        'model-00003-of-00003.safetensors',
      ]);
      expect(saved.totalSize).toBe(1244);
      const index = JSON.parse(await readFile(join(dir, 'model.safetensors.index.json'), 'utf8'));
      expect(index).toEqual({
        metadata: { total_size: 1244 },
        weight_map: {
          'layers.0.w': 'model-00001-of-00003.safetensors',
          'layers.1.w': 'model-00002-of-00003.safetensors',
          'layers.2.w': 'model-00002-of-00003.safetensors',
          'lm_head.weight': 'model-00003-of-00003.safetensors',
          step: 'model-00003-of-00003.safetensors',
        },
      });
      const resolved = await resolveWeightFiles(dir);
      expect(resolved.indexPath).toBe(join(dir, 'model.safetensors.index.json'));
      expect(resolved.weightMap?.get('step')).toBe(join(dir, 'model-00003-of-00003.safetensors'));

      const back = await loadSafetensorsDir(dir);
      expect([...back.keys()].sort()).toEqual(Object.keys(tensors).sort());
      for (const [name, t] of Object.entries(tensors)) {
        expect(Array.from(back.get(name)!.dataSync())).toEqual(Array.from(t.dataSync()));
      }
      disposeAll(back);
      const some = await loadSafetensorsDir(dir, { names: ['step', 'layers.2.w'], rename: (n) => `m.${n}` });
      expect([...some.keys()].sort()).toEqual(['m.layers.2.w', 'm.step']);
      disposeAll(some);
      await expect(loadSafetensorsDir(dir, { names: ['nope'] })).rejects.toThrow(
        `weights in ${dir}: requested tensors not found: nope`,
      );

      // Everything fits one shard → model.safetensors as transformers writes it; old shards and index go.
      const single = await saveShardedSafetensors(dir, tensors, { maxShardBytes: 1 << 20 });
      expect(single.indexPath).toBeNull();
      expect((await readdir(dir)).sort()).toEqual(['model.safetensors']);
      expect((await resolveWeightFiles(dir)).files).toEqual([join(dir, 'model.safetensors')]);
      for (const t of Object.values(tensors)) t.dispose();
    });
  });

  it('names missing shards, inconsistent indexes and folders without weights', async () => {
    await withTempDir(async (dir) => {
      const a = tf.ones([300]);
      const b = tf.ones([300]);
      await saveShardedSafetensors(dir, { a, b }, { maxShardBytes: 1000 });
      const indexPath = join(dir, 'model.safetensors.index.json');

      const index = JSON.parse(await readFile(indexPath, 'utf8'));
      index.weight_map.c = 'model-00001-of-00002.safetensors';
      await writeFile(indexPath, JSON.stringify(index));
      await expect(loadSafetensorsDir(dir)).rejects.toThrow(
        `safetensors shard index ${indexPath} puts tensor 'c' in ${join(dir, 'model-00001-of-00002.safetensors')}, which lacks it`,
      );

      await rm(join(dir, 'model-00002-of-00002.safetensors'));
      await expect(resolveWeightFiles(dir)).rejects.toThrow(
        `safetensors shard index ${indexPath} lists shard files that are missing from ${dir}: model-00002-of-00002.safetensors`,
      );

      await writeFile(indexPath, '{"weight_map": {"a": 3}}');
      await expect(resolveWeightFiles(dir)).rejects.toThrow(
        `safetensors shard index ${indexPath} is invalid:\n  weight_map.a: expected string, received number`,
      );

      await rm(indexPath);
      await rm(join(dir, 'model-00001-of-00002.safetensors'));
      await writeFile(join(dir, 'pytorch_model.bin'), 'pickle');
      await expect(resolveWeightFiles(dir)).rejects.toThrow(
        `no weights in ${dir}: expected model.safetensors or model.safetensors.index.json (found: pytorch_model.bin). ` +
          'PyTorch pickle weights are not supported',
      );
      await expect(resolveWeightFiles(join(dir, 'missing'))).rejects.toThrow(
        `model folder not found: ${join(dir, 'missing')}`,
      );
      a.dispose();
      b.dispose();
    });
  });
});

describe('readJsonFile', () => {
  it('reads, validates, and names the file and the field in errors', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'config.json');
      const hint = 'expected a Hugging Face model folder with config.json';
      await expect(readJsonFile(path, 'model config', { hint })).rejects.toThrow(
        `model config not found: ${path} (expected a Hugging Face model folder with config.json)`,
      );
      await writeFile(path, '{"hidden_size": 64,');
      await expect(readJsonFile(path, 'model config')).rejects.toThrow(
        `model config ${path} is not valid JSON:`,
      );
      await writeFile(path, '{"text_config": {"hidden_size": "64"}}');
      const schema = z.object({ text_config: z.object({ hidden_size: z.number(), vocab_size: z.number() }) });
      await expect(readJsonFile(path, 'model config', { schema })).rejects.toThrow(
        `model config ${path} is invalid:\n  text_config.hidden_size: expected number, received string\n` +
          '  text_config.vocab_size: missing (expected number)',
      );
      await writeFile(path, '{"text_config": {"hidden_size": 64, "vocab_size": 10}}');
      const config = await readJsonFile(path, 'model config', { schema });
      expect(config.text_config.hidden_size).toBe(64);
    });
  });
});
