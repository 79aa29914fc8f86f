// Qwen-VL's position-aware cross-attention resampler (visual.py Resampler + ln_post + proj): gridSize² learned
// queries with fixed 2D sin-cos position encodings attend once (nn.MultiheadAttention) to the LayerNormed,
// kv-projected patch features plus their own 2D position encodings; then LayerNorm and a [width, out] matrix.
// Names follow Qwen-VL's `transformer.visual.*` (`attn_pool.query`, `attn_pool.attn.in_proj_weight`, `proj`).
// Feature grids other than the query grid get encodings at scaled coordinates (Qwen-VL interpolates bicubically).
import {
  type Adapter,
  type AdapterContext,
  type FeatureLayout,
  Initializer,
  LayerNorm,
  Linear,
  linear,
  Module,
  matmul,
  tf,
} from '@vistune/core';
import type { QwenResamplerConfig } from './config.js';
import { layoutGrid, multiHeadAttention } from './layers.js';

/**
 * MAE's 2D sin-cos encoding [rows·cols, dim] at row-major cells (r, c): the first half encodes the column,
 * the second the row, each as [sin(p·ω), cos(p·ω)] with ω_k = 10000^(−k / (dim/4)); `scale` stretches positions.
 */
export function sinCos2d(
  dim: number,
  rows: number,
  cols: number,
  scale: readonly [number, number] = [1, 1],
): Float32Array {
  if (dim % 4) throw new Error(`sinCos2d: dim ${dim} must be divisible by 4`);
  const quarter = dim / 4;
  const out = new Float32Array(rows * cols * dim);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      const row = (r * cols + c) * dim;
      const halves = [c * scale[1], r * scale[0]];
      halves.forEach((p, half) => {
        for (let k = 0; k < quarter; k++) {
          const angle = p / 10000 ** (k / quarter);
          out[row + half * 2 * quarter + k] = Math.sin(angle);
          out[row + half * 2 * quarter + quarter + k] = Math.cos(angle);
        }
      });
    }
  return out;
}

/** torch.nn.MultiheadAttention's parameters: packed in_proj_weight [3E, E], in_proj_bias, out_proj. */
class PackedAttention extends Module {
  readonly in_proj_weight: tf.Variable<tf.Rank.R2>;
  readonly in_proj_bias: tf.Variable<tf.Rank.R1>;
  readonly out_proj: Linear;
  constructor(
    dim: number,
    private readonly heads: number,
    init: Initializer,
  ) {
    super();
    this.in_proj_weight = this.param('in_proj_weight', init.normal([3 * dim, dim]) as tf.Tensor2D);
    this.in_proj_bias = this.param('in_proj_bias', tf.zeros([3 * dim]) as tf.Tensor1D);
    this.out_proj = this.module('out_proj', new Linear(dim, dim, { init }));
  }

  forward(query: tf.Tensor3D, key: tf.Tensor3D, value: tf.Tensor3D): tf.Tensor3D {
    const [wq, wk, wv] = tf.split(this.in_proj_weight, 3, 0) as tf.Tensor2D[];
    const [bq, bk, bv] = tf.split(this.in_proj_bias, 3, 0) as tf.Tensor1D[];
    const y = multiHeadAttention(
      linear(query, wq as tf.Tensor2D, bq),
      linear(key, wk as tf.Tensor2D, bk),
      linear(value, wv as tf.Tensor2D, bv),
      this.heads,
    );
    return this.out_proj.forward(y) as tf.Tensor3D;
  }
}

class Resampler extends Module {
  readonly query: tf.Variable<tf.Rank.R2>;
  readonly kv_proj: Linear | undefined;
  readonly attn: PackedAttention;
  readonly ln_q: LayerNorm;
  readonly ln_kv: LayerNorm;
  constructor(c: QwenResamplerConfig, init: Initializer) {
    super();
    this.query = this.param('query', init.normal([c.gridSize ** 2, c.outDim]) as tf.Tensor2D);
    if (c.inDim !== c.outDim)
      this.kv_proj = this.module('kv_proj', new Linear(c.inDim, c.outDim, { init, bias: false }));
    this.attn = this.module('attn', new PackedAttention(c.outDim, c.heads, init));
    this.ln_q = this.module('ln_q', new LayerNorm(c.outDim, c.layerNormEps));
    this.ln_kv = this.module('ln_kv', new LayerNorm(c.outDim, c.layerNormEps));
  }
}

/** `qwen_resampler`: gridSize² slots per item. */
export class QwenResamplerAdapter extends Module implements Adapter {
  readonly inDim: number;
  readonly outDim: number;
  readonly attn_pool: Resampler;
  readonly ln_post: LayerNorm;
  readonly proj: tf.Variable<tf.Rank.R2>;
  private readonly queryPositions: tf.Tensor2D;

  constructor(
    readonly config: QwenResamplerConfig,
    init: Initializer = new Initializer({ seed: config.seed, std: config.std }),
  ) {
    super();
    this.inDim = config.inDim;
    this.outDim = config.outDim;
    this.attn_pool = this.module('attn_pool', new Resampler(config, init));
    this.ln_post = this.module('ln_post', new LayerNorm(config.outDim, config.layerNormEps));
    // Qwen-VL: proj = scale · randn(width, output_dim), applied as x @ proj.
    this.proj = this.param(
      'proj',
      init.normal([config.outDim, config.outDim], config.outDim ** -0.5) as tf.Tensor2D,
    );
    const g = config.gridSize;
    this.queryPositions = tf.keep(tf.tensor2d(sinCos2d(config.outDim, g, g), [g * g, config.outDim]));
  }

  numSlots(layout: FeatureLayout): number {
    this.grid(layout);
    return this.config.gridSize ** 2;
  }

  forward(features: tf.Tensor3D, ctx: AdapterContext): tf.Tensor3D {
    const [rows, cols] = this.grid(ctx.layout);
    const g = this.config.gridSize;
    return tf.tidy(() => {
      const N = features.shape[0];
      const p = this.attn_pool;
      const keyPositions = tf.tensor2d(sinCos2d(this.outDim, rows, cols, [g / rows, g / cols]), [
        rows * cols,
        this.outDim,
      ]);
      const x = p.ln_kv.forward(p.kv_proj ? p.kv_proj.forward(features) : features) as tf.Tensor3D;
      const q = tf.add(p.ln_q.forward(p.query), this.queryPositions);
      const queries = tf.tile(tf.expandDims(q, 0), [N, 1, 1]) as tf.Tensor3D;
      const out = p.attn.forward(queries, tf.add(x, keyPositions) as tf.Tensor3D, x);
      const flat = tf.reshape(this.ln_post.forward(out), [N * g * g, this.outDim]);
      return tf.reshape(matmul(flat, this.proj), [N, g * g, this.outDim]) as tf.Tensor3D;
    });
  }

  private grid(layout: FeatureLayout): readonly [number, number] {
    if (layout.prefixTokens > 0)
      throw new Error(
        `qwen_resampler: the features start with ${layout.prefixTokens} non-grid token(s) (CLS): select them away with strategy 'default'`,
      );
    return layoutGrid(layout, 'qwen_resampler');
  }

  override dispose(): void {
    this.queryPositions.dispose();
    super.dispose();
  }
}
