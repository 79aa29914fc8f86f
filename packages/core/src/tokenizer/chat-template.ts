// Chat templates: pick the Jinja source (option, chat_template file, tokenizer_config.json) and render it.
import { Template } from '@huggingface/jinja';
import type { NamedChatTemplate } from './tokenizer-files.js';

export interface ChatTextPart {
  type: 'text';
  text: string;
}

export interface ChatImagePart {
  type: 'image';
  /** Optional reference to the image (path / url); templates only look at `type`. */
  image?: string;
}

export type ChatContentPart = ChatTextPart | ChatImagePart;

/** One chat turn; `content` is a plain string or, as Hugging Face processors use it, a list of parts. */
export interface ChatMessage {
  role: string;
  content: string | ChatContentPart[];
}

export interface ApplyChatTemplateOptions {
  /** Append the assistant turn header (`add_generation_prompt` in the template). Default false. */
  addGenerationPrompt?: boolean;
  /** A Jinja template source, or the name of one of the named templates in tokenizer_config.json. */
  chatTemplate?: string;
  /** Extra variables for the template (e.g. `tools`, `system_message`); they override the defaults. */
  extra?: Record<string, unknown>;
}

/** Every template a tokenizer knows: an unnamed default and/or named ones, and the places that were searched. */
export interface ChatTemplateSet {
  templates: Map<string, string>;
  searched: string[];
}

export const DEFAULT_TEMPLATE_NAME = 'default';

/** Normalises `tokenizer_config.json#chat_template` (string or [{name, template}]) plus a template file into one map. */
export function collectChatTemplates(
  configTemplate: string | NamedChatTemplate[] | undefined,
  fileTemplate: string | undefined,
  searched: string[],
): ChatTemplateSet {
  const templates = new Map<string, string>();
  if (typeof configTemplate === 'string') templates.set(DEFAULT_TEMPLATE_NAME, configTemplate);
  else if (Array.isArray(configTemplate))
    for (const { name, template } of configTemplate) templates.set(name, template);
  // A separate template file overrides the default of tokenizer_config.json, as transformers does.
  if (fileTemplate !== undefined) templates.set(DEFAULT_TEMPLATE_NAME, fileTemplate);
  return { templates, searched };
}

export function selectChatTemplate(set: ChatTemplateSet, requested: string | undefined): string {
  if (requested !== undefined) return set.templates.get(requested) ?? requested;
  const template = set.templates.get(DEFAULT_TEMPLATE_NAME);
  if (template !== undefined) return template;
  if (set.templates.size > 0) {
    const names = [...set.templates.keys()].join(', ');
    throw new Error(
      `The tokenizer has named chat templates (${names}) but none called "${DEFAULT_TEMPLATE_NAME}"; ` +
        'pass one with applyChatTemplate(messages, { chatTemplate: "<name>" }).',
    );
  }
  throw new Error(
    `No chat template found; looked at ${set.searched.join(', ')}. ` +
      'Pass one with applyChatTemplate(messages, { chatTemplate: "<jinja source>" }) or add "chat_template" to tokenizer_config.json.',
  );
}

const compiledTemplates = new Map<string, Template>();

function compile(source: string): Template {
  let template = compiledTemplates.get(source);
  if (template === undefined) {
    template = new Template(source);
    compiledTemplates.set(source, template);
  }
  return template;
}

/** Renders `source` with the context transformers gives chat templates (the library defines raise_exception, strftime_now). */
export function renderChatTemplate(
  source: string,
  messages: readonly ChatMessage[],
  specialTokens: Record<string, string | string[]>,
  options: ApplyChatTemplateOptions,
): string {
  const context: Record<string, unknown> = {
    messages,
    add_generation_prompt: options.addGenerationPrompt ?? false,
    ...specialTokens,
    ...options.extra,
  };
  try {
    return compile(source).render(context);
  } catch (error) {
    const hint = messages.some((m) => typeof m.content === 'string')
      ? ' Multimodal templates iterate content parts: pass content as [{ type: "text", text }] / { type: "image" }.'
      : '';
    throw new Error(`Chat template failed to render: ${(error as Error).message}.${hint}`, { cause: error });
  }
}
