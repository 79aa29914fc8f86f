// `vistune pretrain`: pretrain a vision tower on any LLaVA-format image data before instruction tuning, and save
// it as a tower folder that a composition starts from (`encoder: { type: …, pretrained: DIR }`). A command
// rather than a recipe stage: the objectives need no LLM, tokenizer or chat template, only images, their text
// and (for supervised) their objects or labels.
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { initBackend, readJsonFile, type Registry, type tf } from '@vistune/core';
import {
  formatPretrainEvidence,
  type LoadedImage,
  loadVisionTower,
  PRETRAIN_OBJECTIVES,
  type PretrainObjectiveName,
  pretrainTower,
  readPretrainItems,
  saveVisionTower,
  type VisionTower,
} from '@vistune/encoders';
import { type Command, Option } from 'commander';
import {
  addPluginOption,
  backendOption,
  commandRegistry,
  parseFraction,
  parseNonNegativeInt,
  parsePositive,
  parsePositiveInt,
} from '../options.js';
import { imageProcessorFrom } from '../training.js';
import { CliError, color, printJson } from '../ui.js';

interface PretrainFlags {
  data: string;
  val: string;
  images?: string;
  encoder?: string;
  from?: string;
  preprocessor: string;
  objective: PretrainObjectiveName;
  steps: number;
  lr: number;
  batchSize: number;
  seed: number;
  boxWeight?: number;
  maskRatio?: number;
  out: string;
  json?: boolean;
}

/** `--encoder`: inline JSON, or a JSON file holding the encoder entry config. */
async function encoderConfig(value: string): Promise<Record<string, unknown>> {
  const text = value.trimStart().startsWith('{')
    ? value
    : await readFile(value, 'utf8').catch(() => {
        throw new CliError(`--encoder: ${value} is neither inline JSON nor a readable JSON file`, 2);
      });
  try {
    const config = JSON.parse(text) as unknown;
    if (
      typeof config !== 'object' ||
      config === null ||
      typeof (config as { type?: unknown }).type !== 'string'
    )
      throw new Error(
        'expected an object with "type" (a registered encoder: vistune registry --kind encoder)',
      );
    return config as Record<string, unknown>;
  } catch (err) {
    throw new CliError(`--encoder: ${(err as Error).message}`, 2);
  }
}

async function towerFor(flags: PretrainFlags, registry: Registry): Promise<VisionTower> {
  if (flags.from && flags.encoder) throw new CliError('give --encoder or --from, not both', 2);
  if (flags.from) return loadVisionTower(resolve(flags.from));
  if (!flags.encoder)
    throw new CliError(
      'missing the tower: --encoder \'{"type": "cnn_vision", …}\' (a new one) or --from DIR (a saved one)',
      2,
    );
  return (await registry.create('encoder', await encoderConfig(flags.encoder), {
    path: '--encoder',
  })) as VisionTower;
}

export function registerPretrainCommand(program: Command): void {
  const cmd = program
    .command('pretrain')
    .description(
      "Pretrain a vision tower on LLaVA-format image data (supervised from objects/labels, CLIP or SigLIP on the records' text, masked patches) and save it as a tower folder",
    )
    .requiredOption(
      '--data <file>',
      'training records (LLaVA JSON/JSONL; optional objects: [{label, box}] or labels: [...])',
    )
    .requiredOption(
      '--val <file>',
      'held-out records: the evidence (probe accuracy, recall@k) is measured on them',
    )
    .option('--images <dir>', "folder the records' image paths are relative to (default: each data file's)")
    .option(
      '--encoder <json|file>',
      'a new tower: registry encoder config, e.g. \'{"type":"cnn_vision","hidden_sizes":[32,64,64]}\'',
    )
    .option(
      '--from <dir>',
      'continue from a saved tower folder (vistune pretrain output or a HF CLIP/SigLIP vision model)',
    )
    .requiredOption(
      '--preprocessor <file>',
      'preprocessor_config.json (or its folder): how images become pixel_values',
    )
    .addOption(
      new Option('--objective <name>', 'what the tower learns')
        .choices([...PRETRAIN_OBJECTIVES])
        .default('supervised'),
    )
    .addOption(new Option('--steps <n>', 'optimizer steps').argParser(parsePositiveInt).default(500))
    .addOption(
      new Option('--lr <lr>', 'peak learning rate (warm-up 5 %, cosine to 0)')
        .argParser(parsePositive)
        .default(3e-3),
    )
    .addOption(new Option('--batch-size <n>', 'images per step').argParser(parsePositiveInt).default(32))
    .addOption(
      new Option('--seed <n>', 'seed of the init, batches and masks')
        .argParser(parseNonNegativeInt)
        .default(0),
    )
    .addOption(
      new Option('--box-weight <w>', 'supervised: weight of the box regression (default 10)').argParser(
        parsePositive,
      ),
    )
    .addOption(
      new Option('--mask-ratio <r>', 'mae: share of cells masked (default 0.5)').argParser(parseFraction),
    )
    .requiredOption(
      '--out <dir>',
      'tower folder to write (config.json, model.safetensors, preprocessor_config.json, pretrain.json)',
    );
  addPluginOption(cmd)
    .option('--json', 'print the result as JSON instead of progress')
    .addHelpText(
      'after',
      `\nExamples:\n  $ vistune pretrain --data data/train.json --val data/val.json --preprocessor data/preprocessor_config.json \\\n      --encoder '{"type":"cnn_vision","hidden_sizes":[32,64,64],"patch_size":32,"hidden_size":64}' --out runs/tower\n  $ vistune pretrain … --objective siglip --encoder '{"type":"clip_vision","hidden_size":64,"intermediate_size":256,"num_hidden_layers":2,"num_attention_heads":2,"image_size":64,"patch_size":16}'`,
    )
    .action(async (flags: PretrainFlags, command: Command) => {
      await initBackend({ backend: backendOption(command), quiet: true });
      const registry = await commandRegistry(command);
      const log = (line: string) => {
        if (!flags.json) process.stderr.write(`${line}\n`);
      };
      const preprocessorFile = flags.preprocessor.endsWith('.json')
        ? resolve(flags.preprocessor)
        : join(resolve(flags.preprocessor), 'preprocessor_config.json');
      const preprocessorConfig = (await readJsonFile(preprocessorFile, 'image processor config')) as Record<
        string,
        unknown
      >;
      const processor = await imageProcessorFrom(preprocessorFile, registry);
      const imageFolder = flags.images && resolve(flags.images);
      const [train, heldOut] = await Promise.all([
        readPretrainItems(resolve(flags.data), { imageFolder }),
        readPretrainItems(resolve(flags.val), { imageFolder }),
      ]).catch((err: Error) => {
        throw new CliError(err.message);
      });
      const tower = await towerFor(flags, registry);
      try {
        const withObjects = train.filter((i) => i.objects?.length).length;
        const withLabels = train.filter((i) => i.labels?.length).length;
        log(
          `${color.bold('pretrain')} ${flags.objective}: ${train.length} training images (${withObjects} with objects, ${withLabels} with labels), ${heldOut.length} held out; tower ${(tower.numParameters() / 1e6).toFixed(3)}M parameters`,
        );
        const every = Math.max(1, Math.round(flags.steps / 10));
        const started = Date.now();
        const result = await pretrainTower(tower, {
          objective: flags.objective,
          train,
          heldOut,
          loadImage: async (path) => {
            const p = await processor.process(path);
            return { tensor: p.tensor as tf.Tensor, transform: p.transform as LoadedImage['transform'] };
          },
          steps: flags.steps,
          lr: flags.lr,
          batchSize: flags.batchSize,
          seed: flags.seed,
          boxWeight: flags.boxWeight,
          maskRatio: flags.maskRatio,
          onStep: (step, loss) => {
            if (step === 1 || step % every === 0)
              log(
                `step ${step}/${flags.steps} loss ${loss.toFixed(4)} (${((Date.now() - started) / 1000).toFixed(0)} s)`,
              );
          },
        });
        const out = resolve(flags.out);
        await saveVisionTower(tower, out, { preprocessorConfig });
        const report = {
          ...result,
          data: resolve(flags.data),
          val: resolve(flags.val),
          trainImages: train.length,
          heldOutImages: heldOut.length,
          out,
        };
        await writeFile(join(out, 'pretrain.json'), `${JSON.stringify(report, null, 2)}\n`);
        if (flags.json) return printJson(report);
        for (const line of formatPretrainEvidence(result.evidence)) log(line);
        log(
          `${color.green('saved')} ${out} (${result.steps} steps in ${result.seconds.toFixed(0)} s, loss ${result.firstLoss.toFixed(3)} → ${result.lastLoss.toFixed(3)}); a composition starts from it with encoder: { type: …, pretrained: ${flags.out} }`,
        );
      } finally {
        tower.dispose();
      }
    });
}
