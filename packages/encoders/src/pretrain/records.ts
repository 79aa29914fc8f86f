// What encoder pretraining reads from LLaVA-format records: the image, the record's own text (every turn,
// media markers removed) and, where the data carries them, `objects: [{label, box}]` (box = [x0, y0, x1, y1]
// in the image file's pixels) or image-level `labels: [...]`. Records that share an image are merged.
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';

export type PixelBox = [number, number, number, number];

export interface PretrainObject {
  label: string;
  /** [x0, y0, x1, y1] in the image file's pixels (after loading: in the processed image's pixels). */
  box: PixelBox;
}

export interface PretrainItem {
  /** Absolute image path. */
  image: string;
  /** Every turn of every record of this image, joined (markers like `<image>` removed). */
  text: string;
  objects?: PretrainObject[];
  labels?: string[];
}

export interface ReadPretrainItemsOptions {
  /** Folder the records' image paths are relative to (default: the data file's folder). */
  imageFolder?: string;
}

function parseRecords(text: string, file: string): unknown[] {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('[')) {
    try {
      return JSON.parse(trimmed) as unknown[];
    } catch (err) {
      throw new Error(
        `${file}: not valid JSON (${(err as Error).message}): expected a list of records or JSONL`,
      );
    }
  }
  return trimmed
    .split('\n')
    .map((line, i) => ({ line, n: i + 1 }))
    .filter(({ line }) => line.trim() !== '')
    .map(({ line, n }) => {
      try {
        return JSON.parse(line) as unknown;
      } catch (err) {
        throw new Error(`${file}:${n}: not valid JSON (${(err as Error).message}): one record per line`);
      }
    });
}

function checkObjects(value: unknown, where: string): PretrainObject[] {
  if (!Array.isArray(value))
    throw new Error(`${where}.objects: expected a list of {label, box: [x0, y0, x1, y1]}`);
  return value.map((o, i) => {
    const obj = o as { label?: unknown; box?: unknown };
    if (typeof obj?.label !== 'string' || obj.label === '')
      throw new Error(`${where}.objects[${i}].label: expected a non-empty string naming the object`);
    const box = obj.box;
    const ok =
      Array.isArray(box) &&
      box.length === 4 &&
      box.every((v) => typeof v === 'number' && Number.isFinite(v)) &&
      (box[0] as number) < (box[2] as number) &&
      (box[1] as number) < (box[3] as number);
    if (!ok)
      throw new Error(
        `${where}.objects[${i}].box: expected [x0, y0, x1, y1] in the image's pixels with x0 < x1 and y0 < y1, got ${JSON.stringify(box)}`,
      );
    return { label: obj.label, box: [...(box as number[])] as PixelBox };
  });
}

function checkLabels(value: unknown, where: string): string[] {
  if (!Array.isArray(value) || !value.every((l) => typeof l === 'string' && l !== ''))
    throw new Error(`${where}.labels: expected a list of non-empty strings (the image's classes)`);
  return value as string[];
}

/** The records' text: every turn's value with media markers (`<image>`, `<points>`…) removed. */
function recordText(record: { conversations?: unknown }): string {
  if (!Array.isArray(record.conversations)) return '';
  return record.conversations
    .map((t) => (typeof (t as { value?: unknown })?.value === 'string' ? (t as { value: string }).value : ''))
    .join(' ')
    .replace(/<[a-z_]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Reads a LLaVA JSON / JSONL file into one item per image (records without an image are skipped). */
export async function readPretrainItems(
  file: string,
  opts: ReadPretrainItemsOptions = {},
): Promise<PretrainItem[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`${file}: cannot read the data file (${(err as Error).message}): check the path`);
  }
  const folder = opts.imageFolder ?? dirname(file);
  const byImage = new Map<string, PretrainItem>();
  parseRecords(text, file).forEach((raw, i) => {
    const record = raw as { id?: unknown; image?: unknown; objects?: unknown; labels?: unknown };
    const where = `${file}: record ${i}${record.id === undefined ? '' : ` (id ${String(record.id)})`}`;
    const image = Array.isArray(record.image) ? record.image[0] : record.image;
    if (typeof image !== 'string') return;
    const path = isAbsolute(image) ? image : resolve(folder, image);
    const item = byImage.get(path) ?? { image: path, text: '' };
    const own = recordText(record as { conversations?: unknown });
    item.text = item.text ? `${item.text} ${own}` : own;
    if (record.objects !== undefined && !item.objects) item.objects = checkObjects(record.objects, where);
    if (record.labels !== undefined)
      item.labels = [...new Set([...(item.labels ?? []), ...checkLabels(record.labels, where)])];
    byImage.set(path, item);
  });
  return [...byImage.values()];
}
