// transformers.js-style one-call pipeline: `const ask = await pipeline('image-text-to-text', dir)` then
// `await ask({ image: 'cat.png', text: 'What is this?' })` → [{ generated_text }].
import {
  type LoadModelOptions,
  loadModel,
  type MediaSource,
  type VisionLanguageModel,
  type VlmGenerateOptions,
  type VlmMessage,
  type VlmRequest,
} from './model.js';

export type PipelineTask = 'image-text-to-text' | 'text-generation' | 'any-to-text';

/** One prompt: text plus media items keyed by kind (`image`, `video`, a plugin's kind), or whole messages. */
export type PipelineInput =
  | string
  | ({ text: string } & { [kind: string]: string | MediaSource | readonly MediaSource[] | undefined })
  | { messages: readonly VlmMessage[]; media?: Readonly<Record<string, readonly MediaSource[]>> };

export interface PipelineOutput {
  generated_text: string;
}

export interface Pipeline {
  (input: PipelineInput, opts?: VlmGenerateOptions): Promise<PipelineOutput[]>;
  readonly model: VisionLanguageModel;
  dispose(): void;
}

/** The request of a pipeline input: media parts first (LLaVA processors' convention), then the text. */
function toRequest(input: PipelineInput): VlmRequest {
  if (typeof input === 'string') return { messages: [{ role: 'user', content: input }] };
  if ('messages' in input && Array.isArray(input.messages)) {
    const { messages, media } = input as { messages: readonly VlmMessage[]; media?: VlmRequest['media'] };
    return { messages, media };
  }
  const { text, ...rest } = input as { text: string } & Record<string, unknown>;
  const media: Record<string, MediaSource[]> = {};
  for (const [kind, value] of Object.entries(rest)) {
    if (value === undefined) continue;
    media[kind] = Array.isArray(value) ? [...(value as MediaSource[])] : [value as MediaSource];
  }
  const parts = Object.entries(media).flatMap(([kind, items]) => items.map(() => ({ type: kind })));
  return { messages: [{ role: 'user', content: [...parts, { type: 'text' as const, text }] }], media };
}

/** Loads `dir` once and returns a function that answers prompts. */
export async function pipeline(
  task: PipelineTask,
  dir: string,
  opts: LoadModelOptions & { generate?: VlmGenerateOptions } = {},
): Promise<Pipeline> {
  const vlm = await loadModel(dir, opts);
  if (task === 'image-text-to-text' && ![...vlm.modalities.values()].some((m) => m.kind.name === 'image')) {
    vlm.dispose();
    throw new Error(
      `pipeline('image-text-to-text'): ${dir} takes no images; use 'any-to-text' or 'text-generation'`,
    );
  }
  const run = async (input: PipelineInput, generate: VlmGenerateOptions = {}) => {
    const out = await vlm.generate(toRequest(input), { maxNewTokens: 64, ...opts.generate, ...generate });
    return [{ generated_text: out.text }];
  };
  return Object.assign(run, { model: vlm, dispose: () => vlm.dispose() });
}
