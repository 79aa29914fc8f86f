import { registerLlms } from './llm/register.js';
import { llavaFamily } from './multimodal/llava.js';
import { causalLmFamily, VISTUNE_MODEL_TYPE, vistuneFamily } from './pipeline/composite.js';
import { registerModelFamily } from './pipeline/family.js';
import { registerAnswerMetrics } from './pipeline/metrics.js';
import { registerTemplates } from './pipeline/templates.js';
import type { Registry } from './registry/types.js';

/** Adds @vistune/core's own entries (LLMs, model families) to a registry; the CLI calls every package's register(). */
export function register(registry: Registry): void {
  registerLlms(registry);
  registerAnswerMetrics(registry);
  registerTemplates(registry);
  registerModelFamily(registry, llavaFamily, {
    types: ['llava'],
    about: 'HF LlavaForConditionalGeneration folders: text_config + vision_config, legacy or new weight names',
  });
  registerModelFamily(registry, vistuneFamily, {
    types: [VISTUNE_MODEL_TYPE],
    about: 'Any composition: an LLM, any modalities (media kind, encoder, adapter, processor) and heads, by registry name',
  });
  registerModelFamily(registry, causalLmFamily, {
    types: [],
    about: 'Text-only decoders (any registered llm type) in their HF *ForCausalLM layout',
  });
}
