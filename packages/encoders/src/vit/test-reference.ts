// Test-only: a naive float64 CLIP/SigLIP vision transformer in plain loops, written from the HF definitions
// (conv patch embedding by direct indexing, no reshapes), to check the tensor implementation against.
import type { VisionTransformerConfig } from './config.js';

/** [tokens][features]. */
export type Matrix = Float64Array[];

type Params = ReadonlyMap<string, Float64Array>;

function get(params: Params, name: string): Float64Array {
  const v = params.get(`vision_model.${name}`);
  if (!v) throw new Error(`reference: missing parameter vision_model.${name}`);
  return v;
}

/** y = W x + b with W [out, in] row-major. */
function affine(
  x: Float64Array,
  w: Float64Array,
  b: Float64Array | undefined,
  rowOffset = 0,
  out = b?.length ?? 0,
): Float64Array {
  const inDim = x.length;
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = b ? b[rowOffset + o] : 0;
    for (let i = 0; i < inDim; i++) s += w[(rowOffset + o) * inDim + i] * x[i];
    y[o] = s;
  }
  return y;
}

function layerNorm(x: Float64Array, w: Float64Array, b: Float64Array, eps: number): Float64Array {
  let mean = 0;
  for (const v of x) mean += v / x.length;
  let variance = 0;
  for (const v of x) variance += (v - mean) ** 2 / x.length;
  return x.map((v, i) => ((v - mean) / Math.sqrt(variance + eps)) * w[i] + b[i]);
}

function act(name: string, v: number): number {
  if (name === 'quick_gelu') return v / (1 + Math.exp(-1.702 * v));
  if (name === 'gelu_pytorch_tanh')
    return 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
  throw new Error(`reference: activation ${name} not covered`);
}

/** Multi-head attention of `queries` over `keys`/`values` (already projected), heads split on the feature axis. */
function attend(queries: Matrix, keys: Matrix, values: Matrix, heads: number): Matrix {
  const d = queries[0].length;
  const dh = d / heads;
  return queries.map((q) => {
    const out = new Float64Array(d);
    for (let h = 0; h < heads; h++) {
      const scores = keys.map((k) => {
        let s = 0;
        for (let j = 0; j < dh; j++) s += q[h * dh + j] * k[h * dh + j];
        return s / Math.sqrt(dh);
      });
      const top = Math.max(...scores);
      const e = scores.map((s) => Math.exp(s - top));
      const z = e.reduce((a, c) => a + c, 0);
      values.forEach((v, t) => {
        for (let j = 0; j < dh; j++) out[h * dh + j] += (e[t] / z) * v[h * dh + j];
      });
    }
    return out;
  });
}

function mlp(params: Params, prefix: string, x: Float64Array, c: VisionTransformerConfig): Float64Array {
  const h = affine(x, get(params, `${prefix}.fc1.weight`), get(params, `${prefix}.fc1.bias`)).map((v) =>
    act(c.hiddenAct, v),
  );
  return affine(h, get(params, `${prefix}.fc2.weight`), get(params, `${prefix}.fc2.bias`));
}

function block(params: Params, l: number, x: Matrix, c: VisionTransformerConfig): Matrix {
  const p = (n: string) => get(params, `encoder.layers.${l}.${n}`);
  const normed = x.map((r) => layerNorm(r, p('layer_norm1.weight'), p('layer_norm1.bias'), c.layerNormEps));
  const proj = (n: string) =>
    normed.map((r) => affine(r, p(`self_attn.${n}.weight`), p(`self_attn.${n}.bias`)));
  const attn = attend(proj('q_proj'), proj('k_proj'), proj('v_proj'), c.numAttentionHeads);
  const h = x.map((r, t) =>
    r.map((v, j) => v + affine(attn[t], p('self_attn.out_proj.weight'), p('self_attn.out_proj.bias'))[j]),
  );
  return h.map((r) => {
    const m = mlp(
      params,
      `encoder.layers.${l}.mlp`,
      layerNorm(r, p('layer_norm2.weight'), p('layer_norm2.bias'), c.layerNormEps),
      c,
    );
    return r.map((v, j) => v + m[j]);
  });
}

/** image [C][H][W] → HF outputs for one image. */
export function naiveVisionTransformer(
  c: VisionTransformerConfig,
  params: Params,
  image: number[][][],
): { hiddenStates: Matrix[]; lastHiddenState: Matrix; pooled: Float64Array } {
  const d = c.hiddenSize;
  const p = c.patchSize;
  const grid = c.imageSize / p;
  const isClip = c.modelType === 'clip_vision_model';
  const kernel = get(params, 'embeddings.patch_embedding.weight'); // [d, C, p, p]
  const kernelBias = isClip ? undefined : get(params, 'embeddings.patch_embedding.bias');
  let x: Matrix = isClip ? [get(params, 'embeddings.class_embedding').slice()] : [];
  for (let gy = 0; gy < grid; gy++) {
    for (let gx = 0; gx < grid; gx++) {
      const e = new Float64Array(d);
      for (let o = 0; o < d; o++) {
        let s = kernelBias ? kernelBias[o] : 0;
        for (let ch = 0; ch < c.numChannels; ch++) {
          for (let ky = 0; ky < p; ky++) {
            for (let kx = 0; kx < p; kx++)
              s += kernel[((o * c.numChannels + ch) * p + ky) * p + kx] * image[ch][gy * p + ky][gx * p + kx];
          }
        }
        e[o] = s;
      }
      x.push(e);
    }
  }
  const pos = get(params, 'embeddings.position_embedding.weight');
  x = x.map((r, t) => r.map((v, j) => v + pos[t * d + j]));
  if (isClip)
    x = x.map((r) =>
      layerNorm(r, get(params, 'pre_layrnorm.weight'), get(params, 'pre_layrnorm.bias'), c.layerNormEps),
    );
  const hiddenStates: Matrix[] = [x];
  for (let l = 0; l < c.numHiddenLayers; l++) hiddenStates.push(block(params, l, hiddenStates[l], c));
  const last = hiddenStates[c.numHiddenLayers];
  const post = (r: Float64Array) =>
    layerNorm(r, get(params, 'post_layernorm.weight'), get(params, 'post_layernorm.bias'), c.layerNormEps);
  if (isClip) return { hiddenStates, lastHiddenState: last, pooled: post(last[0]) };

  const lastHiddenState = last.map(post);
  // SigLIP head: packed in_proj rows [q; k; v], probe query, then out_proj and a residual MLP.
  const w = get(params, 'head.attention.in_proj_weight');
  const b = get(params, 'head.attention.in_proj_bias');
  const q = [affine(get(params, 'head.probe'), w, b, 0, d)];
  const k = lastHiddenState.map((r) => affine(r, w, b, d, d));
  const v = lastHiddenState.map((r) => affine(r, w, b, 2 * d, d));
  const attended = affine(
    attend(q, k, v, c.numAttentionHeads)[0],
    get(params, 'head.attention.out_proj.weight'),
    get(params, 'head.attention.out_proj.bias'),
  );
  const m = mlp(
    params,
    'head.mlp',
    layerNorm(
      attended,
      get(params, 'head.layernorm.weight'),
      get(params, 'head.layernorm.bias'),
      c.layerNormEps,
    ),
    c,
  );
  return { hiddenStates, lastHiddenState, pooled: attended.map((a, j) => a + m[j]) };
}
