// The world on disk: train/val/test splits of LLaVA JSON records plus their PNG images, all determined by one seed.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { z } from 'zod';
import { BoxCodec, type BoxFormat, DEFAULT_BOX_FORMAT } from './box-codec.js';
import {
  ALL_RECORD_KINDS,
  RECORD_KINDS,
  type RecordKind,
  recordsForScene,
  type TurnKind,
  type WorldRecord,
} from './instructions.js';
import { instanceMapToPng } from './masks.js';
import { createRng } from './random.js';
import { renderScene } from './render.js';
import { generateLayout, type SceneLayout } from './scene.js';
import type { SegmentationAnswerStyle } from './segmentation.js';

export const SPLITS = ['train', 'val', 'test'] as const;
export type SplitName = (typeof SPLITS)[number];

export interface WorldOptions {
  /** Seed of everything: the same seed and options give byte-identical files. */
  seed: number | string;
  /** Side of the square images in pixels (default 64). */
  imageSize?: number;
  /** Record kinds to generate (default: all; repeat a kind to weight it). */
  kinds?: readonly RecordKind[];
  /** Records per image (default 4). */
  questionsPerImage?: number;
  /** How boxes are written in the text (default grid with 32 bins). */
  boxFormat?: BoxFormat;
  /** Objects per scene (default 1 and 5). */
  minObjects?: number;
  maxObjects?: number;
  /** Place each object in its own cell of a grid×grid grid (default: anywhere); see LayoutOptions.grid. */
  grid?: number;
  /** Segmentation records only: `lisa` ("Sure, [SEG].", default) or `labelled` ("Sure, [SEG] red circle."). */
  segmentationAnswers?: SegmentationAnswerStyle;
}

export interface GenerateWorldOptions extends WorldOptions {
  outDir: string;
  /** Scenes (images) per split. */
  counts: Readonly<Record<SplitName, number>>;
  /** PNG files encoded at once (default 16). */
  concurrency?: number;
  /**
   * Also write `masks/{split}-{index:05}.png`: 8-bit instance maps (0 = background, k + 1 = object k of the
   * scene's layout). Default false (and then nothing about masks is written).
   */
  maskFiles?: boolean;
}

export interface SplitSummary {
  file: string;
  images: number;
  records: number;
  /** Records per kind. */
  kinds: Partial<Record<RecordKind, number>>;
}

export interface WorldManifest {
  format: 'vistune-demo-world';
  version: 1;
  seed: number | string;
  imageSize: number;
  boxFormat: BoxFormat;
  kinds: RecordKind[];
  questionsPerImage: number;
  minObjects: number;
  maxObjects: number;
  /** Present for grid layouts: cells per side. */
  grid?: number;
  imagesDir: 'images';
  /** Present when `maskFiles` was set: the folder of the instance-map PNGs. */
  masksDir?: 'masks';
  /** Present when segmentation answers are not LISA's plain form. */
  segmentationAnswers?: SegmentationAnswerStyle;
  /** Layouts of every scene, keyed by image path. */
  scenesFile: 'scenes.json';
  splits: Record<SplitName, SplitSummary>;
}

export interface GeneratedScene {
  /** Image path relative to the world folder. */
  image: string;
  layout: SceneLayout;
  records: WorldRecord[];
}

interface ResolvedOptions {
  seed: number | string;
  imageSize: number;
  kinds: readonly RecordKind[];
  questionsPerImage: number;
  codec: BoxCodec;
  minObjects: number;
  maxObjects: number;
  grid: number | undefined;
  segmentationAnswers: SegmentationAnswerStyle;
}

function resolveOptions(options: WorldOptions): ResolvedOptions {
  const questionsPerImage = options.questionsPerImage ?? 4;
  if (!Number.isInteger(questionsPerImage) || questionsPerImage < 1) {
    throw new Error(
      `generateWorld: questionsPerImage must be a positive integer (got ${questionsPerImage}).`,
    );
  }
  const kinds = options.kinds ?? RECORD_KINDS;
  const unknown = kinds.filter((k) => !(ALL_RECORD_KINDS as readonly string[]).includes(k));
  if (unknown.length > 0 || kinds.length === 0) {
    throw new Error(
      `generateWorld: kinds must be a non-empty list of ${ALL_RECORD_KINDS.join(', ')} (got ${kinds.join(', ')}).`,
    );
  }
  return {
    seed: options.seed,
    imageSize: options.imageSize ?? 64,
    kinds,
    questionsPerImage,
    codec: new BoxCodec(options.boxFormat ?? DEFAULT_BOX_FORMAT),
    minObjects: options.minObjects ?? 1,
    maxObjects: options.maxObjects ?? 5,
    grid: options.grid,
    segmentationAnswers: options.segmentationAnswers ?? 'lisa',
  };
}

const imagePath = (split: SplitName, index: number): string =>
  `images/${split}-${String(index).padStart(5, '0')}.png`;
const maskPath = (split: SplitName, index: number): string =>
  `masks/${split}-${String(index).padStart(5, '0')}.png`;

function sceneFor(options: ResolvedOptions, split: SplitName, index: number): GeneratedScene {
  // One stream per scene: any scene can be regenerated alone, and split sizes do not shift other scenes.
  const rng = createRng('vistune-demo-world', options.seed, split, index);
  const layout = generateLayout(rng, {
    imageSize: options.imageSize,
    minObjects: options.minObjects,
    maxObjects: options.maxObjects,
    ...(options.grid !== undefined ? { grid: options.grid } : {}),
  });
  const image = imagePath(split, index);
  const records = recordsForScene(layout, rng, {
    image,
    idPrefix: `${split}-${index}`,
    kinds: options.kinds,
    questionsPerImage: options.questionsPerImage,
    codec: options.codec,
    segmentationAnswers: options.segmentationAnswers,
  });
  return { image, layout, records };
}

/** Scene `index` of `split`, without touching the disk (the layout, its image path and its records). */
export function generateScene(options: WorldOptions, split: SplitName, index: number): GeneratedScene {
  return sceneFor(resolveOptions(options), split, index);
}

/** Encodes a layout's pixels as PNG (fixed settings, so the bytes are reproducible). */
export async function sceneToPng(layout: SceneLayout): Promise<Buffer> {
  const { width, height, data } = renderScene(layout);
  return sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), {
    raw: { width, height, channels: 3 },
  })
    .png({ compressionLevel: 6, adaptiveFiltering: false })
    .toBuffer();
}

const recordsJson = (records: readonly WorldRecord[]): string =>
  `[\n${records.map((record) => JSON.stringify(record)).join(',\n')}\n]\n`;

/** Writes `train.json`, `val.json`, `test.json`, `images/`, `scenes.json` and `manifest.json` under `outDir`. */
export async function generateWorld(options: GenerateWorldOptions): Promise<WorldManifest> {
  const resolved = resolveOptions(options);
  const concurrency = options.concurrency ?? 16;
  for (const split of SPLITS) {
    const count = options.counts[split];
    if (!Number.isInteger(count) || count < 0) {
      throw new Error(`generateWorld: counts.${split} must be a non-negative integer (got ${count}).`);
    }
  }
  await mkdir(join(options.outDir, 'images'), { recursive: true });
  if (options.maskFiles) await mkdir(join(options.outDir, 'masks'), { recursive: true });
  const scenes: Record<string, Record<string, SceneLayout>> = {};
  const splits = {} as Record<SplitName, SplitSummary>;
  for (const split of SPLITS) {
    const records: WorldRecord[] = [];
    scenes[split] = {};
    const count = options.counts[split];
    for (let start = 0; start < count; start += concurrency) {
      const batch = Array.from({ length: Math.min(concurrency, count - start) }, (_, i) =>
        sceneFor(resolved, split, start + i),
      );
      await Promise.all(
        batch.map(async (scene) =>
          writeFile(join(options.outDir, scene.image), await sceneToPng(scene.layout)),
        ),
      );
      if (options.maskFiles) {
        await Promise.all(
          batch.map(async (scene, i) =>
            writeFile(join(options.outDir, maskPath(split, start + i)), await instanceMapToPng(scene.layout)),
          ),
        );
      }
      for (const scene of batch) {
        records.push(...scene.records);
        (scenes[split] as Record<string, SceneLayout>)[scene.image] = scene.layout;
      }
    }
    const kinds: Partial<Record<RecordKind, number>> = {};
    for (const record of records) kinds[record.kind] = (kinds[record.kind] ?? 0) + 1;
    const file = `${split}.json`;
    await writeFile(join(options.outDir, file), recordsJson(records));
    splits[split] = { file, images: count, records: records.length, kinds };
  }
  const manifest: WorldManifest = {
    format: 'vistune-demo-world',
    version: 1,
    seed: resolved.seed,
    imageSize: resolved.imageSize,
    boxFormat: resolved.codec.spec,
    kinds: [...resolved.kinds],
    questionsPerImage: resolved.questionsPerImage,
    minObjects: resolved.minObjects,
    maxObjects: resolved.maxObjects,
    ...(resolved.grid !== undefined ? { grid: resolved.grid } : {}),
    imagesDir: 'images',
    ...(options.maskFiles ? { masksDir: 'masks' as const } : {}),
    ...(resolved.segmentationAnswers === 'lisa' ? {} : { segmentationAnswers: resolved.segmentationAnswers }),
    scenesFile: 'scenes.json',
    splits,
  };
  await writeFile(join(options.outDir, 'scenes.json'), `${JSON.stringify(scenes)}\n`);
  await writeFile(join(options.outDir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/** A small record showing the data format (a conversation about a fixed scene; no files are written). */
export function exampleRecord(kind: RecordKind = 'conversation'): WorldRecord {
  for (let index = 0; index < 100; index++) {
    const scene = generateScene(
      { seed: 'example', kinds: [kind], questionsPerImage: 1, minObjects: 2, maxObjects: 3 },
      'train',
      index,
    );
    const record = scene.records[0];
    if (record !== undefined) return record;
  }
  throw new Error(`exampleRecord: no scene of the example seed supports a "${kind}" record.`);
}

// --- Reading a world back, validated -------------------------------------------------------------------------

const boxSchema = z.tuple([z.number(), z.number(), z.number(), z.number()]);
const rleSchema = z.object({
  size: z.tuple([z.number().int().positive(), z.number().int().positive()]),
  counts: z.array(z.number().int().min(0)),
});
const TURN_KINDS = ALL_RECORD_KINDS.filter((k): k is TurnKind => k !== 'conversation');
const recordSchema = z.object({
  id: z.string(),
  image: z.string(),
  imageSize: z.number().int().positive(),
  kind: z.enum(ALL_RECORD_KINDS),
  conversations: z.array(z.object({ from: z.enum(['human', 'gpt']), value: z.string() })).min(2),
  truth: z.array(
    z.object({
      kind: z.enum(TURN_KINDS),
      answer: z.string(),
      box: boxSchema.optional(),
      masks: z.array(rleSchema).optional(),
    }),
  ),
});
const recordsSchema = z.array(recordSchema);

function describeIssues(file: string, error: z.ZodError): string {
  const issues = error.issues
    .slice(0, 5)
    .map((issue) => `  ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  return `${file} is not a vistune demo-world split:\n${issues.join('\n')}\nRegenerate it with generateWorld (vistune demo).`;
}

/** Reads and validates a split file (`train.json` …); errors name the file and the record field. */
export async function loadWorldSplit(file: string): Promise<WorldRecord[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new Error(`${file}: cannot read the split as JSON (${(error as Error).message}).`);
  }
  const result = recordsSchema.safeParse(parsed);
  if (!result.success) throw new Error(describeIssues(file, result.error));
  for (const [index, record] of result.data.entries()) {
    const gptTurns = record.conversations.filter((turn) => turn.from === 'gpt').length;
    if (gptTurns !== record.truth.length) {
      throw new Error(
        `${file}: record ${index} (${record.id}) has ${gptTurns} gpt turns but ${record.truth.length} truth entries.`,
      );
    }
  }
  return result.data as WorldRecord[];
}

/** Reads `manifest.json` of a world folder. */
export async function loadWorldManifest(dir: string): Promise<WorldManifest> {
  const file = join(dir, 'manifest.json');
  const manifest = JSON.parse(await readFile(file, 'utf8')) as WorldManifest;
  if (manifest.format !== 'vistune-demo-world' || manifest.version !== 1) {
    throw new Error(
      `${file}: format must be "vistune-demo-world" version 1; regenerate the world with generateWorld.`,
    );
  }
  return manifest;
}
