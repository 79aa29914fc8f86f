// Training files of the demo stages, built from a generated world, and a decoded-pixel cache.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tf } from '@vistune/core';
import {
  describeLayout,
  type LlavaTurn,
  loadWorldSplit,
  type SceneLayout,
  type WorldRecord,
} from '@vistune/demo-world';

/** A plain LLaVA record (what the core data pipeline reads). */
export interface LlavaRecord {
  id: string;
  image: string;
  conversations: LlavaTurn[];
}

/**
 * One multi-turn sample per image: all questions about an image share one copy of its image tokens, which
 * makes a training token of the LLM mostly text. `<image>` stays in the first turn only.
 */
export function mergeByImage(records: readonly WorldRecord[]): LlavaRecord[] {
  const byImage = new Map<string, WorldRecord[]>();
  for (const record of records) {
    const list = byImage.get(record.image) ?? [];
    list.push(record);
    byImage.set(record.image, list);
  }
  return [...byImage.values()].map((group) => ({
    id: `${(group[0] as WorldRecord).id}+${group.length - 1}`,
    image: (group[0] as WorldRecord).image,
    conversations: group.flatMap((record, i) =>
      record.conversations.map((turn, j) =>
        i > 0 && j === 0 ? { ...turn, value: turn.value.replace('<image>\n', '') } : turn,
      ),
    ),
  }));
}

/** A caption per training image (the detailed description of its layout), for image–text alignment. */
export async function captionRecords(worldDir: string): Promise<LlavaRecord[]> {
  const scenes = JSON.parse(await readFile(join(worldDir, 'scenes.json'), 'utf8')) as {
    train: Record<string, SceneLayout>;
  };
  return Object.entries(scenes.train).map(([image, layout], i) => ({
    id: `caption-${i}`,
    image,
    conversations: [
      { from: 'human', value: '<image>\nDescribe the image in detail.' },
      { from: 'gpt', value: describeLayout(layout) },
    ],
  }));
}

/** Writes records as a JSON array (one record a line) and returns the path. */
export async function writeRecords(path: string, records: readonly LlavaRecord[]): Promise<string> {
  await writeFile(path, `[\n${records.map((r) => JSON.stringify(r)).join(',\n')}\n]\n`);
  return path;
}

/** The merged instruction file of a world's train split. */
export async function writeMergedTrain(worldDir: string, file = 'train-merged.json'): Promise<string> {
  return writeRecords(join(worldDir, file), mergeByImage(await loadWorldSplit(join(worldDir, 'train.json'))));
}

/** What the demo needs from an image processor (the `clip` processor entry of @vistune/encoders). */
export interface PixelProcessor {
  preprocess(path: string): Promise<{ pixelValues: Float32Array; height: number; width: number }>;
}

/**
 * Decoded pixels by path, decoded once: the world is a few thousand 64 px images (48 KB each as float32),
 * so every epoch after the first skips PNG decoding. Returns a fresh tensor per call (the caller disposes it).
 */
export function cachedImageLoader(processor: PixelProcessor): (path: string) => Promise<tf.Tensor3D> {
  const cache = new Map<string, { pixels: Float32Array; height: number; width: number }>();
  return async (path) => {
    let entry = cache.get(path);
    if (!entry) {
      const p = await processor.preprocess(path);
      entry = { pixels: p.pixelValues, height: p.height, width: p.width };
      cache.set(path, entry);
    }
    return tf.tensor3d(entry.pixels, [3, entry.height, entry.width]);
  };
}
