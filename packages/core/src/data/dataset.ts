// Data files → examples + DataStats: read (JSONL streamed), validate, check media files exist, build
// examples, and fail on the first skip (strict) or when more than a chosen fraction of the records is unusable.
import { access } from 'node:fs/promises';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import {
  type BuildExampleOptions,
  createExampleBuilder,
  type Example,
  mediaKindsOf,
  resolveMediaTokens,
  withHeadTargets,
} from './examples.js';
import { readSamplesWithRecords } from './readers.js';
import { mediaOf } from './samples.js';
import {
  countMedia,
  type DataStats,
  emptyDataStats,
  formatDataStats,
  mediaSkipReason,
  recordSkip,
  type Skip,
  sampleSkip,
  skippedTotal,
} from './stats.js';
import {
  type ConversationTemplate,
  getTemplate,
  type TemplateName,
  type TemplateOptions,
} from './templates.js';
import type { HeadTargetsReader } from './types.js';

/** The data files as a list: one path (a recipe's `data.train: a.json`) or several (`[a.json, b.json]`). */
export function dataFileList(files: string | readonly string[]): string[] {
  return typeof files === 'string' ? [files] : [...files];
}

/** The skip fraction loadInstructionData tolerates unless told otherwise. */
export const DEFAULT_MAX_SKIP_FRACTION = 0.2;

export interface LoadInstructionDataOptions extends Pick<BuildExampleOptions, 'imageToken' | 'mediaTokens'> {
  /** LLaVA JSON arrays / JSONL files (records may be LLaVA conversations or instruction triplets). */
  files: string | readonly string[];
  /** Folder relative media paths (every kind) are resolved against; default: each data file's folder. */
  imageFolder?: string;
  tokenizer: Tokenizer;
  template: ConversationTemplate | TemplateName;
  /** For a template given by name: system prompt, and for hf the chat template and content format. */
  templateOptions?: TemplateOptions;
  maxLength: number;
  /** Skip samples whose media files do not exist (checked once per path), as `<kind>_missing`. Default true. */
  checkMedia?: boolean;
  /** The former name of checkMedia (it checks every kind's files). */
  checkImages?: boolean;
  /** Throw when more than this fraction of the records is skipped (default 0.2; 1 never throws). */
  maxSkipFraction?: number;
  /** Throw at the first skipped record, naming it, instead of skipping it. Default false. */
  strict?: boolean;
  /** Skip records with a turn longer than this many characters as `turn_too_long` (default 100 000). */
  maxTurnChars?: number;
  /** Read at most this many records (all files together). */
  limit?: number;
  /** Per-head targets read from each record (e.g. masks for a [SEG] head), carried into batch.headTargets. */
  targets?: HeadTargetsReader;
}

export interface InstructionData {
  examples: Example[];
  stats: DataStats;
}

/** Where a user changes the skip settings: the recipe fields and the CLI flag. */
const SKIP_SETTINGS_HINT =
  "set the recipe's data.maxSkipFraction (or the CLI flag --max-skip-fraction; 1 never fails)";

function checkSkipFraction(value: number): number {
  if (!(value >= 0 && value <= 1))
    throw new Error(
      `maxSkipFraction must be a number from 0 to 1, got ${value}: ${SKIP_SETTINGS_HINT} to a fraction such as 0.05.`,
    );
  return value;
}

/** Existence of media files, checked once per path. */
function fileChecker(): (path: string) => Promise<boolean> {
  const known = new Map<string, Promise<boolean>>();
  return (path) => {
    let exists = known.get(path);
    if (exists === undefined) {
      exists = access(path).then(
        () => true,
        () => false,
      );
      known.set(path, exists);
    }
    return exists;
  };
}

export async function loadInstructionData(options: LoadInstructionDataOptions): Promise<InstructionData> {
  const template =
    typeof options.template === 'string'
      ? getTemplate(options.template, options.templateOptions)
      : options.template;
  const build = createExampleBuilder({ ...options, template });
  const mediaKinds = mediaKindsOf(resolveMediaTokens(options));
  const files = dataFileList(options.files);
  const checkMedia = options.checkMedia ?? options.checkImages ?? true;
  const maxSkipFraction = checkSkipFraction(options.maxSkipFraction ?? DEFAULT_MAX_SKIP_FRACTION);
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const exists = fileChecker();

  const stats = emptyDataStats();
  const skip = ({ reason, message, location, id }: Skip) => {
    if (options.strict)
      throw new Error(
        `${message} [${reason}]. Strict mode stops at the first skipped record: fix the record, or turn strict ` +
          'off (recipe data.strict: false) to skip such records and see them counted in the data summary.',
      );
    recordSkip(stats, reason, message, { location, id });
  };
  const examples: Example[] = [];
  for (const file of files) {
    for await (const { result: parsed, record } of readSamplesWithRecords(file, {
      imageFolder: options.imageFolder,
      mediaKinds,
      maxTurnChars: options.maxTurnChars,
    })) {
      if (stats.samplesRead >= limit) break;
      stats.samplesRead++;
      if (!parsed.ok) {
        skip(parsed);
        continue;
      }
      const { sample } = parsed;
      const missing = checkMedia ? await missingMedia(mediaOf(sample), exists) : undefined;
      if (missing) {
        skip(
          sampleSkip(
            mediaSkipReason(missing.kind, 'missing'),
            sample,
            `no file at ${missing.paths.join(', ')}`,
          ),
        );
        continue;
      }
      const untargeted = build(sample);
      const built =
        untargeted.ok && options.targets
          ? withHeadTargets(
              untargeted.example,
              options.targets.read(record, sample),
              options.targets.triggers,
            )
          : untargeted;
      if (!built.ok) {
        skip(built);
        continue;
      }
      const { example } = built;
      examples.push(example);
      stats.samplesUsed++;
      stats.totalTokens += example.inputIds.length;
      stats.supervisedTokens += example.supervisedTokens;
      countMedia(stats, mediaOf(example));
      if (example.truncated) stats.truncated++;
      if (sample.markersPrepended) stats.markersPrepended++;
      if (sample.leadingAssistantDropped) stats.leadingAssistantDropped++;
      stats.retokenizedBoundaries += example.retokenizedBoundaries;
      if (!example.truncated && !example.endsWithSpecialToken) stats.withoutTerminator++;
    }
  }

  const skipped = skippedTotal(stats);
  if (stats.samplesUsed === 0)
    throw new Error(`No usable training sample in ${files.join(', ')}:\n${formatDataStats(stats)}`);
  if (skipped > maxSkipFraction * stats.samplesRead)
    throw new Error(
      `${skipped} of ${stats.samplesRead} records were skipped, more than maxSkipFraction ${maxSkipFraction}; ` +
        `fix the data or raise maxSkipFraction:\n${formatDataStats(stats)}\n` +
        `To accept more skipped records, ${SKIP_SETTINGS_HINT}.`,
    );
  return { examples, stats };
}

/** The first kind with files that do not exist, and those files; undefined when all exist. */
async function missingMedia(
  media: Readonly<Record<string, readonly string[]>>,
  exists: (path: string) => Promise<boolean>,
): Promise<{ kind: string; paths: string[] } | undefined> {
  for (const [kind, paths] of Object.entries(media)) {
    const found = await Promise.all(paths.map(exists));
    const missing = paths.filter((_, i) => !found[i]);
    if (missing.length > 0) return { kind, paths: missing };
  }
  return undefined;
}
