// Conversation templates as registry entries (kind `template`), so recipes, eval and plugins name them alike.
import { z } from 'zod';
import { type ConversationTemplate, getTemplate, TEMPLATE_NAMES } from '../data/templates.js';
import type { Registry } from '../registry/types.js';

export const templateEntrySchema = z.object({
  /** Replaces the template's default system prompt ('' = none). */
  systemPrompt: z.string().optional(),
  /** hf: a Jinja source or the name of a template in tokenizer_config.json. */
  chatTemplate: z.string().optional(),
  /** hf: message content as processor parts or as strings. */
  contentFormat: z.enum(['parts', 'string']).optional(),
});

const ABOUT: Record<(typeof TEMPLATE_NAMES)[number], string> = {
  plain: "LLaVA stage-1 'plain': the media, then the answer (no roles, no system prompt)",
  vicuna_v1: 'Vicuna v1 (LLaVA-1.5): "USER: … ASSISTANT: …</s>" with the Vicuna system prompt',
  llava_v1: 'LLaVA v1: "###Human: … ###Assistant: …" with the LLaVA system prompt',
  chatml: 'ChatML (Qwen): <|im_start|>role … <|im_end|>',
  llama_2: 'Llama 2 chat: [INST] <<SYS>> … <</SYS>> … [/INST]',
  llama_3: 'Llama 3 instruct: <|start_header_id|>role<|end_header_id|> … <|eot_id|>',
  hf: "The tokenizer's own Jinja chat template (tokenizer_config.json), supervised on the assistant turns",
};

/** Adds the built-in conversation templates. */
export function registerTemplates(registry: Registry): void {
  for (const name of TEMPLATE_NAMES) {
    registry.add({
      kind: 'template',
      name,
      about: ABOUT[name],
      schema: templateEntrySchema,
      create: (c): ConversationTemplate => getTemplate(name, c),
    });
  }
}
