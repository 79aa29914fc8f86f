// `vistune tokenizer train` (a tokenizer from the data, as the conversation template renders it) and
// `vistune tokenizer extend` (tokens added to a model folder, embeddings resized so the folder stays consistent).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  type BackendName,
  type DataTrainedTokenizer,
  type MediaProcessor,
  TOKENIZER_MODEL_KINDS,
  type TokenizerModelKind,
  trainTokenizerOnData,
} from '@vistune/core';
import { withVocabulary } from '@vistune/tasks-grounding';
import { type Command, Option } from 'commander';
import { loadModel, wrapModel } from '../api/model.js';
import { createVistuneRegistry } from '../api/registry.js';
import { addPluginOption, backendOption, parsePositiveInt } from '../options.js';
import { CliError, color, printJson } from '../ui.js';

export interface TokenizerTrainFlags {
  data: string[];
  vocabSize: number;
  out: string;
  model: TokenizerModelKind;
  template: string;
  systemPrompt?: string;
  special?: string[];
  minFrequency: number;
  allBytes?: boolean;
  chatTemplate?: string;
  overwrite?: boolean;
  plugin?: string[];
}

export interface TokenizerExtendFlags {
  model: string;
  add: string[];
  out: string;
  special?: boolean;
  overwrite?: boolean;
  plugin?: string[];
}

/** Refuses to write over another tokenizer or model unless --overwrite says so. */
function checkOut(out: string, file: string, overwrite: boolean | undefined): void {
  if (!overwrite && existsSync(join(out, file)))
    throw new CliError(`--out ${out} already holds ${file}: pick another folder or pass --overwrite`);
}

/** Trains and writes the tokenizer folder; returns what `vistune tokenizer train --json` prints. */
export async function trainTokenizerCommand(
  flags: TokenizerTrainFlags,
): Promise<DataTrainedTokenizer & { out: string }> {
  const out = resolve(flags.out);
  checkOut(out, 'tokenizer.json', flags.overwrite);
  const files = flags.data.map((f) => resolve(f));
  for (const file of files) if (!existsSync(file)) throw new CliError(`--data ${file}: no such file`);
  const registry = await createVistuneRegistry({ plugins: flags.plugin ?? [] });
  const chatTemplate = flags.chatTemplate && (await readFile(resolve(flags.chatTemplate), 'utf8'));
  const trained = await trainTokenizerOnData({
    files,
    registry,
    template: flags.template,
    systemPrompt: flags.systemPrompt,
    model: flags.model,
    vocabSize: flags.vocabSize,
    minFrequency: flags.minFrequency,
    allBytes: flags.allBytes,
    extraSpecialTokens: flags.special,
    ...(chatTemplate ? { chatTemplate } : {}),
  }).catch((err: Error) => {
    throw new CliError(err.message);
  });
  await trained.tokenizer.saveTo(out);
  return { ...trained, out };
}

const percent = (x: number) => `${(100 * x).toFixed(1)}%`;

function printTrainReport(t: DataTrainedTokenizer & { out: string }, flags: TokenizerTrainFlags): void {
  const r = t.report;
  const lines = [
    `${color.bold('tokenizer')} ${r.model}: ${r.vocabSize} ids${r.vocabSize < r.requestedVocabSize ? ` (asked ${r.requestedVocabSize}: the corpus had nothing more to add at --min-frequency ${flags.minFrequency})` : ''} = ${r.specialTokens.length} special tokens + ${r.alphabetSize} byte symbols + ${r.vocabSize - r.specialTokens.length - r.alphabetSize} learnt${r.model === 'bpe' ? ` (${r.merges} merges)` : ''}`,
    `${color.bold('corpus')} ${t.corpus.samples} records rendered with template ${flags.template}${flags.systemPrompt === undefined ? ' and its default system prompt' : flags.systemPrompt === '' ? ', no system prompt' : ', system prompt given'}${t.corpus.skipped ? `; ${t.corpus.skipped} skipped (${t.corpus.skipReasons[0]})` : ''}`,
    `${color.bold('words')} ${r.words.distinct} distinct, ${r.words.occurrences} occurrences: ${percent(1 - r.split.share)} encode as one token, ${percent(r.split.share)} split (${r.split.distinct} distinct)`,
  ];
  if (r.splitExamples.length)
    lines.push(
      `  most frequent split words: ${r.splitExamples
        .slice(0, 5)
        .map((w) => `${JSON.stringify(w.text)} ${w.tokens} tokens ×${w.occurrences}`)
        .join(', ')}`,
    );
  lines.push(
    `${color.bold('special tokens')} ${r.specialTokens.map((s, i) => `${s}=${i}`).join(' ')}`,
    `wrote ${join(t.out, 'tokenizer.json')} and tokenizer_config.json (chat template included)`,
    `next: set model.tokenizer: ${t.out} in the recipe; vocab_size is read from it and each modality's placeholder_token_id is the id of its marker (${Object.entries(
      t.mediaTokenIds,
    )
      .map(([kind, id]) => `${kind} ${id}`)
      .join(', ')})`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

export interface ExtendResult {
  out: string;
  added: Record<string, number>;
  vocabSize: { before: number; after: number };
  resized: boolean;
  modelType: string | undefined;
}

/** Adds tokens to a model folder's tokenizer, grows the LLM's embeddings to fit, and saves the whole folder. */
export async function extendTokenizerCommand(
  flags: TokenizerExtendFlags,
  backend?: BackendName,
): Promise<ExtendResult> {
  const dir = resolve(flags.model);
  const out = resolve(flags.out);
  if (out === dir)
    throw new CliError(
      `--out must differ from --model (${dir}): the extended model is written as a new folder`,
    );
  checkOut(out, 'config.json', flags.overwrite);
  const registry = await createVistuneRegistry({ plugins: flags.plugin ?? [] });
  const vlm = await loadModel(dir, { registry, backend });
  let model = vlm.model;
  try {
    const llmVocab = (model.llm as { vocabSize?: number }).vocabSize;
    if (llmVocab === undefined)
      throw new CliError(`${dir}: the model's LLM reports no vocabSize; it cannot be resized`);
    const ids = vlm.tokenizer.addTokens(flags.add, { special: flags.special ?? false });
    const resized = vlm.tokenizer.vocabSize > llmVocab;
    if (resized) {
      try {
        model = withVocabulary(model, vlm.tokenizer.vocabSize, registry);
      } catch (err) {
        throw new CliError(`${dir}: ${(err as Error).message}`);
      }
    }
    const processors: Record<string, MediaProcessor> = {};
    for (const [name, m] of vlm.modalities) if (m.processor) processors[name] = m.processor;
    const extended = await wrapModel(out, model, vlm.tokenizer, registry, processors);
    await extended.save(out);
    return {
      out,
      added: Object.fromEntries(flags.add.map((token, i) => [token, ids[i]])),
      vocabSize: { before: llmVocab, after: (model.llm as { vocabSize: number }).vocabSize },
      resized,
      modelType: model.family?.name,
    };
  } finally {
    model.dispose();
  }
}

export function registerTokenizerCommand(program: Command): void {
  const tokenizer = program
    .command('tokenizer')
    .description('Train a tokenizer on your data, or add tokens to a model (embeddings resized)');

  const train = tokenizer
    .command('train')
    .description(
      'Train a BPE or word-level tokenizer on the records as the chat template renders them; writes tokenizer.json + tokenizer_config.json',
    )
    .requiredOption('--data <files...>', 'LLaVA-format JSON / JSONL files (the training data)')
    .requiredOption(
      '--vocab-size <n>',
      'ids in all (special tokens and byte symbols included)',
      parsePositiveInt,
    )
    .requiredOption('--out <dir>', 'folder for tokenizer.json and tokenizer_config.json')
    .addOption(
      new Option('--model <kind>', 'bpe: merges learnt; wordlevel: whole words, characters as fallback')
        .choices([...TOKENIZER_MODEL_KINDS])
        .default('bpe'),
    )
    .option('--template <name>', "conversation template of the recipe's data.template", 'vicuna_v1')
    .option(
      '--system-prompt <text>',
      "the recipe's data.systemPrompt ('' = none); without it the template's default system prompt is in every sample",
    )
    .option(
      '--special <tokens...>',
      'more special tokens ([SEG], <box> …); the media markers are always added',
    )
    .option(
      '--min-frequency <n>',
      'ignore words (wordlevel) or pairs (bpe) seen fewer times',
      parsePositiveInt,
      2,
    )
    .option(
      '--all-bytes',
      'keep all 256 byte symbols (no text ever becomes <unk>); default: ASCII + the data',
    )
    .option(
      '--chat-template <file>',
      'Jinja chat template to write (needed for templates without a built-in one)',
    )
    .option('--overwrite', 'replace a tokenizer already in --out');
  addPluginOption(train)
    .option('--json', 'print the report as JSON')
    .addHelpText(
      'after',
      "\nExamples:\n  $ vistune tokenizer train --data train.json --vocab-size 512 --out tok --system-prompt ''\n  $ vistune tokenizer train --data train.jsonl --vocab-size 2000 --model wordlevel --template chatml --special '[SEG]' --out tok",
    )
    .action(async (flags: TokenizerTrainFlags & { json?: boolean }) => {
      const trained = await trainTokenizerCommand(flags);
      if (flags.json)
        printJson({
          out: trained.out,
          ...trained.report,
          corpus: trained.corpus,
          mediaTokenIds: trained.mediaTokenIds,
        });
      else printTrainReport(trained, flags);
    });

  const extend = tokenizer
    .command('extend')
    .description(
      "Add tokens to a model folder's tokenizer and grow its embeddings (new rows: mean of the old)",
    )
    .requiredOption('--model <dir>', 'model folder (config.json, weights, tokenizer.json)')
    .requiredOption('--add <tokens...>', 'tokens to add (each then encodes as one id)')
    .requiredOption('--out <dir>', 'folder for the extended model')
    .option('--special', 'mark the tokens special (dropped when decoding with skip-special-tokens)')
    .option('--overwrite', 'replace a model already in --out');
  addPluginOption(extend)
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      "\nExample:\n  $ vistune tokenizer extend --model run/model --add '[SEG]' --special --out run/model-seg",
    )
    .action(async (flags: TokenizerExtendFlags & { json?: boolean }, command: Command) => {
      const result = await extendTokenizerCommand(flags, backendOption(command));
      if (flags.json) return printJson(result);
      const added = Object.entries(result.added)
        .map(([t, id]) => `${t}=${id}`)
        .join(' ');
      process.stdout.write(
        `added ${added}\nvocab_size ${result.vocabSize.before} → ${result.vocabSize.after}${result.resized ? ` (embeddings resized; saved as model_type ${result.modelType})` : ' (the embeddings had room)'}\nwrote ${result.out}\n`,
      );
    });
}
