// What a saved model folder records beyond weights: the plugins its parts come from, its chat settings, and
// HF's processor_config.json.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { MultimodalModel } from '../multimodal/model.js';
import type { Registry, RegistryKind } from '../registry/types.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { ChatSettings, CompositionConfig } from './types.js';

export const chatSettingsSchema = z.looseObject({
  template: z.string().min(1).optional(),
  system_prompt: z.string().optional(),
});

/** Packages whose entries ship with vistune: never recorded as plugins. */
const BUILTIN_ORIGIN = /^@vistune\//;

/** Every (kind, type) a composition names. */
function partsOf(composition: CompositionConfig): [RegistryKind, string][] {
  const parts: [RegistryKind, string][] = [['llm', composition.llm.type]];
  for (const m of Object.values(composition.modalities)) {
    parts.push(['media', m.media], ['encoder', m.encoder.type], ['adapter', m.adapter.type]);
    if (m.processor) parts.push(['processor', m.processor.type]);
  }
  for (const head of composition.heads) parts.push(['head', head.type]);
  return parts;
}

/**
 * The plugins a composition needs: the origins of its entries that are not built in (package names, or file
 * paths for file plugins), after `known` (the list read from the folder), without repeats.
 */
export function pluginsUsed(
  registry: Registry,
  composition: CompositionConfig,
  known: readonly string[] = [],
): string[] {
  const out = new Set(known);
  for (const [kind, type] of partsOf(composition)) {
    if (!registry.has(kind, type)) continue;
    const { origin } = registry.get(kind, type);
    if (!BUILTIN_ORIGIN.test(origin) && origin !== '(app)') out.add(origin);
  }
  return [...out];
}

/** HF LlavaProcessor's processor_config.json: the image token text and how many tokens an image takes. */
export async function writeLlavaProcessorConfig(
  dir: string,
  model: MultimodalModel & { config: { imageTokenId: number; vision: Record<string, unknown> } },
  tokenizer: Tokenizer,
): Promise<void> {
  const image = model.modalities.get('image');
  const vision = model.config.vision as { num_channels?: number; image_size?: number; patch_size?: number };
  const size = vision.image_size ?? 224;
  const layout = image?.encoder.featureLayout([vision.num_channels ?? 3, size, size]);
  const processor = {
    processor_class: 'LlavaProcessor',
    image_token: tokenizer.idToToken(model.config.imageTokenId) ?? '<image>',
    patch_size: vision.patch_size,
    num_additional_image_tokens: layout?.prefixTokens ?? 0,
    vision_feature_select_strategy: image?.select.strategy ?? 'default',
  };
  await writeFile(join(dir, 'processor_config.json'), `${JSON.stringify(processor, null, 2)}\n`);
}

/** config.json `vistune_chat` → ChatSettings. */
export function chatFromJson(
  json: z.output<typeof chatSettingsSchema> | undefined,
): ChatSettings | undefined {
  if (!json) return undefined;
  return { template: json.template, systemPrompt: json.system_prompt };
}

/** ChatSettings → config.json `vistune_chat` (undefined when nothing is recorded). */
export function chatToJson(chat: ChatSettings | undefined): Record<string, string> | undefined {
  if (!chat || (chat.template === undefined && chat.systemPrompt === undefined)) return undefined;
  return {
    ...(chat.template === undefined ? {} : { template: chat.template }),
    ...(chat.systemPrompt === undefined ? {} : { system_prompt: chat.systemPrompt }),
  };
}
