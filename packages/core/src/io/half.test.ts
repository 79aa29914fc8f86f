import { describe, expect, it } from 'vitest';
import {
  bfloat16BitsToNumber,
  bfloat16ToFloat32,
  float16BitsToNumber,
  float16ToFloat32,
  float32ToBfloat16,
  float32ToFloat16,
  numberToBfloat16Bits,
  numberToFloat16Bits,
} from './half.js';

/** A float32 from its bit pattern, so inputs are exact. */
const f32 = (bits: number) => new Float32Array(new Uint32Array([bits]).buffer)[0];

describe('float16', () => {
  // [value, expected half bits], each worked out by hand from the IEEE binary16 layout.
  const toHalf: Array<[string, number, number]> = [
    ['+0', 0, 0x0000],
    ['-0', -0, 0x8000],
    ['1', 1, 0x3c00],
    ['-2', -2, 0xc000],
    ['1/3 → 0x3555 (0.333251953125)', 1 / 3, 0x3555],
    ['0.1 → 0x2e66', 0.1, 0x2e66],
    ['max finite 65504', 65504, 0x7bff],
    ['65519 rounds down to 65504', 65519, 0x7bff],
    ['65520 (halfway to 2^16) rounds to inf', 65520, 0x7c00],
    ['1e6 overflows to inf', 1e6, 0x7c00],
    ['+inf', Number.POSITIVE_INFINITY, 0x7c00],
    ['-inf', Number.NEGATIVE_INFINITY, 0xfc00],
    ['min normal 2^-14', 2 ** -14, 0x0400],
    ['min subnormal 2^-24', 2 ** -24, 0x0001],
    ['max subnormal 1023·2^-24', 1023 * 2 ** -24, 0x03ff],
    ['2^-25 is a tie between 0 and 2^-24: even → 0', 2 ** -25, 0x0000],
    ['-2^-25 → -0', -(2 ** -25), 0x8000],
    ['1.5·2^-25 → 2^-24', 1.5 * 2 ** -25, 0x0001],
    ['3·2^-25 = 1.5 ulp: tie → even 2', 3 * 2 ** -25, 0x0002],
    ['2^-26 → 0', 2 ** -26, 0x0000],
    ['halfway max subnormal/min normal → even (0x0400)', 2 ** -14 - 2 ** -25, 0x0400],
    ['1 + 2^-11 is a tie: even → 1', 1 + 2 ** -11, 0x3c00],
    ['1 + 3·2^-11 is a tie: even → 0x3c02', 1 + 3 * 2 ** -11, 0x3c02],
    ['1 + 2^-11 + 2^-20 rounds up', 1 + 2 ** -11 + 2 ** -20, 0x3c01],
    ['65488 is a tie between 65472 and 65504: even → 65472', 65488, 0x7bfe],
  ];
  for (const [label, value, bits] of toHalf) {
    it(`f32 → f16: ${label}`, () => {
      expect(numberToFloat16Bits(value)).toBe(bits);
      expect(float32ToFloat16(new Float32Array([value]))[0]).toBe(bits);
    });
  }

  it('f32 → f16: NaN stays NaN (quiet), keeping the sign', () => {
    expect(numberToFloat16Bits(Number.NaN) & 0x7e00).toBe(0x7e00);
    const negativeSignalling = f32(0xff800001);
    expect(float32ToFloat16(new Float32Array([negativeSignalling]))[0] & 0xfe00).toBe(0xfe00);
  });

  it('f16 → f32 on edge bit patterns', () => {
    const bits = [
      0x0000, 0x8000, 0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x3555, 0x7c00, 0xfc00, 0x7e00,
    ];
    const expected = [
      0,
      -0,
      1,
      -2,
      65504,
      2 ** -24,
      1023 * 2 ** -24,
      2 ** -14,
      0.333251953125,
      Infinity,
      -Infinity,
      NaN,
    ];
    expect(bits.map(float16BitsToNumber)).toEqual(expected);
    expect(Array.from(float16ToFloat32(new Uint16Array(bits)))).toEqual(expected);
  });

  it('every finite half survives f16 → f32 → f16 exactly', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const back = float32ToFloat16(float16ToFloat32(all));
    for (let b = 0; b < 65536; b++) {
      const isNaNPattern = (b & 0x7c00) === 0x7c00 && (b & 0x3ff) !== 0;
      if (!isNaNPattern && back[b] !== b)
        throw new Error(`0x${b.toString(16)} came back as 0x${back[b].toString(16)}`);
    }
  });
});

describe('bfloat16', () => {
  const toBf16: Array<[string, number, number]> = [
    ['1', 0x3f800000, 0x3f80],
    ['-3', 0xc0400000, 0xc040],
    ['1 + 2^-8 is a tie: even → 1', 0x3f808000, 0x3f80],
    ['1 + 3·2^-8 is a tie: even → 0x3f82', 0x3f818000, 0x3f82],
    ['just above the tie rounds up', 0x3f808001, 0x3f81],
    ['just below the tie rounds down', 0x3f807fff, 0x3f80],
    ['f32 max rounds up to inf', 0x7f7fffff, 0x7f80],
    ['0x7f7f7fff rounds down to bf16 max', 0x7f7f7fff, 0x7f7f],
    ['-inf', 0xff800000, 0xff80],
    ['smallest f32 subnormal → +0', 0x00000001, 0x0000],
    ['subnormal tie → even 0', 0x00008000, 0x0000],
    ['subnormal tie → even 2', 0x00018000, 0x0002],
    ['quiet NaN', 0x7fc00000, 0x7fc0],
    ['signalling NaN becomes quiet, not inf', 0x7f800001, 0x7fc0],
  ];
  for (const [label, bits, expected] of toBf16) {
    it(`f32 → bf16: ${label}`, () => {
      expect(numberToBfloat16Bits(f32(bits))).toBe(expected);
      expect(float32ToBfloat16(new Float32Array([f32(bits)]))[0]).toBe(expected);
    });
  }

  it('bf16 → f32 is the top half of the float32 bits', () => {
    const bits = [0x3f80, 0xc040, 0x7f7f, 0x0001, 0xff80, 0x8000];
    const expected = [1, -3, f32(0x7f7f0000), 2 ** -133, -Infinity, -0];
    expect(bits.map(bfloat16BitsToNumber)).toEqual(expected);
    expect(Array.from(bfloat16ToFloat32(new Uint16Array(bits)))).toEqual(expected);
  });

  it('works on a subarray view (offset into a larger buffer)', () => {
    const values = new Float32Array([7, 1, -2, 65504]).subarray(1);
    expect(Array.from(float32ToBfloat16(values))).toEqual([0x3f80, 0xc000, 0x4780]); // 65504 = 0x477fe000 rounds up to 65536
    expect(Array.from(float32ToFloat16(values))).toEqual([0x3c00, 0xc000, 0x7bff]);
  });
});
