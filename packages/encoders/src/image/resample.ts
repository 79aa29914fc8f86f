// Pillow-exact resize of 8-bit RGB images (Image.resize without reducing_gap), because HF's image processors
// resize through PIL: the same separable convolution, the same kernel support (widened when downscaling,
// which antialiases), the same 22-bit fixed-point weights and rounding, horizontal pass first.
import { checkImageSize, type RgbImage } from './rgb.js';

export type ResampleFilter = 'bilinear' | 'bicubic' | 'box' | 'hamming' | 'lanczos';

/** PIL.Image.Resampling ids as stored in preprocessor_config.json `resample`. 0 (nearest) is not supported. */
export const PIL_RESAMPLE_IDS: Readonly<Record<number, ResampleFilter>> = {
  1: 'lanczos',
  2: 'bilinear',
  3: 'bicubic',
  4: 'box',
  5: 'hamming',
};

interface Kernel {
  /** Half-width of the kernel at scale 1. */
  support: number;
  weight(x: number): number;
}

function sinc(x: number): number {
  if (x === 0) return 1;
  const t = x * Math.PI;
  return Math.sin(t) / t;
}

// Pillow's filter functions; bicubic is Keys' cubic with a = -0.5.
const KERNELS: Record<ResampleFilter, Kernel> = {
  box: { support: 0.5, weight: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  bilinear: { support: 1, weight: (x) => Math.max(0, 1 - Math.abs(x)) },
  hamming: {
    support: 1,
    weight: (x) => {
      const t = Math.abs(x);
      if (t === 0) return 1;
      if (t >= 1) return 0;
      const p = t * Math.PI;
      return (Math.sin(p) / p) * (Math.fround(0.54) + Math.fround(0.46) * Math.cos(p));
    },
  },
  bicubic: {
    support: 2,
    weight: (x) => {
      const a = -0.5;
      const t = Math.abs(x);
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
      if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
      return 0;
    },
  },
  lanczos: { support: 3, weight: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

const PRECISION_BITS = 22; // 32 - 8 - 2: room for 8-bit values, negative lobes and overshoot in an int32 sum

/** For each output index: first input index, number of taps, and fixed-point weights (stride `taps`). */
interface AxisWeights {
  first: Int32Array;
  count: Int32Array;
  weights: Int32Array;
  taps: number;
}

function axisWeights(inSize: number, outSize: number, filter: ResampleFilter): AxisWeights {
  const kernel = KERNELS[filter];
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1); // downscaling widens the kernel: antialiasing
  const support = kernel.support * filterScale;
  const taps = Math.ceil(support) * 2 + 1;
  const invFilterScale = 1 / filterScale;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * taps);
  const w = new Float64Array(taps);
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const lo = Math.max(0, Math.trunc(center - support + 0.5));
    const hi = Math.min(inSize, Math.trunc(center + support + 0.5));
    const n = hi - lo;
    let sum = 0;
    for (let k = 0; k < n; k++) {
      w[k] = kernel.weight((k + lo - center + 0.5) * invFilterScale);
      sum += w[k];
    }
    for (let k = 0; k < n; k++) {
      const normalised = sum !== 0 ? w[k] / sum : w[k];
      const fixed = normalised * (1 << PRECISION_BITS);
      weights[i * taps + k] = Math.trunc(normalised < 0 ? fixed - 0.5 : fixed + 0.5);
    }
    first[i] = lo;
    count[i] = n;
  }
  return { first, count, weights, taps };
}

function clip8(acc: number): number {
  const v = acc >> PRECISION_BITS;
  return Math.min(255, Math.max(0, v));
}

/** Resample along x (stride 3 within a row) or y (stride 3·width): `along` says which. */
function pass(
  src: RgbImage,
  outWidth: number,
  outHeight: number,
  along: 'x' | 'y',
  filter: ResampleFilter,
): RgbImage {
  const inSize = along === 'x' ? src.width : src.height;
  const outSize = along === 'x' ? outWidth : outHeight;
  const { first, count, weights, taps } = axisWeights(inSize, outSize, filter);
  const out = new Uint8Array(outWidth * outHeight * 3);
  const rowStride = src.width * 3;
  const half = 1 << (PRECISION_BITS - 1);
  for (let y = 0; y < outHeight; y++) {
    for (let x = 0; x < outWidth; x++) {
      const i = along === 'x' ? x : y;
      const step = along === 'x' ? 3 : rowStride;
      const base = along === 'x' ? y * rowStride + first[i] * 3 : first[i] * rowStride + x * 3;
      let r = half;
      let g = half;
      let b = half;
      for (let k = 0; k < count[i]; k++) {
        const wk = weights[i * taps + k];
        const p = base + k * step;
        r += src.data[p] * wk;
        g += src.data[p + 1] * wk;
        b += src.data[p + 2] * wk;
      }
      const o = (y * outWidth + x) * 3;
      out[o] = clip8(r);
      out[o + 1] = clip8(g);
      out[o + 2] = clip8(b);
    }
  }
  return { width: outWidth, height: outHeight, data: out };
}

/** PIL `image.resize((width, height), filter)` for an 8-bit RGB image. */
export function resizeRgb(image: RgbImage, width: number, height: number, filter: ResampleFilter): RgbImage {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new Error(`resizeRgb: target size ${width}x${height} must be positive integers`);
  }
  // The horizontal pass first makes a width × (source height) image: bound it too.
  checkImageSize(width, height, 'resized');
  checkImageSize(width, image.height, 'resized (horizontal pass)');
  let out = image;
  if (width !== image.width) out = pass(out, width, out.height, 'x', filter);
  if (height !== image.height) out = pass(out, out.width, height, 'y', filter);
  return out === image ? { width, height, data: image.data.slice() } : out;
}
