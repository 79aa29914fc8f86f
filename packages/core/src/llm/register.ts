// Registry entries for the LLaMA-family decoders: kind 'llm', names llama / qwen2 / mistral.
//   llm: { type: qwen2, path: ./Qwen2-0.5B }                       ← pretrained HF folder
//   llm: { type: llama, config: { hidden_size: 256, ... }, seed: 0 } ← random init from HF config fields
import { z } from 'zod';
import type { Registry } from '../registry/types.js';
import { LLAMA_MODEL_TYPES, type LlamaModelType, parseLlamaConfig } from './config.js';
import { LlamaForCausalLM } from './llama.js';
import { loadCausalLM } from './weights.js';

export const llamaLlmConfigSchema = z
  .strictObject({
    /** Hugging Face folder with config.json + safetensors. */
    path: z.string().min(1).optional(),
    /** Sub-model prefix inside a composite checkpoint (e.g. 'language_model.'); default detected. */
    prefix: z.string().optional(),
    /** HF config.json fields for a randomly initialised model (model_type comes from the entry name). */
    config: z.record(z.string(), z.unknown()).optional(),
    /** Seed of the random init. */
    seed: z.number().int().default(0),
  })
  .refine((c) => (c.path === undefined) !== (c.config === undefined), {
    message: 'give either path (a pretrained HF folder) or config (HF config fields, random init), not both',
  });

const SIZE_FIELDS = [
  'hidden_size',
  'intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'vocab_size',
];

const ABOUT: Record<LlamaModelType, string> = {
  llama: 'LLaMA decoder (HF LlamaForCausalLM: RoPE, GQA, SwiGLU, RMSNorm)',
  qwen2: 'Qwen2 decoder (HF Qwen2ForCausalLM: LLaMA with q/k/v biases)',
  mistral: 'Mistral decoder (HF MistralForCausalLM; positions capped at an active sliding window)',
};

/**
 * Adds the llm entries llama, qwen2 and mistral. They produce LlamaForCausalLM (a CausalLM & Module); the
 * 'llm' kind is not typed through RegistryKinds yet because registry.test.ts registers a placeholder llm.
 */
export function registerLlms(registry: Registry): void {
  for (const name of LLAMA_MODEL_TYPES) {
    registry.add({
      kind: 'llm',
      name,
      about: ABOUT[name],
      hf: { types: [name] },
      schema: llamaLlmConfigSchema,
      create: async (c, ctx): Promise<LlamaForCausalLM> => {
        const where = ctx.path || 'llm';
        if (c.config) {
          // transformers would default these to a 7B model: a random-init config must state them.
          const missing = SIZE_FIELDS.filter((f) => c.config![f] === undefined);
          if (missing.length)
            throw new Error(
              `${where}.config: missing ${missing.join(', ')} (sizes of the model to initialise)`,
            );
          const config = parseLlamaConfig({ ...c.config, model_type: name }, `${where}.config`);
          return new LlamaForCausalLM(config, { seed: c.seed });
        }
        const model = await loadCausalLM(c.path!, { prefix: c.prefix });
        if (model.config.modelType !== name) {
          model.dispose();
          throw new Error(
            `${where}: type '${name}' but ${c.path} holds a ${model.config.modelType} model: set type: ${model.config.modelType}`,
          );
        }
        return model;
      },
    });
  }
}
