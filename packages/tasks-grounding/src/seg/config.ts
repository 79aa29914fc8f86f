// Config of the `lisa_seg` head (registry kind `head`), with LISA's / SAM's values as the defaults where they
// carry over (loss weights, decoder depth and width ratios) and camelCase keys like the adapters'.
import { z } from 'zod';
import type { LisaSegHeadOptions } from './head.js';

const dim = z.number().int().positive();

export const lisaSegDecoderSchema = z.strictObject({
  /** Transformer / prompt width (SAM: 256, LISA's text_hidden_fcs out_dim). Multiple of 4 and of heads. */
  dim: dim.default(256),
  heads: dim.default(8),
  /** Two-way blocks (SAM: 2). */
  depth: dim.default(2),
  mlpDim: dim.default(2048),
  /** SAM: cross attentions at dim / 2. */
  crossAttentionDownsample: dim.default(2),
  /** Channels after each ×2 upscaling step; default [dim/4, dim/8] as SAM. */
  upscaleChannels: z.array(dim).min(1).optional(),
  /** Per-pixel MLP of the processed RGB added at full resolution (off in SAM; helps coarse patch grids). */
  pixelSkip: z.boolean().default(false),
});

export const lisaSegHeadSchema = z
  .strictObject({
    type: z.literal('lisa_seg').default('lisa_seg'),
    /** Head name (batch.headTargets key, parameter prefix heads.<name>). */
    name: z.string().min(1).default('lisa_seg'),
    /** Id of [SEG] after tokenizer.addTokens(['[SEG]'], { special: true }). */
    triggerTokenId: z.number().int().min(0),
    /** -1: the state that predicts [SEG] (LISA's seg_token_mask); 0: [SEG]'s own state. */
    readOffset: z.union([z.literal(-1), z.literal(0)]).default(-1),
    llmHiddenSize: dim,
    /** Hidden size of the vision encoder the decoder reads. */
    visionHiddenSize: dim,
    /** Media key of the images (the model's image modality). */
    modality: z.string().min(1).default('image'),
    /** hidden_states index of the encoder read by the decoder (-1 = last layer). */
    visionLayer: z.number().int().default(-1),
    decoder: lisaSegDecoderSchema.prefault({}),
    /** LISA: bce_loss_weight 2.0, dice_loss_weight 0.5 (ce_loss_weight 1.0 is the model's text loss). */
    bceWeight: z.number().min(0).default(2.0),
    diceWeight: z.number().min(0).default(0.5),
    /** LISA's dice_loss scale and eps (scale 1, eps 1 gives the Mask2Former "+1" form). */
    diceScale: z.number().positive().default(1000),
    diceEps: z.number().positive().default(1e-6),
    lossWeight: z.number().min(0).default(1.0),
    seed: z.number().int().default(0),
    /** `fan_in`: weights ~ N(0, 1/fan_in), embeddings N(0, 1) (PyTorch-default scale, as SAM's decoder);
     * `fixed`: everything ~ N(0, std²) (HF initializer_range; too small for narrow heads). */
    init: z.enum(['fan_in', 'fixed']).default('fan_in'),
    std: z.number().positive().default(0.02),
  })
  .superRefine((c, ctx) => {
    const d = c.decoder;
    if (d.dim % 4 !== 0 || d.dim % d.heads !== 0)
      ctx.addIssue({
        code: 'custom',
        path: ['decoder', 'dim'],
        message: `dim ${d.dim} must be a multiple of 4 (positional encoding) and of heads (${d.heads})`,
      });
    if ((d.dim / d.crossAttentionDownsample) % d.heads !== 0)
      ctx.addIssue({
        code: 'custom',
        path: ['decoder', 'crossAttentionDownsample'],
        message: `dim / crossAttentionDownsample = ${d.dim / d.crossAttentionDownsample} must be a multiple of heads (${d.heads})`,
      });
  });
export type LisaSegHeadConfig = z.output<typeof lisaSegHeadSchema>;
export type LisaSegHeadInput = z.input<typeof lisaSegHeadSchema>;

/** Keys with the same name and meaning in the registry config and the constructor options. */
const SHARED_KEYS = [
  'name',
  'triggerTokenId',
  'readOffset',
  'llmHiddenSize',
  'modality',
  'visionLayer',
  'bceWeight',
  'diceWeight',
  'diceScale',
  'diceEps',
  'lossWeight',
  'seed',
  'init',
  'std',
] as const;
type SharedOptions = Pick<LisaSegHeadOptions, (typeof SHARED_KEYS)[number]>;
const shared = (from: SharedOptions): SharedOptions =>
  Object.fromEntries(SHARED_KEYS.map((k) => [k, from[k]])) as SharedOptions;

/** Validated config → the head's constructor options. */
export function lisaSegHeadOptions(c: LisaSegHeadConfig): LisaSegHeadOptions {
  const d = c.decoder;
  return {
    ...shared(c),
    decoder: {
      ...d,
      upscaleChannels: d.upscaleChannels ?? [Math.max(1, d.dim / 4), Math.max(1, d.dim / 8)],
      visionDim: c.visionHiddenSize,
    },
  };
}

/** The head's constructor options → its registry config (what model.save records in config.json `vistune_heads`). */
export function lisaSegHeadConfig(o: LisaSegHeadOptions): LisaSegHeadConfig {
  const { visionDim, upscaleChannels, ...decoder } = o.decoder;
  return {
    type: 'lisa_seg',
    ...shared(o),
    visionHiddenSize: visionDim,
    decoder: { ...decoder, upscaleChannels: [...upscaleChannels] },
  };
}
