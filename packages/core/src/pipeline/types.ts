// The pipeline's contracts: what a package registers so that every command (train, eval, generate, chat,
// serve) can build, load, save, feed and score a model it has never heard of. Core keeps only the lookups.
import type * as tf from '@tensorflow/tfjs-core';
import type { HeadTargetsReader } from '../data/types.js';
import type { MediaInputs, MultimodalModel } from '../multimodal/model.js';
import type { FeatureSelect, HeadConfig } from '../multimodal/types.js';
import type { ComponentConfig, Registry } from '../registry/types.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

/**
 * A media kind (registry kind `media`): how records name it, how its files are recognised and which marker
 * stands for one item in a conversation. The item's tensor comes from the modality's processor.
 */
export interface MediaKind {
  /** Registry name; also the record field (`image`, `video`, `audio`, `points`) and the CLI flag (`--image`). */
  readonly name: string;
  /** Placeholder in conversation text for one item ('<image>', '<video>'). */
  readonly marker: string;
  /** Lower-case file extensions with the dot ('.png'); `chat /attach` and `--media` pick the kind by these. */
  readonly extensions: readonly string[];
  /** One line for `vistune registry` and the CLI's help. */
  readonly about?: string;
}

/** One media item after preprocessing: the tensor the modality's encoder takes, plus its geometry. */
export interface ProcessedMedia {
  /** E.g. an image [3, H, W], a video [T, 3, H, W], points [P, C], log-mel [mels, frames]. */
  tensor: tf.Tensor;
  /**
   * Maps coordinates between the original file and the tensor (images: an ImageTransform, which box codecs
   * and mask heads read); absent where the kind has no geometry.
   */
  transform?: unknown;
  /** Size of the original (width, height, frames, points …) for reports and overlays. */
  original?: Readonly<Record<string, number>>;
}

/**
 * Preprocessing for one modality (registry kind `processor`): a file or bytes → the encoder's input.
 * Image processors read/write HF `preprocessor_config.json`.
 */
export interface MediaProcessor {
  /** The media kind it reads. */
  readonly media: string;
  process(source: string | Uint8Array): Promise<ProcessedMedia>;
  /** False when process() may return different values for the same source (random crops, frame sampling). */
  readonly deterministic?: boolean;
  /** The registry config that recreates it (with its `type`), saved with the model. */
  processorConfig(): ComponentConfig;
  /** Writes its HF file into a model folder (image processors: preprocessor_config.json). */
  save?(dir: string): Promise<void>;
}

/** One modality of a composition: its media kind, placeholder and the registry configs of its parts. */
export interface ModalityConfig {
  /** Registered media kind of its items (default: the modality's name). */
  media: string;
  /** Placeholder token id in the LLM's vocabulary (ids outside it are allowed, LLaVA's -200). */
  placeholderTokenId: number;
  encoder: ComponentConfig;
  select: FeatureSelect;
  adapter: ComponentConfig;
  /** How files of this modality become encoder inputs (registry kind `processor`). */
  processor?: ComponentConfig;
}

/** Template and system prompt the model was trained with (recorded on save, used by eval/generate/chat). */
export interface ChatSettings {
  template?: string;
  systemPrompt?: string;
}

/**
 * A whole model as data: the LLM, any number of modalities, heads, and the plugins its parts come from.
 * Every config names a registry entry by `type`.
 */
export interface CompositionConfig {
  llm: ComponentConfig;
  modalities: Readonly<Record<string, ModalityConfig>>;
  heads: readonly HeadConfig[];
  /** Plugins (package names or paths) that registered any part; loaded before the parts are created. */
  plugins: readonly string[];
  chat?: ChatSettings;
}

/** What a generation hands to answer annotators (heads that act after generation, location codecs). */
export interface AnswerContext {
  /** The model that generated (a head may run a second pass over prompt + answer, as LISA does). */
  model: MultimodalModel;
  /** Prompt ids with placeholders expanded, and the generated ids. */
  promptIds: readonly number[];
  answerIds: readonly number[];
  /** The decoded answer. */
  text: string;
  /** Encoder inputs per modality, as given to the model. */
  media: MediaInputs;
  /** Per modality: each item's preprocessing result (geometry for boxes and masks). */
  processed: Readonly<Record<string, readonly ProcessedMedia[]>>;
}

/** Structured output a head or codec derives from an answer: boxes, masks, points … */
export interface AnswerAnnotation {
  /** Merged into `--json` output and API results (e.g. `{ boxes: [...] }`, `{ masks: [...] }`). */
  json: Record<string, unknown>;
  /** Human-readable lines printed after the answer. */
  lines: string[];
  /** Draws the annotation over the first image: reads `input` (PNG/JPEG), writes a PNG to `output`. */
  draw?(input: string, output: string): Promise<void>;
}

/** A head or codec that annotates answers after generation (registered parts opt in by implementing it). */
export interface AnswerAnnotator {
  annotate(ctx: AnswerContext): AnswerAnnotation | undefined | Promise<AnswerAnnotation | undefined>;
}

/** What a task family's hooks receive: the model being set up, its tokenizer, the registry, the recipe's task config. */
export interface TaskContext {
  model: MultimodalModel;
  tokenizer: Tokenizer;
  registry: Registry;
  /** The recipe's `task:` object (with its `type`), or `{ type }` when named on the command line. */
  config: Readonly<Record<string, unknown>>;
}

/**
 * A task family (registry kind `task`): what is specific to grounding, segmentation, video QA, 3D … — which
 * media its records carry, how a model is set up to train on it (tokens, heads), which head targets its data
 * files hold, and how its answers are scored. `vistune train/eval` use it by name (recipe `task:`, `--task`).
 */
export interface TaskFamily {
  readonly name: string;
  /** Media kinds its records carry; the model needs a modality of each. */
  readonly media: readonly string[];
  /** Adapts the model before training (adds trigger tokens and heads); returns the model to train (may be new). */
  prepareModel?(ctx: TaskContext): Promise<MultimodalModel> | MultimodalModel;
  /** Reads per-record head targets (masks for a [SEG] head …) from the training records. */
  targets?(ctx: TaskContext): HeadTargetsReader | undefined;
  /** Metric configs (registry kind `metric`, each an AnswerMetric) `vistune eval` scores answers with. */
  readonly metrics?: readonly ComponentConfig[];
}

/** One answered turn, as a metric sees it. */
export interface ScoredAnswer {
  prediction: string;
  reference: string;
  question: string;
  /** The raw record (JSON as in the file): metrics may read extra fields (boxes, labels …). */
  record: unknown;
  /** Geometry of the record's media items, by modality (box metrics map coordinates with it). */
  processed: Readonly<Record<string, readonly ProcessedMedia[]>>;
}

/**
 * An answer metric (registry kind `metric`): scores each answer in [0, 1] (undefined: does not apply to this
 * answer, e.g. a box metric on a yes/no question) and reports the mean over the answers it applied to.
 */
export interface AnswerMetric {
  readonly name: string;
  score(answer: ScoredAnswer): number | undefined;
}
