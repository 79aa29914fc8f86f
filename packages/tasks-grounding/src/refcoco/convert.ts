// RefCOCO / RefCOCO+ / RefCOCOg → LLaVA instruction records, per split. Input is the common JSON export of
// the `refs(unc).p` pickle (a list of {ref_id, ann_id, image_id, split, sentences: [{sent}]}) plus the COCO
// `instances.json` it points into. Tasks: REC (expression → codec-encoded box), REG (box → expression) and
// RES (expression → `[SEG]`, the record carrying the object's segmentation for the mask head).
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatZodIssues, Rng } from '@vistune/core';
import { ImageTransform } from '@vistune/encoders';
import { z } from 'zod';
import { type Box, boxArea, xywhToXyxy } from '../box.js';
import type { LocationCodec } from '../codecs/types.js';
import { REGION_PLACEHOLDER } from '../region/region-encoder.js';
import type { CocoSegmentation } from './masks.js';
import {
  checkTemplates,
  fillTemplate,
  REC_TEMPLATES,
  REG_TEMPLATES,
  RES_ANSWERS,
  RES_TEMPLATES,
} from './templates.js';

const refSchema = z.object({
  ref_id: z.number().int(),
  ann_id: z.number().int(),
  image_id: z.number().int(),
  split: z.string(),
  sentences: z.array(z.looseObject({ sent: z.string().optional(), raw: z.string().optional() })),
});
export const refsFileSchema = z.array(z.looseObject(refSchema.shape));

const rleSchema = z.object({
  size: z.tuple([z.number().int(), z.number().int()]),
  counts: z.union([z.array(z.number()), z.string()]),
});
export const instancesFileSchema = z.looseObject({
  images: z.array(
    z.looseObject({
      id: z.number().int(),
      file_name: z.string(),
      width: z.number().int().positive(),
      height: z.number().int().positive(),
    }),
  ),
  annotations: z.array(
    z.looseObject({
      id: z.number().int(),
      image_id: z.number().int(),
      category_id: z.number().int(),
      bbox: z.tuple([z.number(), z.number(), z.number(), z.number()]),
      segmentation: z.union([z.array(z.array(z.number())), rleSchema]).optional(),
      iscrowd: z.union([z.number(), z.boolean()]).optional(),
    }),
  ),
  categories: z.array(z.looseObject({ id: z.number().int(), name: z.string() })),
});
export type RefcocoRefs = z.output<typeof refsFileSchema>;
export type CocoInstances = z.output<typeof instancesFileSchema>;

export type RefcocoTask = 'rec' | 'reg' | 'res';

export interface RefcocoConvertOptions {
  codec: LocationCodec;
  /** Tasks to emit (default ['rec']). */
  tasks?: readonly RefcocoTask[];
  /** Dataset name used in record ids (`refcoco`, `refcoco+`, `refcocog`). */
  name?: string;
  /** The processor's transform for an image of this size (default identity: boxes relative to the original). */
  transformFor?: (width: number, height: number) => ImageTransform;
  /** Prepended to `file_name` in the records (e.g. `train2014/`). */
  imagePrefix?: string;
  /** REG: the region as codec box text in the question (Shikra, default) or as a `<region>` placeholder. */
  regionInput?: 'text' | 'placeholder';
  /** REC answer: the bare box (default) or the expression grounded to it (`<ref>expr</ref><box>…`). */
  recAnswer?: 'box' | 'ref';
  /** RES trigger token (LISA: `[SEG]`). */
  segToken?: string;
  templates?: {
    rec?: readonly string[];
    reg?: readonly string[];
    res?: readonly string[];
    resAnswers?: readonly string[];
  };
  /** One record per sentence (default) or per ref (its first sentence). */
  sentences?: 'each' | 'first';
  /** Seed of the template choice. */
  seed?: number;
}

export interface LlavaTurnRecord {
  from: 'human' | 'gpt';
  value: string;
}

export interface RefcocoRecord {
  id: string;
  image: string;
  conversations: LlavaTurnRecord[];
  task: RefcocoTask;
  ref_id: number;
  ann_id: number;
  category: string;
  /** The referred object's box, [x1, y1, x2, y2] in original-image pixels. */
  box: Box;
  width: number;
  height: number;
  /** REG with placeholders: the boxes of the `<region>` items, in order (original pixels). */
  regions?: Box[];
  /** RES: the object's COCO segmentation (polygons or RLE) in original pixels. */
  segmentation?: CocoSegmentation;
}

export type RefcocoSkipReason =
  | 'missing_annotation'
  | 'missing_image'
  | 'empty_box'
  | 'empty_sentence'
  | 'no_segmentation';

export interface RefcocoConversion {
  /** Records per split name (`train`, `val`, `testA`, `testB`, `test`), in input order. */
  splits: Map<string, RefcocoRecord[]>;
  /** Counts of what was skipped and why. */
  skipped: Record<RefcocoSkipReason, number>;
}

function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, source: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success)
    throw new Error(
      `${source} is not in the expected format:\n  ${formatZodIssues(parsed.error).slice(0, 5).join('\n  ')}`,
    );
  return parsed.data;
}

/** Converts parsed refs + instances JSON into LLaVA records per split. */
export function convertRefcoco(
  refsJson: unknown,
  instancesJson: unknown,
  opts: RefcocoConvertOptions,
): RefcocoConversion {
  const refs = parseOrThrow(refsFileSchema, refsJson, 'refs JSON');
  const instances = parseOrThrow(instancesFileSchema, instancesJson, 'instances JSON');
  const tasks = opts.tasks ?? ['rec'];
  const templates = {
    rec: opts.templates?.rec ?? REC_TEMPLATES,
    reg: opts.templates?.reg ?? REG_TEMPLATES,
    res: opts.templates?.res ?? RES_TEMPLATES,
    resAnswers: opts.templates?.resAnswers ?? RES_ANSWERS,
  };
  checkTemplates('rec', templates.rec, 'expr');
  checkTemplates('reg', templates.reg, 'region');
  checkTemplates('res', templates.res, 'expr');
  checkTemplates('resAnswers', templates.resAnswers, 'seg');
  const name = opts.name ?? 'refcoco';
  const segToken = opts.segToken ?? '[SEG]';
  const rng = new Rng(opts.seed ?? 0);
  const pick = (list: readonly string[]) => list[Math.floor(rng.nextFloat() * list.length)];
  const images = new Map(instances.images.map((im) => [im.id, im]));
  const annotations = new Map(instances.annotations.map((a) => [a.id, a]));
  const categories = new Map(instances.categories.map((c) => [c.id, c.name]));
  const splits = new Map<string, RefcocoRecord[]>();
  const skipped: Record<RefcocoSkipReason, number> = {
    missing_annotation: 0,
    missing_image: 0,
    empty_box: 0,
    empty_sentence: 0,
    no_segmentation: 0,
  };

  for (const ref of refs) {
    const ann = annotations.get(ref.ann_id);
    if (!ann) {
      skipped.missing_annotation++;
      continue;
    }
    const image = images.get(ref.image_id);
    if (!image) {
      skipped.missing_image++;
      continue;
    }
    const box = xywhToXyxy(ann.bbox);
    if (boxArea(box) <= 0) {
      skipped.empty_box++;
      continue;
    }
    const transform =
      opts.transformFor?.(image.width, image.height) ?? ImageTransform.identity(image.width, image.height);
    const sentences = ref.sentences.map((s) => (s.sent ?? s.raw ?? '').trim());
    const chosen = opts.sentences === 'first' ? sentences.slice(0, 1) : sentences;
    const out = splits.get(ref.split) ?? [];
    splits.set(ref.split, out);
    const base = {
      image: `${opts.imagePrefix ?? ''}${image.file_name}`,
      ref_id: ref.ref_id,
      ann_id: ref.ann_id,
      category: categories.get(ann.category_id) ?? String(ann.category_id),
      box,
      width: image.width,
      height: image.height,
    };
    chosen.forEach((expr, s) => {
      if (!expr) {
        skipped.empty_sentence++;
        return;
      }
      const exchange = (question: string, answer: string): LlavaTurnRecord[] => [
        { from: 'human', value: question },
        { from: 'gpt', value: answer },
      ];
      for (const task of tasks) {
        const id = `${name}_${task}_${ref.ref_id}_${s}`;
        if (task === 'rec') {
          const answer =
            opts.recAnswer === 'ref'
              ? opts.codec.encodeRef(expr, [box], transform)
              : opts.codec.encodeBox(box, transform);
          out.push({
            id,
            ...base,
            task,
            conversations: exchange(fillTemplate(pick(templates.rec), { expr }), answer),
          });
        } else if (task === 'reg') {
          const placeholder = opts.regionInput === 'placeholder';
          const region = placeholder ? REGION_PLACEHOLDER : opts.codec.encodeBox(box, transform);
          const record: RefcocoRecord = {
            id,
            ...base,
            task,
            conversations: exchange(fillTemplate(pick(templates.reg), { region }), expr),
          };
          if (placeholder) record.regions = [box];
          out.push(record);
        } else {
          if (!ann.segmentation) {
            skipped.no_segmentation++;
            continue;
          }
          const answer = fillTemplate(pick(templates.resAnswers), { seg: segToken });
          out.push({
            id,
            ...base,
            task,
            conversations: exchange(fillTemplate(pick(templates.res), { expr }), answer),
            segmentation: ann.segmentation,
          });
        }
      }
    });
  }
  return { splits, skipped };
}

/** Reads the two JSON files, converts, and writes `<outDir>/<name>_<split>.json` (LLaVA JSON arrays). */
export async function convertRefcocoFiles(
  refsPath: string,
  instancesPath: string,
  outDir: string,
  opts: RefcocoConvertOptions,
): Promise<{ files: Map<string, string>; conversion: RefcocoConversion }> {
  const read = async (path: string) => {
    try {
      return JSON.parse(await readFile(path, 'utf8')) as unknown;
    } catch (err) {
      throw new Error(
        `${path}: ${(err as Error).message} (expected a JSON file; pickles must be exported to JSON first)`,
      );
    }
  };
  const conversion = convertRefcoco(await read(refsPath), await read(instancesPath), opts);
  const files = new Map<string, string>();
  for (const [split, records] of conversion.splits) {
    const file = join(outDir, `${opts.name ?? 'refcoco'}_${split}.json`);
    await writeFile(file, JSON.stringify(records));
    files.set(split, file);
  }
  return { files, conversion };
}
