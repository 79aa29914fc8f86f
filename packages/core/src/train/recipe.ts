// Training recipes (YAML or JSON): the model to start from, the data, and stages run in order, each with its
// own trainable set, lr schedule and optional LoRA (LLaVA: stage 1 aligns the projector, stage 2 tunes it
// with the LLM). Relative paths are resolved against the recipe file's folder.
import { readFile } from 'node:fs/promises';
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { formatZodIssues } from '../registry/zod-issues.js';

const SCHEDULES = ['constant', 'constant_with_warmup', 'linear', 'cosine', 'cosine_with_min_lr'] as const;

const globs = z.array(z.string().min(1));

const loraSchema = z.strictObject({
  r: z.number().int().positive(),
  alpha: z.number().positive(),
  /** PEFT / LLaVA default 0.05. */
  dropout: z.number().min(0).lt(1).default(0.05),
  /** Globs on module paths of the Linears to wrap. */
  targets: globs.min(1),
});

const paramGroupSchema = z.strictObject({
  patterns: globs.min(1),
  lr: z.number().positive().optional(),
  weightDecay: z.number().min(0).optional(),
});

const stageSchema = z
  .strictObject({
    /** Used in folder names (adapters/<name>). */
    name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'use letters, digits, _ . - only'),
    /** Chat template of this stage's data (LLaVA: plain for alignment); default data.template. */
    template: z.string().min(1).optional(),
    /** Parameter globs to train; everything else is frozen. */
    train: globs.default([]),
    /** Parameter globs frozen again after `train` (e.g. embeddings inside `llm.*`). */
    freeze: globs.default([]),
    lr: z.number().positive(),
    epochs: z.number().positive().optional(),
    steps: z.number().int().positive().optional(),
    warmupRatio: z.number().min(0).lt(1).default(0),
    /** Wins over warmupRatio when given. */
    warmupSteps: z.number().int().min(0).optional(),
    schedule: z.enum(SCHEDULES).default('cosine'),
    /** Floor of cosine_with_min_lr as a fraction of lr. */
    minLrRatio: z.number().min(0).max(1).optional(),
    /** Default optimizer.weightDecay; never applied to biases and norm weights. */
    weightDecay: z.number().min(0).optional(),
    /** Per-parameter lr / decay (LLaVA LoRA: the projector at 2e-5 while LoRA runs at 2e-4); first match wins. */
    paramGroups: z.array(paramGroupSchema).default([]),
    /** Overrides data.batchSize for this stage. */
    batchSize: z.number().int().positive().optional(),
    /** Overrides optimizer.accumulate for this stage. */
    accumulate: z.number().int().positive().optional(),
    lora: loraSchema.optional(),
  })
  .superRefine((s, ctx) => {
    if (s.epochs !== undefined && s.steps !== undefined)
      ctx.addIssue({ code: 'custom', path: ['steps'], message: 'give epochs or steps, not both' });
    if (s.epochs === undefined && s.steps === undefined)
      ctx.addIssue({ code: 'custom', path: ['epochs'], message: 'missing: give epochs (e.g. 1) or steps' });
    if (s.train.length === 0 && !s.lora)
      ctx.addIssue({
        code: 'custom',
        path: ['train'],
        message: 'nothing to train: list parameter globs or add lora',
      });
  });

/** What the recipe held, for error messages: `number 3`, `an empty string`, `an object`, `null`. */
function received(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length ? 'a list' : 'an empty list';
  if (value === '') return 'an empty string';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value)}`;
}

/**
 * One data file, or a list read in order into one data set (e.g. image-text and text-only records for
 * mixture-of-modality training). Hand-written rather than a zod union so the error names the bad entry.
 */
const dataFilesSchema = z.unknown().transform((value, ctx): string | string[] => {
  if (typeof value === 'string' && value.length > 0) return value;
  if (Array.isArray(value) && value.length > 0) {
    const bad = value.flatMap((entry: unknown, i) =>
      typeof entry === 'string' && entry.length > 0 ? [] : [i],
    );
    for (const i of bad)
      ctx.addIssue({
        code: 'custom',
        path: [i],
        message: `expected a data file path (a non-empty string), got ${received(value[i])}`,
      });
    return bad.length ? z.NEVER : (value as string[]);
  }
  ctx.addIssue({
    code: 'custom',
    message:
      value === undefined
        ? 'missing (expected a data file path or a list of them)'
        : `expected a data file path or a non-empty list of them, got ${received(value)}`,
  });
  return z.NEVER;
});

const dataSchema = z.strictObject({
  /** LLaVA-format JSON / JSONL (list of {id, image, conversations}); a list of files is read as one data set. */
  train: dataFilesSchema,
  /** Folder the samples' image paths are relative to. */
  images: z.string().min(1).optional(),
  /** Held-out data, one file or a list like `train`. */
  val: dataFilesSchema.optional(),
  template: z.string().min(1).default('vicuna_v1'),
  /** Replaces the template's default system prompt ('' = none), e.g. for a small vocabulary without its words. */
  systemPrompt: z.string().optional(),
  maxLength: z.number().int().positive().default(2048),
  batchSize: z.number().int().positive().default(1),
  /** Batches of similar length (LLaVA --group_by_modality_length). */
  groupByLength: z.boolean().default(false),
  /**
   * Token lengths where a length bucket ends (tf.data bucket_by_sequence_length): each batch holds examples of
   * one bucket, so a few long samples do not pad every batch. Not with groupByLength.
   */
  lengthBuckets: z.array(z.number().int().positive()).min(1).optional(),
  /** Fail when more than this fraction of the records is skipped (loader default 0.2; 1 never fails). */
  maxSkipFraction: z.number().min(0).max(1).optional(),
  /** Fail at the first skipped record, naming its file:line, id and reason. */
  strict: z.boolean().default(false),
  /** Skip records with a turn longer than this many characters (loader default 100 000). */
  maxTurnChars: z.number().int().positive().optional(),
  /** MB of decoded media kept in memory across epochs (0: decode every time). */
  mediaCacheMB: z.number().min(0).default(1024),
});

const optimizerSchema = z.strictObject({
  type: z.enum(['adamw', 'sgd']).default('adamw'),
  betas: z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]).default([0.9, 0.999]),
  eps: z.number().positive().default(1e-8),
  /** SGD only. */
  momentum: z.number().min(0).lt(1).default(0),
  weightDecay: z.number().min(0).default(0),
  /** Max global gradient norm (HF max_grad_norm); null disables clipping. */
  clip: z.number().positive().nullable().default(1.0),
  /** Micro-batches per optimizer step. */
  accumulate: z.number().int().positive().default(1),
});

const checkpointSchema = z.strictObject({
  /** Default <output>/checkpoints. */
  dir: z.string().min(1).optional(),
  /** Save every N optimizer steps (0: only at the end). */
  every: z.number().int().min(0).default(500),
  /** Newest checkpoints to keep; null keeps all. */
  keep: z.number().int().positive().nullable().default(3),
  /**
   * Keep the checkpoint with the lowest validation loss of the current stage out of pruning (written with a
   * loadable model folder at the step it was reached); needs `validation`.
   */
  keepBest: z.boolean().default(false),
});

const validationSchema = z.strictObject({
  /** Optimizer steps between validations; 0 = only at the end of each stage (always validated there too). */
  every: z.number().int().min(0).default(100),
  /** Batches of data.val scored per validation, always the same ones (file order); null = all of them. */
  batches: z.number().int().positive().nullable().default(null),
  /** Samples per validation batch; default the stage's batch size. */
  batchSize: z.number().int().positive().optional(),
  /** Also score the batches with the media shuffled across samples (val_loss_shuffled): does the model use them? */
  shuffledControl: z.boolean().default(true),
  /** Early stopping: end the stage after this many validations in a row without improvement. */
  patience: z.number().int().positive().optional(),
  /** An improvement must lower the best val loss by more than this. */
  minDelta: z.number().min(0).default(0),
});

const parallelSchema = z.strictObject({
  /**
   * Model replicas training each step's micro-batches side by side, one per core (this process's thread and
   * workers − 1 worker_threads); 1 trains in one thread. Needs the wasm or cpu backend and lora.dropout 0.
   */
  workers: z.number().int().positive().default(1),
});

const DURATION = /^(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m(?!s))?\s*(?:(\d+(?:\.\d+)?)s)?$/;

/**
 * Seconds of a duration: a number of seconds, or a string such as `30s`, `15m`, `1h`, `1h30m`, `90` (seconds).
 * Throws naming the accepted forms.
 */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value > 0) return value;
    throw new Error(`expected a positive duration, got ${value}`);
  }
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return parseDuration(Number(text));
  const m = DURATION.exec(text);
  const seconds = m ? Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0) : 0;
  if (!m || text === '' || !(seconds > 0))
    throw new Error(`expected a duration such as 30s, 15m, 1h or 1h30m (or seconds), got '${value}'`);
  return seconds;
}

const durationSchema = z.union([z.number(), z.string()]).transform((v, ctx) => {
  try {
    return parseDuration(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

const budgetObjectSchema = z.strictObject({
  /** Wall-clock training time: the run plans its steps to end within it, then saves the model. */
  time: durationSchema,
  /** Steps timed before the first fixed plan (the plan follows every step until then). */
  calibrationSteps: z.number().int().positive().default(3),
  /** Seconds kept free for the final validation and model save; default 3% of the budget. */
  reserve: durationSchema.optional(),
});

/** `budget: 15m` or `budget: { time: 15m, calibrationSteps, reserve }`. */
const budgetSchema = z.preprocess(
  (v) => (typeof v === 'string' || typeof v === 'number' ? { time: v } : v),
  budgetObjectSchema,
);

/** `output: runs/x` or `output: { dir: runs/x, model: best }`. */
const outputSchema = z.union([
  z.string().min(1),
  z.strictObject({
    dir: z.string().min(1),
    /** What <output>/model holds at the end: the last weights, or the best validated checkpoint's. */
    model: z.enum(['last', 'best']).default('last'),
  }),
]);

/** Where the model comes from: a path (model config file or model folder), a pretrained folder, or an inline config. */
export type RecipeModel =
  | { kind: 'path'; path: string }
  | { kind: 'pretrained'; dir: string }
  | { kind: 'config'; config: Record<string, unknown> };

const modelSchema = z.unknown().transform((value, ctx): RecipeModel => {
  if (typeof value === 'string' && value.length > 0) return { kind: 'path', path: value };
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const obj = value as Record<string, unknown>;
    if ('from' in obj) {
      const extra = Object.keys(obj).filter((k) => k !== 'from');
      if (typeof obj.from !== 'string' || obj.from.length === 0)
        ctx.addIssue({ code: 'custom', path: ['from'], message: 'expected the path of a model folder' });
      else if (extra.length)
        ctx.addIssue({ code: 'custom', message: `'from' takes no other keys (got ${extra.join(', ')})` });
      else return { kind: 'pretrained', dir: obj.from };
      return z.NEVER;
    }
    return { kind: 'config', config: obj };
  }
  ctx.addIssue({
    code: 'custom',
    message: 'expected a model file/folder path, { from: <model folder> } or an inline model config',
  });
  return z.NEVER;
});

export const recipeSchema = z
  .strictObject({
    model: modelSchema,
    data: dataSchema,
    stages: z.array(stageSchema).min(1),
    optimizer: optimizerSchema.prefault({}),
    checkpoint: checkpointSchema.prefault({}),
    /** Data parallelism over worker threads (train/parallel.ts). */
    parallel: parallelSchema.prefault({}),
    seed: z.number().int().min(0).default(42),
    /** Plugins (package names, or paths relative to the recipe) whose registry entries the recipe uses. */
    plugins: z.array(z.string().min(1)).default([]),
    /** The task family (registry kind `task`) that owns the data's media, head targets and scoring. */
    task: z.looseObject({ type: z.string().min(1) }).optional(),
    /** Output heads (registry kind `head`) added to the model before training, e.g. LISA's [SEG] mask head. */
    heads: z.array(z.looseObject({ type: z.string().min(1) })).default([]),
    /** Held-out loss on data.val every N steps, its shuffled-media control, early stopping. */
    validation: validationSchema.optional(),
    /** A time budget: the steps (and lr schedule) are planned to end within it. */
    budget: budgetSchema.optional(),
    /** Run folder: metrics.jsonl, loss.html, adapters/, model/, checkpoints/. */
    output: outputSchema,
  })
  .superRefine((r, ctx) => {
    if (r.data.groupByLength && r.data.lengthBuckets)
      ctx.addIssue({
        code: 'custom',
        path: ['data', 'lengthBuckets'],
        message: 'give lengthBuckets or groupByLength, not both (both decide which samples share a batch)',
      });
    const buckets = r.data.lengthBuckets ?? [];
    if (buckets.some((b, k) => k > 0 && b <= (buckets[k - 1] as number)))
      ctx.addIssue({
        code: 'custom',
        path: ['data', 'lengthBuckets'],
        message: `bucket boundaries must increase (token lengths where a bucket ends), got [${buckets.join(', ')}]`,
      });
    if (r.validation && !r.data.val)
      ctx.addIssue({
        code: 'custom',
        path: ['validation'],
        message: 'needs held-out data: add data.val (a data file like data.train)',
      });
    const finalModel = typeof r.output === 'string' ? 'last' : r.output.model;
    if ((r.checkpoint.keepBest || finalModel === 'best') && !r.validation)
      ctx.addIssue({
        code: 'custom',
        path: [r.checkpoint.keepBest ? 'checkpoint' : 'output', r.checkpoint.keepBest ? 'keepBest' : 'model'],
        message: 'the best checkpoint is chosen by validation loss: add validation (and data.val)',
      });
    const seen = new Set<string>();
    r.stages.forEach((s, i) => {
      if (seen.has(s.name))
        ctx.addIssue({
          code: 'custom',
          path: ['stages', i, 'name'],
          message: `duplicate stage name "${s.name}"`,
        });
      seen.add(s.name);
    });
  });

export type Recipe = Omit<z.output<typeof recipeSchema>, 'output'> & {
  /** Where the recipe came from (file path or a label), used in error messages. */
  source: string;
  /** The run folder. */
  output: string;
  /** What <output>/model holds at the end (recipe `output.model`): the last weights or the best checkpoint's. */
  finalModel: 'last' | 'best';
};
export type ValidationRecipe = NonNullable<Recipe['validation']>;
export type BudgetRecipe = NonNullable<Recipe['budget']>;
export type StageRecipe = Recipe['stages'][number];
export type LoraRecipe = NonNullable<StageRecipe['lora']>;

export interface ParseRecipeOptions {
  /** Names the recipe in errors (a file path); default 'recipe'. */
  source?: string;
  /** Folder relative paths are resolved against; default: none (paths kept as written). */
  baseDir?: string;
}

/** Validates a recipe object; errors list `<source>: <field path>: <problem>` lines. */
export function parseRecipe(value: unknown, opts: ParseRecipeOptions = {}): Recipe {
  const source = opts.source ?? 'recipe';
  const parsed = recipeSchema.safeParse(value);
  if (!parsed.success) {
    throw new Error(
      `${source} is not a valid recipe:\n  ${formatZodIssues(parsed.error)
        .map((line) => `${source}: ${line}`)
        .join('\n  ')}`,
    );
  }
  const r = parsed.data;
  const at = (p: string) => (opts.baseDir && !isAbsolute(p) ? resolve(opts.baseDir, p) : p);
  const atEach = (files: string | string[]) => (typeof files === 'string' ? at(files) : files.map(at));
  const model: RecipeModel =
    r.model.kind === 'path'
      ? { kind: 'path', path: at(r.model.path) }
      : r.model.kind === 'pretrained'
        ? { kind: 'pretrained', dir: at(r.model.dir) }
        : r.model;
  const output = at(typeof r.output === 'string' ? r.output : r.output.dir);
  const finalModel = typeof r.output === 'string' ? 'last' : r.output.model;
  const plugin = (p: string) => (p.startsWith('./') || p.startsWith('../') ? at(p) : p);
  return {
    ...r,
    source,
    model,
    plugins: r.plugins.map(plugin),
    data: {
      ...r.data,
      train: atEach(r.data.train),
      images: r.data.images && at(r.data.images),
      val: r.data.val && atEach(r.data.val),
    },
    checkpoint: {
      ...r.checkpoint,
      // output.model: best needs the best checkpoint kept.
      keepBest: r.checkpoint.keepBest || finalModel === 'best',
      dir: r.checkpoint.dir ? at(r.checkpoint.dir) : resolve(output, 'checkpoints'),
    },
    output,
    finalModel,
  };
}

/** Reads a recipe file: YAML (.yaml/.yml) or JSON (.json); relative paths resolve against its folder. */
export async function loadRecipe(path: string): Promise<Recipe> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`recipe not found: ${path}`);
    throw err;
  }
  const ext = extname(path).toLowerCase();
  let value: unknown;
  try {
    value = ext === '.json' ? JSON.parse(text) : parseYaml(text, { prettyErrors: true });
  } catch (err) {
    throw new Error(`${path} is not valid ${ext === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
  return parseRecipe(value, { source: path, baseDir: dirname(resolve(path)) });
}

/** The chat template a stage's data uses. */
export function stageTemplate(recipe: Recipe, stage: StageRecipe): string {
  return stage.template ?? recipe.data.template;
}
