// Rotary position embeddings in Hugging Face's rotate_half layout: the two halves of each head vector
// form the (x, y) pairs, and cos/sin tables repeat the D/2 frequencies twice ([f0..f(D/2-1), f0..f(D/2-1)]).
import * as tf from '@tensorflow/tfjs-core';
import { customGrad } from '../ops/custom-grad.js';
import { runJsKernel } from '../ops/kernels/js-kernel.js';
import { rotaryKernel } from '../ops/kernels/rotary.js';
import { opPolicy } from '../ops/policy.js';

/** cos/sin for one forward, broadcastable against [B, heads, T, D]: [B or 1, 1, T, D]. */
export interface RotaryAngles {
  cos: tf.Tensor4D;
  sin: tf.Tensor4D;
}

/**
 * Precomputed cos/sin tables [positions, D], grown on demand (doubling) up to `maxPositions`, so a model
 * with a 128k context does not allocate 128k rows for a 100-token prompt.
 */
export class RotaryEmbedding {
  private cosTable: tf.Tensor2D | null = null;
  private sinTable: tf.Tensor2D | null = null;
  private rows = 0;
  /** inv_freq[i] = 1 / theta^(2i/D), rounded to float32 as transformers computes it. */
  private readonly invFreq: Float32Array;

  constructor(
    readonly headDim: number,
    readonly theta: number,
    readonly maxPositions: number,
    /** Names the config field behind maxPositions in the "too long" error. */
    readonly maxPositionsFrom = 'max_position_embeddings',
  ) {
    const half = headDim / 2;
    this.invFreq = new Float32Array(half);
    for (let i = 0; i < half; i++) this.invFreq[i] = 1 / Math.fround(theta ** Math.fround((2 * i) / headDim));
  }

  /** Make sure the tables cover positions [0, count). */
  private ensure(count: number): void {
    if (count > this.maxPositions) {
      throw new Error(
        `sequence needs position ${count - 1}, but the model supports ${this.maxPositions} positions ` +
          `(${this.maxPositionsFrom} in its config): shorten the prompt or max new tokens`,
      );
    }
    if (count <= this.rows) return;
    const rows = Math.min(this.maxPositions, Math.max(count, 2 * this.rows, 64));
    const D = this.headDim;
    const half = D / 2;
    const cos = new Float32Array(rows * D);
    const sin = new Float32Array(rows * D);
    for (let p = 0; p < rows; p++) {
      for (let i = 0; i < half; i++) {
        const angle = Math.fround(p * this.invFreq[i]); // float32 angle, as HF's float32 matmul gives
        cos[p * D + i] = cos[p * D + half + i] = Math.cos(angle);
        sin[p * D + i] = sin[p * D + half + i] = Math.sin(angle);
      }
    }
    this.dispose();
    this.cosTable = tf.keep(tf.tensor2d(cos, [rows, D]));
    this.sinTable = tf.keep(tf.tensor2d(sin, [rows, D]));
    this.rows = rows;
  }

  /** Angles for positions start..start+T-1, the same for every row: [1, 1, T, D]. */
  range(start: number, length: number): RotaryAngles {
    this.ensure(start + length);
    const D = this.headDim;
    return {
      cos: tf.reshape(tf.slice(this.cosTable!, [start, 0], [length, D]), [1, 1, length, D]),
      sin: tf.reshape(tf.slice(this.sinTable!, [start, 0], [length, D]), [1, 1, length, D]),
    };
  }

  /** Angles for explicit positions [B, T] int32, all < `bound` (checked by the caller): [B, 1, T, D]. */
  gather(positionIds: tf.Tensor2D, bound: number): RotaryAngles {
    this.ensure(bound);
    const [B, T] = positionIds.shape;
    const flat = tf.reshape(positionIds, [-1]);
    const D = this.headDim;
    return {
      cos: tf.reshape(tf.gather(this.cosTable!, flat), [B, 1, T, D]),
      sin: tf.reshape(tf.gather(this.sinTable!, flat), [B, 1, T, D]),
    };
  }

  dispose(): void {
    this.cosTable?.dispose();
    this.sinTable?.dispose();
    this.cosTable = this.sinTable = null;
    this.rows = 0;
  }
}

/** [x1, x2] → [-x2, x1] on the last axis (HF rotate_half). */
export function rotateHalf(x: tf.Tensor4D): tf.Tensor4D {
  const half = x.shape[3] / 2;
  const [x1, x2] = tf.split(x, [half, half], 3);
  return tf.concat([tf.neg(x2), x1], 3) as tf.Tensor4D;
}

/** The adjoint of rotate_half: [g1, g2] → [g2, −g1]. */
function rotateHalfTransposed(g: tf.Tensor4D): tf.Tensor4D {
  const half = g.shape[3] / 2;
  const [g1, g2] = tf.split(g, [half, half], 3);
  return tf.concat([g2, tf.neg(g1)], 3) as tf.Tensor4D;
}

/** Whether the fused kernel takes these operands (wasm/cpu, float32, angles of x's batch or 1). */
function fusedRotary(x: tf.Tensor, cos: tf.Tensor): boolean {
  return (
    opPolicy().jsKernels &&
    x.dtype === 'float32' &&
    cos.dtype === 'float32' &&
    x.rank === 4 &&
    cos.rank === 4 &&
    (cos.shape[0] === 1 || cos.shape[0] === x.shape[0]) &&
    cos.shape[1] === 1 &&
    cos.shape[2] === x.shape[2] &&
    cos.shape[3] === x.shape[3]
  );
}

function rotate(x: tf.Tensor4D, angles: RotaryAngles, sign: 1 | -1 = 1): tf.Tensor4D {
  if (fusedRotary(x, angles.cos))
    return runJsKernel(rotaryKernel, { x, cos: angles.cos, sin: angles.sin }, { sign })[0] as tf.Tensor4D;
  if (sign === -1)
    return tf.add(
      tf.mul(x, angles.cos),
      rotateHalfTransposed(tf.mul(x, angles.sin) as tf.Tensor4D),
    ) as tf.Tensor4D;
  return tf.add(tf.mul(x, angles.cos), tf.mul(rotateHalf(x), angles.sin)) as tf.Tensor4D;
}

/**
 * x · cos + rotate_half(x) · sin, for x [B, heads, T, D]. The angles are constants (their gradient is zero),
 * so the backward dx = dy·cos + rotate_halfᵀ(dy·sin) saves only them; autodiff would also keep x,
 * rotate_half(x) and both products.
 */
const rotaryWithGrad = customGrad(([x, cos, sin]: [tf.Tensor, tf.Tensor, tf.Tensor], save) => {
  save([cos, sin]); // they die with the forward's scope otherwise
  return {
    value: rotate(x as tf.Tensor4D, { cos: cos as tf.Tensor4D, sin: sin as tf.Tensor4D }),
    gradFunc: (dy, [c, s]) => [
      rotate(dy as tf.Tensor4D, { cos: c as tf.Tensor4D, sin: s as tf.Tensor4D }, -1),
      tf.zerosLike(c),
      tf.zerosLike(s),
    ],
  };
});

export function applyRotary(x: tf.Tensor4D, angles: RotaryAngles): tf.Tensor4D {
  if (!tf.engine().isTapeOn()) return rotate(x, angles);
  return rotaryWithGrad(x, angles.cos, angles.sin) as tf.Tensor4D;
}
