// LLaMA-family decoder config: parsed from a Hugging Face config.json object (snake_case at the boundary,
// camelCase inside), with the defaults of transformers' LlamaConfig / Qwen2Config / MistralConfig.
import { z } from 'zod';
import { formatZodIssues } from '../registry/zod-issues.js';

export const LLAMA_MODEL_TYPES = ['llama', 'qwen2', 'mistral'] as const;
export type LlamaModelType = (typeof LLAMA_MODEL_TYPES)[number];

export interface LlamaConfig {
  modelType: LlamaModelType;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  /** GQA: query heads share key/value heads in groups of numAttentionHeads / numKeyValueHeads. */
  numKeyValueHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  /** Longest sequence (prompt + generated) the model accepts. */
  maxPositionEmbeddings: number;
  /** Which config field set maxPositionEmbeddings (an active sliding window caps it: inside it attention is full). */
  maxPositionsFrom: 'max_position_embeddings' | 'sliding_window';
  tieWordEmbeddings: boolean;
  /** Biases of q/k/v_proj (HF attention_bias; always on for Qwen2). */
  qkvBias: boolean;
  /** Bias of o_proj (HF attention_bias; always off for Qwen2). */
  oProjBias: boolean;
  mlpBias: boolean;
  hiddenAct: 'silu';
  initializerRange: number;
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
}

/** transformers' class defaults for fields a config.json may omit (LLaVA text_configs omit most). */
const HF_DEFAULTS: Record<LlamaModelType, Record<string, unknown>> = {
  llama: {
    vocab_size: 32000,
    hidden_size: 4096,
    intermediate_size: 11008,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: false,
    attention_bias: false,
    mlp_bias: false,
    bos_token_id: 1,
    eos_token_id: 2,
  },
  qwen2: {
    vocab_size: 151936,
    hidden_size: 4096,
    intermediate_size: 22016,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: 32,
    max_position_embeddings: 32768,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: false,
    use_sliding_window: false,
    sliding_window: 4096,
  },
  mistral: {
    vocab_size: 32000,
    hidden_size: 4096,
    intermediate_size: 14336,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: 8,
    max_position_embeddings: 4096 * 32,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: false,
    sliding_window: 4096,
    bos_token_id: 1,
    eos_token_id: 2,
  },
};

const positiveInt = z.number().int().positive();
const tokenId = z.number().int().nonnegative();

const hfLlamaConfigSchema = z.looseObject({
  model_type: z.enum(LLAMA_MODEL_TYPES),
  vocab_size: positiveInt,
  hidden_size: positiveInt,
  intermediate_size: positiveInt,
  num_hidden_layers: positiveInt,
  num_attention_heads: positiveInt,
  num_key_value_heads: positiveInt.nullish(),
  head_dim: positiveInt.nullish(),
  rms_norm_eps: z.number().positive(),
  rope_theta: z.number().positive().optional(),
  rope_scaling: z.looseObject({ rope_type: z.string().optional(), type: z.string().optional() }).nullish(),
  // transformers v5 moves rope_theta / rope_scaling into rope_parameters.
  rope_parameters: z
    .looseObject({ rope_type: z.string().optional(), rope_theta: z.number().positive().optional() })
    .nullish(),
  max_position_embeddings: positiveInt,
  tie_word_embeddings: z.boolean(),
  attention_bias: z.boolean().optional(),
  mlp_bias: z.boolean().optional(),
  hidden_act: z.string().default('silu'),
  initializer_range: z.number().positive().default(0.02),
  sliding_window: positiveInt.nullish(),
  use_sliding_window: z.boolean().optional(),
  partial_rotary_factor: z.number().optional(),
  bos_token_id: tokenId.nullish(),
  eos_token_id: z.union([tokenId, z.array(tokenId)]).nullish(),
  pad_token_id: tokenId.nullish(),
});

function unsupported(source: string, field: string, value: unknown, supported: string): Error {
  return new Error(
    `${source}: ${field} = ${JSON.stringify(value)} is not supported (supported: ${supported})`,
  );
}

/** Sliding window that actually restricts attention (null when inactive or wider than the context). */
function activeSlidingWindow(hf: z.output<typeof hfLlamaConfigSchema>): number | null {
  const window = hf.sliding_window ?? null;
  if (window === null || window >= hf.max_position_embeddings) return null;
  if (hf.model_type === 'qwen2' && !hf.use_sliding_window) return null;
  if (hf.model_type === 'llama') return null; // LlamaConfig has no sliding window: the field is ignored there
  return window;
}

/**
 * Parse a LLaMA / Qwen2 / Mistral config.json object. `source` (the file) is named in every error, together
 * with the field and what is supported.
 */
export function parseLlamaConfig(json: unknown, source = 'config.json'): LlamaConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new Error(
      `${source}: expected a JSON object with the LLM config, got ${json === null ? 'null' : typeof json}`,
    );
  }
  const raw = json as Record<string, unknown>;
  const modelType = raw.model_type ?? 'llama';
  if (typeof modelType !== 'string' || !(LLAMA_MODEL_TYPES as readonly string[]).includes(modelType)) {
    throw unsupported(source, 'model_type', modelType, LLAMA_MODEL_TYPES.join(', '));
  }
  const withDefaults = { ...HF_DEFAULTS[modelType as LlamaModelType], ...raw, model_type: modelType };
  const parsed = hfLlamaConfigSchema.safeParse(withDefaults);
  if (!parsed.success)
    throw new Error(`${source} is invalid:\n  ${formatZodIssues(parsed.error).join('\n  ')}`);
  const hf = parsed.data;

  const act = hf.hidden_act === 'swish' ? 'silu' : hf.hidden_act;
  if (act !== 'silu') throw unsupported(source, 'hidden_act', hf.hidden_act, '"silu"');
  for (const [field, scaling] of [
    ['rope_scaling', hf.rope_scaling],
    ['rope_parameters', hf.rope_parameters],
  ] as const) {
    const ropeType =
      scaling?.rope_type ?? (scaling && 'type' in scaling ? scaling.type : undefined) ?? 'default';
    if (ropeType !== 'default')
      throw unsupported(source, `${field}.rope_type`, ropeType, 'null or "default" (plain RoPE)');
  }
  if (hf.partial_rotary_factor !== undefined && hf.partial_rotary_factor !== 1) {
    throw unsupported(
      source,
      'partial_rotary_factor',
      hf.partial_rotary_factor,
      '1 (rotary on the whole head)',
    );
  }
  const heads = hf.num_attention_heads;
  const kvHeads = hf.num_key_value_heads ?? heads;
  if (heads % kvHeads !== 0) {
    throw new Error(
      `${source}: num_attention_heads (${heads}) must be a multiple of num_key_value_heads (${kvHeads})`,
    );
  }
  if (hf.head_dim == null && hf.hidden_size % heads !== 0) {
    throw new Error(
      `${source}: hidden_size (${hf.hidden_size}) is not divisible by num_attention_heads (${heads}); set head_dim`,
    );
  }
  const headDim = hf.head_dim ?? hf.hidden_size / heads;
  if (headDim % 2 !== 0)
    throw new Error(`${source}: head_dim (${headDim}) must be even for rotary embeddings`);

  const window = activeSlidingWindow(hf);
  // Qwen2 hard-codes q/k/v biases and no o_proj bias; Mistral has no biases at all (attention_bias is ignored).
  const qwen2 = hf.model_type === 'qwen2';
  const llama = hf.model_type === 'llama';
  const eos = hf.eos_token_id ?? [];
  return {
    modelType: hf.model_type,
    vocabSize: hf.vocab_size,
    hiddenSize: hf.hidden_size,
    intermediateSize: hf.intermediate_size,
    numHiddenLayers: hf.num_hidden_layers,
    numAttentionHeads: heads,
    numKeyValueHeads: kvHeads,
    headDim,
    rmsNormEps: hf.rms_norm_eps,
    ropeTheta: hf.rope_parameters?.rope_theta ?? hf.rope_theta ?? 10000,
    maxPositionEmbeddings: window ?? hf.max_position_embeddings,
    maxPositionsFrom: window === null ? 'max_position_embeddings' : 'sliding_window',
    tieWordEmbeddings: hf.tie_word_embeddings,
    qkvBias: qwen2 || (llama && (hf.attention_bias ?? false)),
    oProjBias: llama && (hf.attention_bias ?? false),
    mlpBias: llama && (hf.mlp_bias ?? false),
    hiddenAct: 'silu',
    initializerRange: hf.initializer_range,
    bosTokenId: hf.bos_token_id ?? null,
    eosTokenIds: Array.isArray(eos) ? eos : [eos],
    padTokenId: hf.pad_token_id ?? null,
  };
}

const ARCHITECTURES: Record<LlamaModelType, string> = {
  llama: 'LlamaForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  mistral: 'MistralForCausalLM',
};

/**
 * The config.json object transformers would write for this config. parseLlamaConfig of it gives back the
 * same model; an active sliding window is written as the max_position_embeddings it capped.
 */
export function llamaConfigToHf(config: LlamaConfig, torchDtype = 'float32'): Record<string, unknown> {
  const c = config;
  const biases = { qkv: c.qkvBias, o: c.oProjBias, mlp: c.mlpBias };
  const expressible =
    c.modelType === 'qwen2'
      ? biases.qkv && !biases.o && !biases.mlp
      : c.modelType === 'mistral'
        ? !biases.qkv && !biases.o && !biases.mlp
        : biases.qkv === biases.o;
  if (!expressible) {
    throw new Error(
      `llamaConfigToHf: biases ${JSON.stringify(biases)} cannot be written as model_type ${c.modelType} ` +
        '(llama: one attention_bias for q/k/v/o_proj; qwen2: q/k/v only; mistral: none)',
    );
  }
  const eos =
    c.eosTokenIds.length === 0 ? null : c.eosTokenIds.length === 1 ? c.eosTokenIds[0] : c.eosTokenIds;
  return {
    architectures: [ARCHITECTURES[c.modelType]],
    model_type: c.modelType,
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numHiddenLayers,
    num_attention_heads: c.numAttentionHeads,
    num_key_value_heads: c.numKeyValueHeads,
    head_dim: c.headDim,
    hidden_act: c.hiddenAct,
    max_position_embeddings: c.maxPositionEmbeddings,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    rope_scaling: null,
    tie_word_embeddings: c.tieWordEmbeddings,
    ...(c.modelType === 'llama'
      ? { attention_bias: c.qkvBias, mlp_bias: c.mlpBias }
      : { sliding_window: null }),
    initializer_range: c.initializerRange,
    bos_token_id: c.bosTokenId,
    eos_token_id: eos,
    pad_token_id: c.padTokenId,
    torch_dtype: torchDtype,
  };
}
