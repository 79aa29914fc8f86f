// Seeded randomness for parameter init and dropout. Our own generator (not tf.randomNormal) so a model's
// initial weights depend only on the seed and the order layers are built, on every backend and version.

const TWO_POW_32 = 4294967296;

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** xoshiro128** (period 2^128 - 1), seeded through splitmix32 so nearby seeds give unrelated streams. */
export class Rng {
  private readonly s = new Uint32Array(4);

  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new Error(`Rng seed must be a safe integer, got ${seed}`);
    // Fold the high bits in so seeds that differ only above 2^32 still differ.
    let x = (seed >>> 0) ^ Math.floor(seed / TWO_POW_32);
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if (this.s.every((w) => w === 0)) this.s[0] = 1; // the one state xoshiro never leaves
  }

  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1). */
  nextFloat(): number {
    return this.nextUint32() / TWO_POW_32;
  }

  /** `count` samples of N(mean, std²) by Box-Muller, two per pair of uniforms. */
  normal(count: number, std = 1, mean = 0): Float32Array {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i += 2) {
      const u1 = (this.nextUint32() + 1) / TWO_POW_32; // (0, 1]: log stays finite
      const theta = 2 * Math.PI * this.nextFloat();
      const r = std * Math.sqrt(-2 * Math.log(u1));
      out[i] = mean + r * Math.cos(theta);
      if (i + 1 < count) out[i + 1] = mean + r * Math.sin(theta);
    }
    return out;
  }

  /** An independent generator seeded from this stream (for a component that draws at its own pace). */
  fork(): Rng {
    return new Rng(this.nextUint32() * 2097152 + (this.nextUint32() >>> 11));
  }
}
