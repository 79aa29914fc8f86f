// A LISA run folder on the demo world: the generated segmentation world (images, LLaVA records whose truth
// holds one COCO RLE per [SEG]) with its tokenizer in <out>/world, and a recipe copied next to it so that its
// relative paths (./world/…) resolve. The LISA scripts and the `vistune train` test share it.
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  generateWorld,
  type RecordKind,
  type SegmentationAnswerStyle,
  worldVocabulary,
  writeWorldTokenizer,
} from '@vistune/demo-world';

export interface LisaWorldOptions {
  train: number;
  test: number;
  seed?: number;
  /** Pixels per side; the recipe's processor and tower must match (the recipes here use 64). */
  imageSize?: number;
  /** World record kinds (add e.g. grounding,vqa_color for records without masks). Default segmentation. */
  kinds?: readonly RecordKind[];
  questionsPerImage?: number;
  /** lisa ("Sure, [SEG].") or labelled ("Sure, [SEG] red circle."); the recipe's readOffset must match. */
  answers?: SegmentationAnswerStyle;
}

/** Generates <out>/world (kept when it exists) and its tokenizer in <out>/world/tokenizer; returns the world folder. */
export async function writeLisaWorld(out: string, opts: LisaWorldOptions): Promise<string> {
  const world = join(out, 'world');
  if (existsSync(join(world, 'manifest.json'))) return world;
  await generateWorld({
    outDir: world,
    seed: opts.seed ?? 1,
    counts: { train: opts.train, val: 0, test: opts.test },
    imageSize: opts.imageSize ?? 64,
    kinds: opts.kinds ?? ['segmentation'],
    questionsPerImage: opts.questionsPerImage ?? 1,
    segmentationAnswers: opts.answers ?? 'labelled',
  });
  await writeWorldTokenizer(join(world, 'tokenizer'), worldVocabulary(undefined, { segmentation: true }));
  return world;
}

/**
 * Copies a recipe into `out` together with the preprocessor_config.json beside it, if any; returns the copy's
 * path. `set` replaces numeric values by key wherever they occur ({ steps: 30 } sets every stage's steps).
 */
export async function copyRecipe(
  source: string,
  out: string,
  opts: { set?: Readonly<Record<string, number | undefined>> } = {},
): Promise<string> {
  await mkdir(out, { recursive: true });
  let yaml = await readFile(source, 'utf8');
  for (const [key, value] of Object.entries(opts.set ?? {}))
    if (value !== undefined)
      yaml = yaml.replace(new RegExp(`^(\\s+(?:- )?${key}:) [-+.\\deE]+`, 'gm'), `$1 ${value}`);
  const copy = join(out, basename(source));
  await writeFile(copy, yaml);
  const preprocessor = join(dirname(source), 'preprocessor_config.json');
  if (existsSync(preprocessor)) await copyFile(preprocessor, join(out, 'preprocessor_config.json'));
  return copy;
}
