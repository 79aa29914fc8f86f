// Data files → examples + DataStats: read (JSONL streamed), validate, check images exist, build examples,
// and fail only when more than a chosen fraction of the records is unusable.
import { access } from 'node:fs/promises';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { createExampleBuilder, type Example, type ImageTokenSpec, withHeadTargets } from './examples.js';
import { readSamplesWithRecords } from './readers.js';
import { describeLocation } from './samples.js';
import { type DataStats, emptyDataStats, formatDataStats, recordSkip, skippedTotal } from './stats.js';
import {
  type ConversationTemplate,
  getTemplate,
  type TemplateName,
  type TemplateOptions,
} from './templates.js';
import type { HeadTargetsReader } from './types.js';

export interface LoadInstructionDataOptions {
  /** LLaVA JSON arrays / JSONL files (records may be LLaVA conversations or instruction triplets). */
  files: string | readonly string[];
  /** Folder relative image paths are resolved against; default: each data file's folder. */
  imageFolder?: string;
  tokenizer: Tokenizer;
  template: ConversationTemplate | TemplateName;
  /** For a template given by name: system prompt, and for hf the chat template and content format. */
  templateOptions?: TemplateOptions;
  imageToken: ImageTokenSpec;
  maxLength: number;
  /** Skip samples whose image files do not exist (checked once per path). Default true. */
  checkImages?: boolean;
  /** Throw when more than this fraction of the records is skipped (default 0.2; 1 never throws). */
  maxSkipFraction?: number;
  /** Read at most this many records (all files together). */
  limit?: number;
  /** Per-head targets read from each record (e.g. masks for a [SEG] head), carried into batch.headTargets. */
  targets?: HeadTargetsReader;
}

export interface InstructionData {
  examples: Example[];
  stats: DataStats;
}

export async function loadInstructionData(options: LoadInstructionDataOptions): Promise<InstructionData> {
  const template =
    typeof options.template === 'string'
      ? getTemplate(options.template, options.templateOptions)
      : options.template;
  const build = createExampleBuilder({ ...options, template });
  const files = typeof options.files === 'string' ? [options.files] : options.files;
  const checkImages = options.checkImages ?? true;
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const knownImages = new Map<string, boolean>();
  const imageExists = async (path: string) => {
    let exists = knownImages.get(path);
    if (exists === undefined) {
      exists = await access(path).then(
        () => true,
        () => false,
      );
      knownImages.set(path, exists);
    }
    return exists;
  };

  const stats = emptyDataStats();
  const examples: Example[] = [];
  for (const file of files) {
    for await (const { result: parsed, record } of readSamplesWithRecords(file, {
      imageFolder: options.imageFolder,
    })) {
      if (stats.samplesRead >= limit) break;
      stats.samplesRead++;
      if (!parsed.ok) {
        recordSkip(stats, parsed.reason, parsed.message);
        continue;
      }
      const { sample } = parsed;
      if (checkImages) {
        const missing = [];
        for (const path of sample.images) if (!(await imageExists(path))) missing.push(path);
        if (missing.length > 0) {
          recordSkip(
            stats,
            'image_missing',
            `${describeLocation(sample.location)}: sample ${sample.id}: no file at ${missing.join(', ')}`,
          );
          continue;
        }
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
        recordSkip(stats, built.reason, built.message);
        continue;
      }
      const { example } = built;
      examples.push(example);
      stats.samplesUsed++;
      stats.totalTokens += example.inputIds.length;
      stats.supervisedTokens += example.supervisedTokens;
      stats.images += example.images.length;
      if (example.truncated) stats.truncated++;
      if (sample.markersPrepended) stats.markersPrepended++;
      if (sample.leadingAssistantDropped) stats.leadingAssistantDropped++;
      stats.retokenizedBoundaries += example.retokenizedBoundaries;
      if (!example.truncated && !example.endsWithSpecialToken) stats.withoutTerminator++;
    }
  }

  const maxSkipFraction = options.maxSkipFraction ?? 0.2;
  const skipped = skippedTotal(stats);
  if (stats.samplesUsed === 0)
    throw new Error(`No usable training sample in ${files.join(', ')}:\n${formatDataStats(stats)}`);
  if (skipped > maxSkipFraction * stats.samplesRead)
    throw new Error(
      `${skipped} of ${stats.samplesRead} records were skipped, more than maxSkipFraction ${maxSkipFraction}; ` +
        `fix the data or raise maxSkipFraction:\n${formatDataStats(stats)}`,
    );
  return { examples, stats };
}
