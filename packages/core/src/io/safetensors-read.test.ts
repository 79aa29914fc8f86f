import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadSafetensors, readSafetensorsHeader, SafetensorsReader } from './index.js';
import { rawSafetensors, withTempDir, writeBytes } from './test-utils.js';

const fixtureDir = fileURLToPath(new URL('../../../../fixtures/tiny-llava-hf/', import.meta.url));

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const bytesOf = (view: ArrayBufferView) => new Uint8Array(view.buffer, view.byteOffset, view.byteLength);

describe('tiny-llava-hf fixture', () => {
  it('reads the F16 model header: 64 tensors, shapes from config.json', async () => {
    const header = await readSafetensorsHeader(join(fixtureDir, 'model.safetensors'));
    expect(header.tensors.size).toBe(64);
    expect(header.metadata).toEqual({ format: 'pt' });
    expect(header.tensors.get('language_model.model.embed_tokens.weight')).toMatchObject({
      dtype: 'F16',
      shape: [32064, 64], // [vocab_size, text hidden_size]
    });
    expect(
      header.tensors.get('vision_tower.vision_model.embeddings.position_embedding.weight')?.shape,
    ).toEqual([17, 32]);
    expect(header.tensors.get('multi_modal_projector.linear_1.weight')?.shape).toEqual([64, 32]);
    expect(header.dataStart).toBe(8 + 7824);
  });

  it('loads F16 weights as float32 with the values numpy gives', async () => {
    const weights = await loadSafetensors(join(fixtureDir, 'model.safetensors'));
    expect(weights.size).toBe(64);
    const embed = weights.get('language_model.model.embed_tokens.weight')!;
    expect(embed.dtype).toBe('float32');
    expect(embed.shape).toEqual([32064, 64]);
    const values = embed.dataSync();
    // Reference values: numpy.frombuffer(..., float16) on the same bytes.
    expect(Array.from(values.slice(0, 4))).toEqual([2.017578125, -0.720703125, 1.158203125, -0.97412109375]);
    expect(Array.from(values.slice(31999 * 64 + 61, 32000 * 64))).toEqual([
      0.1046142578125, -2.951171875, -0.85498046875,
    ]);
    let sum = 0;
    for (const v of values) sum += v;
    expect(sum).toBeCloseTo(17.876493632793427, 6);
    for (const t of weights.values()) t.dispose();
  });

  it('loads expected.safetensors (F32) and selects / renames tensors', async () => {
    const path = join(fixtureDir, 'expected.safetensors');
    const all = await loadSafetensors(path);
    expect([...all.keys()].sort()).toHaveLength(10);
    const logits = all.get('case0.logits_last')!;
    expect(logits.shape).toEqual([32064]);
    expect(Array.from(logits.dataSync().slice(0, 3))).toEqual([
      Math.fround(-0.07078173011541367),
      Math.fround(0.32949694991111755),
      Math.fround(-0.6253334879875183),
    ]);
    expect(tf.tidy(() => tf.sum(logits).dataSync()[0])).toBeCloseTo(-157.00548680592328, 2);
    for (const t of all.values()) t.dispose();

    const picked = await loadSafetensors(path, {
      names: (n) => n.endsWith('.image_features'),
      rename: (n) => (n.startsWith('case3') ? null : n.replace('.image_features', '')),
    });
    expect([...picked.keys()]).toEqual(['case0', 'case1', 'case2']);
    expect(picked.get('case1')!.shape).toEqual([1, 16, 64]);
    for (const t of picked.values()) t.dispose();

    await expect(loadSafetensors(path, { names: ['case0.logits_last', 'nope'] })).rejects.toThrow(
      `safetensors file ${path}: requested tensors not found: nope`,
    );
    await expect(loadSafetensors(path, { rename: () => 'same' })).rejects.toThrow(/both map to 'same'/);
  });

  it('SafetensorsReader reads single tensors and names missing ones', async () => {
    const path = join(fixtureDir, 'pixel_values.safetensors');
    const reader = await SafetensorsReader.open(path);
    try {
      expect(reader.names()).toEqual(['image_0.png', 'image_1.png', 'image_2.png', 'image_3.png']);
      const t = await reader.readTensor('image_2.png');
      expect(t.shape).toEqual([3, 32, 32]);
      t.dispose();
      await expect(reader.readTensor('image_9.png')).rejects.toThrow(
        `safetensors file ${path}: no tensor named 'image_9.png' (it has: image_0.png, image_1.png, image_2.png, image_3.png)`,
      );
    } finally {
      await reader.close();
    }
  });
});

describe('dtype decoding', () => {
  it('decodes every dtype from hand-built bytes', async () => {
    const f64 = new Float64Array([1.5, -2.25, 1e-300]);
    const i64 = new BigInt64Array([-2147483648n, 2147483647n, -1n, 5n]);
    const i16 = new Int16Array([-32768, 32767, -1]);
    const i8 = new Int8Array([-128, 127, -1]);
    const u8 = new Uint8Array([0, 255, 7]);
    const bool = new Uint8Array([1, 0, 1, 1]);
    const f16 = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001]); // 1, -2, 65504, 2^-24
    const bf16 = new Uint16Array([0x3f80, 0xc040, 0x0001]); // 1, -3, smallest bf16 subnormal (2^-133)
    const i32 = new Int32Array([-7, 2147483647]);
    const f32 = new Float32Array([0.1, -0]);
    const parts: Array<[string, string, number[], Uint8Array]> = [
      ['a_f64', 'F64', [3], bytesOf(f64)],
      ['b_i64', 'I64', [2, 2], bytesOf(i64)],
      ['c_f32', 'F32', [2], bytesOf(f32)],
      ['d_i32', 'I32', [2], bytesOf(i32)],
      ['e_f16', 'F16', [4], bytesOf(f16)],
      ['f_bf16', 'BF16', [3], bytesOf(bf16)],
      ['g_i16', 'I16', [3], bytesOf(i16)],
      ['h_i8', 'I8', [3], bytesOf(i8)],
      ['i_u8', 'U8', [3], u8],
      ['j_bool', 'BOOL', [2, 2], bool],
    ];
    const header: Record<string, unknown> = {};
    let offset = 0;
    for (const [name, dtype, shape, bytes] of parts) {
      header[name] = { dtype, shape, data_offsets: [offset, offset + bytes.length] };
      offset += bytes.length;
    }
    const data = new Uint8Array(offset);
    offset = 0;
    for (const [, , , bytes] of parts) {
      data.set(bytes, offset);
      offset += bytes.length;
    }
    await withTempDir(async (dir) => {
      const path = await writeBytes(join(dir, 'all.safetensors'), rawSafetensors(header, data));
      const t = await loadSafetensors(path);
      const got = (name: string) => Array.from(t.get(name)!.dataSync());
      expect(got('a_f64')).toEqual([1.5, -2.25, 0]); // 1e-300 underflows float32
      expect(t.get('b_i64')!.dtype).toBe('int32');
      expect(t.get('b_i64')!.shape).toEqual([2, 2]);
      expect(got('b_i64')).toEqual([-2147483648, 2147483647, -1, 5]);
      expect(got('c_f32')).toEqual([Math.fround(0.1), -0]);
      expect(got('d_i32')).toEqual([-7, 2147483647]);
      expect(got('e_f16')).toEqual([1, -2, 65504, 2 ** -24]);
      expect(got('f_bf16')).toEqual([1, -3, 2 ** -133]);
      expect(got('g_i16')).toEqual([-32768, 32767, -1]);
      expect(got('h_i8')).toEqual([-128, 127, -1]);
      expect(got('i_u8')).toEqual([0, 255, 7]);
      expect(t.get('j_bool')!.dtype).toBe('bool');
      expect(got('j_bool')).toEqual([1, 0, 1, 1]);
      for (const x of t.values()) x.dispose();
    });
  });

  it('rejects I64 values outside int32, naming the tensor', async () => {
    const i64 = new BigInt64Array([1n, 2147483648n]);
    const header = { big: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } };
    await withTempDir(async (dir) => {
      const path = await writeBytes(join(dir, 'i64.safetensors'), rawSafetensors(header, bytesOf(i64)));
      await expect(loadSafetensors(path)).rejects.toThrow(
        `safetensors file ${path}: tensor 'big' (I64) holds 2147483648 at flat index 1, outside the int32 range`,
      );
    });
  });
});

describe('corrupted files', () => {
  const ok = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const eight = new Uint8Array(8);

  async function errorFor(bytes: Uint8Array): Promise<{ path: string; message: string }> {
    return withTempDir(async (dir) => {
      const path = await writeBytes(join(dir, 'bad.safetensors'), bytes);
      try {
        await readSafetensorsHeader(path);
      } catch (err) {
        return { path, message: (err as Error).message };
      }
      throw new Error('expected readSafetensorsHeader to fail');
    });
  }

  it('accepts the well-formed baseline', async () => {
    await withTempDir(async (dir) => {
      const path = await writeBytes(join(dir, 'ok.safetensors'), rawSafetensors(ok, eight));
      expect((await readSafetensorsHeader(path)).tensors.get('w')?.dataOffsets).toEqual([0, 8]);
    });
  });

  it('file shorter than 8 bytes', async () => {
    const { path, message } = await errorFor(new Uint8Array(5));
    expect(message).toBe(
      `safetensors file ${path}: file is 5 bytes, too small for the 8-byte header length (truncated?)`,
    );
  });

  it('header length past the end of the file', async () => {
    const { path, message } = await errorFor(rawSafetensors(ok, eight, 10_000n));
    expect(message).toMatch(`safetensors file ${path}: header length 10000 runs past the end of the`);
  });

  it('absurd header length', async () => {
    const { message } = await errorFor(rawSafetensors(ok, eight, 1n << 40n));
    expect(message).toMatch(/header length 1099511627776 exceeds the 100000000-byte limit/);
  });

  it('truncated data section', async () => {
    const full = rawSafetensors(ok, eight);
    const { path, message } = await errorFor(full.subarray(0, full.length - 3));
    expect(message).toBe(
      `safetensors file ${path}: tensor 'w': data_offsets [0, 8] run past the 5-byte data section (truncated file?)`,
    );
  });

  it('non-JSON header', async () => {
    const { path, message } = await errorFor(rawSafetensors('{"w": {"dtype": "F32",', eight));
    expect(message).toMatch(`safetensors file ${path}: header (22 bytes) is not valid UTF-8 JSON`);
  });

  it('unknown dtype', async () => {
    const { path, message } = await errorFor(rawSafetensors({ w: { ...ok.w, dtype: 'F8_E4M3' } }, eight));
    expect(message).toBe(
      `safetensors file ${path}: tensor 'w': unsupported dtype 'F8_E4M3' (vistune reads F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)`,
    );
  });

  it('shape × dtype size disagreeing with the byte range', async () => {
    const { path, message } = await errorFor(rawSafetensors({ w: { ...ok.w, dtype: 'F16' } }, eight));
    expect(message).toBe(
      `safetensors file ${path}: tensor 'w': shape [2] × F16 (2 bytes) = 4 bytes, but data_offsets [0, 8] span 8 bytes`,
    );
  });

  it('overlapping offsets', async () => {
    const header = {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
    };
    const { path, message } = await errorFor(rawSafetensors(header, new Uint8Array(12)));
    expect(message).toBe(
      `safetensors file ${path}: tensor 'b': data_offsets [4, 12] overlap tensor 'a' (ends at 8)`,
    );
  });

  it('gap between tensors', async () => {
    const header = {
      a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
      b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
    };
    const { path, message } = await errorFor(rawSafetensors(header, new Uint8Array(12)));
    expect(message).toBe(
      `safetensors file ${path}: tensor 'b': data_offsets [8, 12] leave a gap of 4 bytes after tensor 'a'`,
    );
  });

  it('trailing bytes not covered by any tensor', async () => {
    const { path, message } = await errorFor(rawSafetensors(ok, new Uint8Array(12)));
    expect(message).toBe(
      `safetensors file ${path}: data section is 12 bytes but last tensor 'w' ends at 8: 4 trailing bytes not covered`,
    );
  });

  it('malformed entries and metadata', async () => {
    expect((await errorFor(rawSafetensors({ w: { ...ok.w, shape: [2.5] } }, eight))).message).toMatch(
      `tensor 'w': 'shape' must be an array of non-negative integers, got [2.5]`,
    );
    expect((await errorFor(rawSafetensors({ w: { ...ok.w, data_offsets: [8, 0] } }, eight))).message).toMatch(
      `tensor 'w': data_offsets [8, 0] end before begin`,
    );
    expect((await errorFor(rawSafetensors({ __metadata__: { n: 3 }, ...ok }, eight))).message).toMatch(
      `'__metadata__.n' must be a string, got 3`,
    );
    expect((await errorFor(rawSafetensors([1, 2], eight))).message).toMatch('header JSON is not an object');
  });

  it('missing file', async () => {
    await expect(readSafetensorsHeader('/nonexistent/x.safetensors')).rejects.toThrow(
      'safetensors file not found: /nonexistent/x.safetensors',
    );
  });
});
