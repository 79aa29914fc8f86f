// Chat templates: pick the Jinja source (option, chat_template file, tokenizer_config.json) and render it
// under a time and output-size budget: a template comes with a downloaded model folder, and a loop over
// range(10**9) must end in an error naming the template, not a hung or out-of-memory process.
import { Environment, Interpreter, Template } from '@huggingface/jinja';
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
  /** Rendering budget; default DEFAULT_TEMPLATE_LIMITS. */
  limits?: Partial<TemplateLimits>;
}

/** What one rendering may cost before it is stopped with an error. */
export interface TemplateLimits {
  /** Wall-clock milliseconds. */
  timeoutMs: number;
  /** Characters of output (of the whole rendering and of any piece of it). */
  maxOutputChars: number;
}

export const DEFAULT_TEMPLATE_LIMITS: TemplateLimits = { timeoutMs: 3000, maxOutputChars: 1 << 20 };

/** Every template a tokenizer knows: an unnamed default and/or named ones, and the places that were searched. */
export interface ChatTemplateSet {
  templates: Map<string, string>;
  searched: string[];
  /** Template name → the file (and field) it was read from, for error messages. */
  origins: Map<string, string>;
}

export const DEFAULT_TEMPLATE_NAME = 'default';

/** Normalises `tokenizer_config.json#chat_template` (string or [{name, template}]) plus a template file into one map. */
export function collectChatTemplates(
  configTemplate: string | NamedChatTemplate[] | undefined,
  fileTemplate: string | undefined,
  searched: string[],
  where: { config?: string; file?: string } = {},
): ChatTemplateSet {
  const templates = new Map<string, string>();
  const origins = new Map<string, string>();
  const config = where.config ?? 'tokenizer_config.json';
  if (typeof configTemplate === 'string') {
    templates.set(DEFAULT_TEMPLATE_NAME, configTemplate);
    origins.set(DEFAULT_TEMPLATE_NAME, `${config} (chat_template)`);
  } else if (Array.isArray(configTemplate)) {
    for (const { name, template } of configTemplate) {
      templates.set(name, template);
      origins.set(name, `${config} (chat_template "${name}")`);
    }
  }
  // A separate template file overrides the default of tokenizer_config.json, as transformers does.
  if (fileTemplate !== undefined) {
    templates.set(DEFAULT_TEMPLATE_NAME, fileTemplate);
    origins.set(DEFAULT_TEMPLATE_NAME, where.file ?? 'the chat template file');
  }
  return { templates, searched, origins };
}

/** Where the template selectChatTemplate picks for `requested` came from. */
export function chatTemplateOrigin(set: ChatTemplateSet, requested: string | undefined): string {
  const name = requested ?? DEFAULT_TEMPLATE_NAME;
  return set.origins.get(name) ?? (requested !== undefined ? 'the chatTemplate option' : 'the chat template');
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

/** Too slow or too large a rendering; the message names the template. */
export class TemplateLimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateLimitError';
  }
}

type RuntimeValue = ReturnType<Interpreter['evaluate']>;

/** The library's interpreter with a clock and an output meter checked as it evaluates each node. */
class BoundedInterpreter extends Interpreter {
  private evaluations = 0;
  private produced = 0;
  private readonly deadline: number;

  constructor(
    env: Environment,
    private readonly limits: TemplateLimits,
  ) {
    super(env);
    this.deadline = performance.now() + limits.timeoutMs;
    // A loop with an empty body evaluates no node per iteration, only this (private in the typings) block call.
    const self = this as unknown as { evaluateBlock: (...a: unknown[]) => RuntimeValue };
    const evaluateBlock = self.evaluateBlock.bind(this);
    self.evaluateBlock = (...a: unknown[]) => {
      this.tick();
      return evaluateBlock(...a);
    };
  }

  private tick(): void {
    if ((++this.evaluations & 255) === 0 && performance.now() > this.deadline)
      throw new TemplateLimitError(`rendering took longer than ${this.limits.timeoutMs} ms`);
  }

  override evaluate(...args: Parameters<Interpreter['evaluate']>): RuntimeValue {
    this.tick();
    const value = super.evaluate(...args);
    if (value.type === 'StringValue') {
      const length = (value.value as string).length;
      this.produced += length;
      // Nested blocks count their text once per level; 32× the cap allows deep nesting of a legitimate output.
      if (length > this.limits.maxOutputChars || this.produced > 32 * this.limits.maxOutputChars)
        throw new TemplateLimitError(`rendering produced more than ${this.limits.maxOutputChars} characters`);
    }
    return value;
  }
}

/**
 * Most numbers one range() may make: the library builds a scope object per item before a loop's first
 * iteration (~6 µs each, beyond the clock's reach), so the list length bounds that uninterruptible pause.
 */
const MAX_RANGE = 10_000;

/** Jinja's range(), refusing to build more than `max` numbers at once. */
function boundedRange(max: number) {
  return (start: number, stop?: number, step = 1): number[] => {
    const [from, to] = stop === undefined ? [0, start] : [start, stop];
    if (step === 0) throw new Error('range() step must not be zero');
    const count = Math.max(0, Math.ceil((to - from) / step));
    if (!(count <= max)) throw new TemplateLimitError(`range() of ${count} numbers (more than ${max})`);
    return Array.from({ length: count }, (_, i) => from + i * step);
  };
}

/** Python strftime for the codes chat templates use (%Y %m %d %b %B %H %M %%), as the library's strftime_now. */
function strftimeNow(format: string): string {
  const now = new Date();
  const pad2 = (n: number) => String(n).padStart(2, '0');
  const codes: Record<string, () => string> = {
    '%Y': () => String(now.getFullYear()),
    '%m': () => pad2(now.getMonth() + 1),
    '%d': () => pad2(now.getDate()),
    '%b': () => new Intl.DateTimeFormat(undefined, { month: 'short' }).format(now),
    '%B': () => new Intl.DateTimeFormat(undefined, { month: 'long' }).format(now),
    '%H': () => pad2(now.getHours()),
    '%M': () => pad2(now.getMinutes()),
    '%%': () => '%',
  };
  return format.replace(/%[YmdbBHM%]/g, (code) => codes[code]());
}

/** Template.render with bounded time, output and range(); the globals are the library's (setupGlobals). */
function renderBounded(template: Template, context: Record<string, unknown>, limits: TemplateLimits): string {
  const env = new Environment();
  const constants: [string, boolean | null][] = [
    ['false', false],
    ['true', true],
    ['none', null],
    ['True', true],
    ['False', false],
    ['None', null],
  ];
  for (const [name, value] of constants) env.set(name, value);
  env.set('raise_exception', (message: unknown) => {
    throw new Error(String(message));
  });
  env.set('range', boundedRange(MAX_RANGE));
  env.set('strftime_now', strftimeNow);
  for (const [key, value] of Object.entries(context)) env.set(key, value);
  const result = new BoundedInterpreter(env, limits).run(template.parsed);
  return String(result.value);
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

/**
 * Renders `source` with the context transformers gives chat templates (raise_exception, strftime_now), within
 * options.limits; `origin` names the template's file in errors.
 */
export function renderChatTemplate(
  source: string,
  messages: readonly ChatMessage[],
  specialTokens: Record<string, string | string[]>,
  options: ApplyChatTemplateOptions,
  origin = 'the chat template',
): string {
  const context: Record<string, unknown> = {
    messages,
    add_generation_prompt: options.addGenerationPrompt ?? false,
    ...specialTokens,
    ...options.extra,
  };
  const limits = { ...DEFAULT_TEMPLATE_LIMITS, ...options.limits };
  let template: Template;
  try {
    template = compile(source);
  } catch (error) {
    throw new Error(`Chat template ${origin} does not parse: ${(error as Error).message}`, { cause: error });
  }
  try {
    return renderBounded(template, context, limits);
  } catch (error) {
    if (error instanceof TemplateLimitError)
      throw new TemplateLimitError(
        `Chat template ${origin}: ${error.message}: the template loops too long or builds too much text; fix or replace it (chatTemplate option)`,
      );
    const hint = messages.some((m) => typeof m.content === 'string')
      ? ' Multimodal templates iterate content parts: pass content as [{ type: "text", text }] / { type: "image" }.'
      : '';
    throw new Error(`Chat template ${origin} failed to render: ${(error as Error).message}.${hint}`, {
      cause: error,
    });
  }
}
