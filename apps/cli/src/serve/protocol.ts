// The OpenAI chat-completions wire format as vistune serve reads and writes it: request validation (sampling
// fields checked by the same parsers as the CLI's flags), errors in OpenAI's `{ error: {…} }` shape, and the
// response / stream-chunk objects.
import type { StopReason } from '@vistune/core';
import { z } from '@vistune/core';
import {
  parseNonNegative,
  parseNonNegativeInt,
  parsePositive,
  parsePositiveInt,
  parseProbability,
  type SamplingFlags,
} from '../options.js';

/** A request error with the HTTP status and OpenAI error fields it is answered with. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly type = status === 401
      ? 'authentication_error'
      : status >= 500
        ? 'server_error'
        : 'invalid_request_error',
  ) {
    super(message);
  }

  toJSON() {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

const urlPart = z.union([z.string(), z.object({ url: z.string(), detail: z.string().optional() })]);

const contentPart = z.union([
  z.object({ type: z.literal('text'), text: z.string() }),
  z.object({ type: z.literal('image_url'), image_url: urlPart }),
  // vistune extension for plugin media kinds: { type: 'points_url', points_url: { url } }.
  z.object({ type: z.string().regex(/^[a-z][a-z0-9_]*_url$/) }).catchall(z.unknown()),
]);

const message = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  content: z.union([z.string(), z.array(contentPart), z.null()]),
  name: z.string().optional(),
});

const numberField = z.union([z.number(), z.null()]).optional();

export const chatRequestSchema = z
  .object({
    model: z.string().optional(),
    messages: z.array(message).min(1),
    max_tokens: numberField,
    max_completion_tokens: numberField,
    temperature: numberField,
    top_p: numberField,
    top_k: numberField,
    repetition_penalty: numberField,
    seed: numberField,
    stop: z.union([z.string(), z.array(z.string()).max(8), z.null()]).optional(),
    stream: z.boolean().nullable().optional(),
    stream_options: z.object({ include_usage: z.boolean().optional() }).nullable().optional(),
    n: numberField,
    /** vLLM's extension: keep generating past the end-of-sequence token. */
    ignore_eos: z.boolean().optional(),
  })
  .loose();

export type ChatRequest = z.infer<typeof chatRequestSchema>;
export type ChatMessageIn = ChatRequest['messages'][number];
export type ContentPartIn = Exclude<ChatMessageIn['content'], string | null>[number];

/** Parses the body; the first problem is reported with its JSON path as `param`. */
export function parseChatRequest(body: unknown): ChatRequest {
  const parsed = chatRequestSchema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const param = issue.path.join('.') || null;
  throw new ApiError(400, `${param ?? 'request body'}: ${issue.message}`, param);
}

/** One number field through the CLI flag parser of the same meaning (same bounds, same message). */
function checked(
  req: ChatRequest,
  field: keyof ChatRequest,
  parse: (value: string) => number,
): number | undefined {
  const value = req[field];
  if (value === undefined || value === null) return undefined;
  try {
    return parse(String(value));
  } catch (err) {
    throw new ApiError(400, `${String(field)}: ${(err as Error).message}`, String(field));
  }
}

/** The request's sampling fields over the server's defaults (its --max-new-tokens, --temperature … flags). */
export function samplingFlagsFor(req: ChatRequest, defaults: SamplingFlags): SamplingFlags {
  const n = checked(req, 'n', parsePositiveInt);
  if (n !== undefined && n !== 1) throw new ApiError(400, 'n: only n = 1 is supported', 'n');
  const maxTokens =
    checked(req, 'max_completion_tokens', parsePositiveInt) ?? checked(req, 'max_tokens', parsePositiveInt);
  const stop = req.stop === null || req.stop === undefined ? defaults.stop : [req.stop].flat();
  if (stop?.some((s) => s === '')) throw new ApiError(400, 'stop: stop sequences must not be empty', 'stop');
  return {
    maxNewTokens: maxTokens ?? defaults.maxNewTokens,
    temperature: checked(req, 'temperature', parseNonNegative) ?? defaults.temperature,
    topP: checked(req, 'top_p', parseProbability) ?? defaults.topP,
    topK: checked(req, 'top_k', parsePositiveInt) ?? defaults.topK,
    repetitionPenalty: checked(req, 'repetition_penalty', parsePositive) ?? defaults.repetitionPenalty,
    seed: checked(req, 'seed', parseNonNegativeInt) ?? defaults.seed,
    stop: stop?.length ? stop : undefined,
    eos: req.ignore_eos === undefined ? defaults.eos : !req.ignore_eos,
  };
}

/** OpenAI's finish_reason for a generation stop reason. */
export function finishReason(reason: StopReason | 'length'): 'stop' | 'length' {
  if (reason === 'length') return 'length';
  return reason.type === 'max_new_tokens' ? 'length' : 'stop';
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export function usage(promptTokens: number, completionTokens: number): Usage {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
}
