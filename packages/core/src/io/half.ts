// float16 / bfloat16 <-> float32 conversion on raw bit patterns (Node 20 has no Float16Array).
// f32 -> f16/bf16 rounds to nearest, ties to even, as torch and numpy do.

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** IEEE half bits (0..65535) → its exact float value (NaN payloads are not kept). */
export function float16BitsToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24; // zero or subnormal: fraction × 2^-24
  if (exponent === 31) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** float32 bit pattern → nearest half bit pattern (round to nearest even; overflow → ±inf; NaN → quiet NaN). */
function float32BitsToFloat16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 | (mantissa >>> 13) : 0);
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 31) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // Subnormal half: value = m × 2^-24 with m = significand >> shift, then round the dropped bits.
    const shift = 14 - halfExponent;
    if (shift > 24) return sign; // below half of the smallest subnormal: rounds to ±0
    const significand = mantissa | 0x800000;
    let half = significand >>> shift;
    const rest = significand & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && half & 1)) half += 1; // a carry into bit 10 gives the min normal
    return sign | half;
  }
  let half = (halfExponent << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half += 1; // a carry may reach exponent 31 = inf, as it should
  return sign | half;
}

/** A number → nearest half bit pattern (first rounded to float32, as torch does for f32 tensors). */
export function numberToFloat16Bits(value: number): number {
  scratchF32[0] = value;
  return float32BitsToFloat16Bits(scratchU32[0]);
}

/** bfloat16 bits → float value: bf16 is the top half of a float32. */
export function bfloat16BitsToNumber(bits: number): number {
  scratchU32[0] = (bits & 0xffff) << 16;
  return scratchF32[0];
}

function float32BitsToBfloat16Bits(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) & 0xffff) | 0x40; // NaN: keep sign, force quiet
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff; // round to nearest even on the dropped 16 bits
}

/** A number → nearest bfloat16 bit pattern (round to nearest even; overflow → ±inf). */
export function numberToBfloat16Bits(value: number): number {
  scratchF32[0] = value;
  return float32BitsToBfloat16Bits(scratchU32[0]);
}

let float16Table: Float32Array | null = null;

/** Half bits → float32 values; a 65536-entry table (256 KiB) makes this one lookup per element. */
export function float16ToFloat32(bits: Uint16Array): Float32Array {
  if (!float16Table) {
    float16Table = new Float32Array(65536);
    for (let b = 0; b < 65536; b++) float16Table[b] = float16BitsToNumber(b);
  }
  const table = float16Table;
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]];
  return out;
}

/** bfloat16 bits → float32 values (u32 = u16 << 16). */
export function bfloat16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = bits[i] << 16;
  return new Float32Array(out.buffer);
}

/** float32 values → half bits, round to nearest even. */
export function float32ToFloat16(values: Float32Array): Uint16Array {
  const words = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < words.length; i++) out[i] = float32BitsToFloat16Bits(words[i]);
  return out;
}

/** float32 values → bfloat16 bits, round to nearest even. */
export function float32ToBfloat16(values: Float32Array): Uint16Array {
  const words = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < words.length; i++) out[i] = float32BitsToBfloat16Bits(words[i]);
  return out;
}
