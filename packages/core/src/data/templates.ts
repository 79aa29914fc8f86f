// Conversation templates: a conversation → text segments, each marked supervised or not.
// Supervised = an assistant answer and its terminator (`</s>`, `<|im_end|>`, `<|eot_id|>`, plain's "\n");
// system text, role tags, user text and image tokens are not. examples.ts tokenizes the segments.
import type { ChatContentPart, ChatMessage } from '../tokenizer/chat-template.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { IMAGE_MARKER, type Turn } from './samples.js';

export interface Segment {
  text: string;
  supervised: boolean;
}

/** A media kind's marker in turn text and the tokenizer's string for its placeholder id. */
export interface MarkerToken {
  kind: string;
  marker: string;
  tokenText: string;
}

export interface TemplateContext {
  tokenizer: Tokenizer;
  /** The tokenizer's string for the image placeholder id: native templates put it where the markers are. */
  imageTokenText: string;
  /** Every media kind's marker and token text (default: `<image>` → imageTokenText only). */
  markers?: readonly MarkerToken[];
}

export interface ConversationTemplate {
  readonly name: string;
  /** Strings that must each encode as one token (add them with `tokenizer.addTokens([...], { special: true })`). */
  readonly requiredTokens: readonly string[];
  /** Segments whose concatenation is the rendered conversation. Throws TemplateMismatchError for a misfit. */
  render(turns: readonly Turn[], ctx: TemplateContext): Segment[];
}

/** The conversation does not fit the template; the sample is skipped as `template_mismatch`. */
export class TemplateMismatchError extends Error {}

export const TEMPLATE_NAMES = [
  'plain',
  'vicuna_v1',
  'llava_v1',
  'chatml',
  'llama_2',
  'llama_3',
  'hf',
] as const;
export type TemplateName = (typeof TEMPLATE_NAMES)[number];

export interface TemplateOptions {
  /** Replaces the template's default system prompt ('' = none). A system turn in the data wins over both. */
  systemPrompt?: string;
  /** hf: a Jinja source or the name of a template in tokenizer_config.json (default: the tokenizer's). */
  chatTemplate?: string;
  /**
   * hf: message content as HF processor parts ([{type:'image'}, {type:'text', text}], the default; markers
   * become image parts, text parts are trimmed) or as strings with the image token text in place of markers.
   */
  contentFormat?: 'parts' | 'string';
}

// System prompts as in LLaVA's conversation.py (vicuna_v1 says "user", llava_v1 "human").
export const VICUNA_V1_SYSTEM =
  "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.";
export const LLAVA_V1_SYSTEM =
  "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions.";
export const LLAVA_LLAMA_SYSTEM =
  'You are a helpful language and vision assistant. You are able to understand the visual content that the user provides, and assist the user with a variety of tasks using natural language.';
export const CHATML_SYSTEM = 'You are a helpful assistant.';

interface Exchange {
  user: string;
  assistant?: string;
}

/** Turns (already ordered by samples.ts) → system text and user/assistant exchanges. */
function exchanges(turns: readonly Turn[]): { system?: string; exchanges: Exchange[] } {
  const system = turns[0]?.role === 'system' ? turns[0].text : undefined;
  const out: Exchange[] = [];
  for (const turn of turns.slice(system === undefined ? 0 : 1)) {
    if (turn.role === 'user') out.push({ user: turn.text });
    else if (turn.role === 'assistant' && out.length > 0 && out[out.length - 1].assistant === undefined)
      out[out.length - 1].assistant = turn.text;
    else
      throw new TemplateMismatchError(`unexpected ${turn.role} turn (turns must alternate user/assistant)`);
  }
  return { system, exchanges: out };
}

const masked = (text: string): Segment => ({ text, supervised: false });
const supervised = (text: string): Segment => ({ text, supervised: true });
function markerTokens(ctx: TemplateContext): readonly MarkerToken[] {
  return ctx.markers ?? [{ kind: 'image', marker: IMAGE_MARKER, tokenText: ctx.imageTokenText }];
}

/** Matches any of the markers (longest first, so a marker that contains another wins). */
function markerPattern(markers: readonly MarkerToken[]): RegExp {
  const escaped = [...markers]
    .sort((a, b) => b.marker.length - a.marker.length)
    .map((m) => m.marker.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(escaped.join('|'), 'g');
}

/** The text with every media marker replaced by its placeholder token's text. */
function withMediaTokens(text: string, ctx: TemplateContext, markers = markerTokens(ctx)): string {
  if (markers.length === 0) return text;
  const tokenOf = new Map(markers.map((m) => [m.marker, m.tokenText]));
  return text.replace(markerPattern(markers), (marker) => tokenOf.get(marker) ?? marker);
}

function specialText(ctx: TemplateContext, which: 'bosToken' | 'eosToken', template: string): string {
  const token = ctx.tokenizer.specialTokens[which];
  if (token === null)
    throw new Error(
      `Template ${template} needs the tokenizer's ${which === 'bosToken' ? 'bos_token' : 'eos_token'}; set it in tokenizer_config.json.`,
    );
  return token;
}

/** LLaVA PLAIN (stage-1 pretraining): image tokens + caption + "\n"; the user's text is dropped. */
const plain: ConversationTemplate = {
  name: 'plain',
  requiredTokens: [],
  render(turns, ctx) {
    const { exchanges: ex } = exchanges(turns);
    if (ex.length !== 1 || ex[0].assistant === undefined)
      throw new TemplateMismatchError(
        'the plain template takes exactly one user turn and one assistant turn',
      );
    // The media of the user turn, in order, stand in for its text.
    const markers = markerTokens(ctx);
    const media = markers.length === 0 ? [] : (ex[0].user.match(markerPattern(markers)) ?? []);
    return [
      masked(withMediaTokens(media.join(''), ctx, markers)),
      supervised(`${withMediaTokens(ex[0].assistant, ctx)}\n`),
    ];
  },
};

/** LLaVA TWO style: `SYSTEM USER: q ASSISTANT: a</s>USER: …`. */
function twoStyle(name: string, defaultSystem: string, options: TemplateOptions): ConversationTemplate {
  return {
    name,
    requiredTokens: [],
    render(turns, ctx) {
      const { system, exchanges: ex } = exchanges(turns);
      const eos = specialText(ctx, 'eosToken', name);
      const sys = system ?? options.systemPrompt ?? defaultSystem;
      let head = sys ? `${sys} ` : '';
      const segments: Segment[] = [];
      for (const { user, assistant } of ex) {
        const prompt = `${head}USER: ${withMediaTokens(user, ctx)}`;
        head = '';
        if (assistant === undefined) {
          segments.push(masked(`${prompt} `));
          continue;
        }
        segments.push(
          masked(`${prompt} ASSISTANT:`),
          supervised(` ${withMediaTokens(assistant, ctx)}${eos}`),
        );
      }
      return segments;
    },
  };
}

/** ChatML (Qwen / LLaVA-NeXT qwen): `<|im_start|>role\n…<|im_end|>\n`; the "\n" after an answer is not supervised. */
function chatml(options: TemplateOptions): ConversationTemplate {
  const turn = (role: string, text: string) => `<|im_start|>${role}\n${text}<|im_end|>\n`;
  return {
    name: 'chatml',
    requiredTokens: ['<|im_start|>', '<|im_end|>'],
    render(turns, ctx) {
      const { system, exchanges: ex } = exchanges(turns);
      const sys = system ?? options.systemPrompt ?? CHATML_SYSTEM;
      let head = sys ? turn('system', sys) : '';
      const segments: Segment[] = [];
      for (const { user, assistant } of ex) {
        const prompt = head + turn('user', withMediaTokens(user, ctx));
        if (assistant === undefined) {
          segments.push(masked(prompt));
          continue;
        }
        segments.push(
          masked(`${prompt}<|im_start|>assistant\n`),
          supervised(`${withMediaTokens(assistant, ctx)}<|im_end|>`),
        );
        // The "\n" closing an answer opens the next prompt (so no unsupervised tail is rendered).
        head = '\n';
      }
      return segments;
    },
  };
}

/** LLaVA LLAMA_2: `[INST] <<SYS>>\nsys\n<</SYS>>\n\nq [/INST] a </s><s>[INST] q2 [/INST] a2 </s>`. */
function llama2(options: TemplateOptions): ConversationTemplate {
  return {
    name: 'llama_2',
    requiredTokens: [],
    render(turns, ctx) {
      const { system, exchanges: ex } = exchanges(turns);
      const bos = specialText(ctx, 'bosToken', 'llama_2');
      const eos = specialText(ctx, 'eosToken', 'llama_2');
      const sys = system ?? options.systemPrompt ?? LLAVA_LLAMA_SYSTEM;
      const segments: Segment[] = [];
      ex.forEach(({ user, assistant }, i) => {
        const sysBlock = i === 0 && sys ? `<<SYS>>\n${sys}\n<</SYS>>\n\n` : '';
        // The tokenizer adds the first BOS; later turns open with the BOS text, as LLaVA renders them.
        segments.push(masked(`${i === 0 ? '' : bos}[INST] ${sysBlock}${withMediaTokens(user, ctx)} [/INST]`));
        if (assistant !== undefined) segments.push(supervised(` ${withMediaTokens(assistant, ctx)} ${eos}`));
      });
      return segments;
    },
  };
}

/** Llama 3 headers: `<|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>` (BOS from the tokenizer). */
function llama3(options: TemplateOptions): ConversationTemplate {
  const header = (role: string) => `<|start_header_id|>${role}<|end_header_id|>\n\n`;
  return {
    name: 'llama_3',
    requiredTokens: ['<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'],
    render(turns, ctx) {
      const { system, exchanges: ex } = exchanges(turns);
      const sys = system ?? options.systemPrompt ?? LLAVA_LLAMA_SYSTEM;
      let head = sys ? `${header('system')}${sys}<|eot_id|>` : '';
      const segments: Segment[] = [];
      for (const { user, assistant } of ex) {
        const prompt = `${head}${header('user')}${withMediaTokens(user, ctx)}<|eot_id|>`;
        head = '';
        if (assistant === undefined) {
          segments.push(masked(prompt));
          continue;
        }
        segments.push(
          masked(`${prompt}${header('assistant')}`),
          supervised(`${withMediaTokens(assistant, ctx)}<|eot_id|>`),
        );
      }
      return segments;
    },
  };
}

/** HF processor parts: image markers become image parts; other kinds' markers stay as their token text. */
function toParts(text: string, ctx: TemplateContext): ChatContentPart[] {
  const markers = markerTokens(ctx);
  const image = markers.find((m) => m.kind === 'image');
  const others = withMediaTokens(
    text,
    ctx,
    markers.filter((m) => m !== image),
  );
  const parts: ChatContentPart[] = [];
  (image ? others.split(image.marker) : [others]).forEach((piece, i) => {
    if (i > 0) parts.push({ type: 'image' });
    const trimmed = piece.trim();
    if (trimmed) parts.push({ type: 'text', text: trimmed });
  });
  return parts;
}

/**
 * Any HF chat template. For each assistant turn: render the conversation before it with the generation
 * prompt (masked) and with the answer (the difference is supervised). Each rendering must extend the
 * previous one, or the sample is a template_mismatch (e.g. templates that rewrite earlier turns).
 */
function hf(options: TemplateOptions): ConversationTemplate {
  return {
    name: 'hf',
    requiredTokens: [],
    render(turns, ctx) {
      const messages: ChatMessage[] = turns.map(({ role, text }) => ({
        role,
        content: options.contentFormat === 'string' ? withMediaTokens(text, ctx) : toParts(text, ctx),
      }));
      if (messages[0]?.role !== 'system' && options.systemPrompt)
        messages.unshift({
          role: 'system',
          content:
            options.contentFormat === 'string'
              ? options.systemPrompt
              : [{ type: 'text', text: options.systemPrompt }],
        });
      const apply = (upTo: number, addGenerationPrompt: boolean) => {
        try {
          return ctx.tokenizer.applyChatTemplate(messages.slice(0, upTo), {
            addGenerationPrompt,
            chatTemplate: options.chatTemplate,
          });
        } catch (error) {
          throw new TemplateMismatchError((error as Error).message);
        }
      };
      const extend = (rendered: string, longer: string, what: string) => {
        if (!longer.startsWith(rendered))
          throw new TemplateMismatchError(
            `the chat template's rendering ${what} does not start with the rendering before it, so labels cannot be assigned by prefix`,
          );
        return longer.slice(rendered.length);
      };
      const segments: Segment[] = [];
      let rendered = '';
      messages.forEach((message, i) => {
        if (message.role !== 'assistant') return;
        const prompt = apply(i, true);
        const full = apply(i + 1, false);
        segments.push(
          masked(extend(rendered, prompt, `up to message ${i}`)),
          supervised(extend(prompt, full, `of assistant message ${i}`)),
        );
        rendered = full;
      });
      const rest = extend(rendered, apply(messages.length, false), 'of the whole conversation');
      if (rest) segments.push(masked(rest));
      return segments;
    },
  };
}

/** A template by name; options set the system prompt and, for hf, the Jinja source and content format. */
export function getTemplate(
  name: TemplateName | string,
  options: TemplateOptions = {},
): ConversationTemplate {
  switch (name) {
    case 'plain':
      return plain;
    case 'vicuna_v1':
    case 'v1':
      return twoStyle('vicuna_v1', VICUNA_V1_SYSTEM, options);
    case 'llava_v1':
      return twoStyle('llava_v1', LLAVA_V1_SYSTEM, options);
    case 'chatml':
      return chatml(options);
    case 'llama_2':
      return llama2(options);
    case 'llama_3':
      return llama3(options);
    case 'hf':
      return hf(options);
    default:
      throw new Error(`Unknown conversation template "${name}": use one of ${TEMPLATE_NAMES.join(', ')}.`);
  }
}
