// Registry entries (kind `codec`) and a factory by name for the four location codecs.
import type { Registry } from '@vistune/core';
import { z } from 'zod';
import { Kosmos2Codec } from './kosmos2.js';
import { MiniGptV2Codec } from './minigpt-v2.js';
import { QwenVlCodec } from './qwen-vl.js';
import { ShikraCodec } from './shikra.js';
import { CODEC_FRAMES, type LocationCodec } from './types.js';

const frame = z.enum(CODEC_FRAMES).default('processed');

export const shikraCodecSchema = z.object({
  frame,
  decimals: z.number().int().min(1).max(6).default(3),
  bins: z.number().int().min(1).optional(),
});
export const qwenVlCodecSchema = z.object({ frame, denominator: z.number().int().min(999).default(999) });
export const miniGptV2CodecSchema = z.object({
  frame,
  bins: z.number().int().min(1).max(999).default(100),
  rounding: z.enum(['floor', 'round']).default('floor'),
});
export const kosmos2CodecSchema = z.object({ frame, bins: z.number().int().min(1).max(100).default(32) });

const CODECS = {
  shikra: {
    schema: shikraCodecSchema,
    create: (c: z.output<typeof shikraCodecSchema>) => new ShikraCodec(c),
    about:
      'Shikra plain decimals [x1,y1,x2,y2] in [0,1], 3 dp, padded-square frame; points [x,y]; boxes [b1;b2]',
  },
  qwen_vl: {
    schema: qwenVlCodecSchema,
    create: (c: z.output<typeof qwenVlCodecSchema>) => new QwenVlCodec(c),
    about: 'Qwen-VL <ref>phrase</ref><box>(x1,y1),(x2,y2)</box>, integers 0–999 (v = n/999)',
  },
  minigpt_v2: {
    schema: miniGptV2CodecSchema,
    create: (c: z.output<typeof miniGptV2CodecSchema>) => new MiniGptV2Codec(c),
    about:
      'MiniGPT-v2 {<x1><y1><x2><y2>} on a 0–100 grid (int() truncation), <delim> between boxes, <p>phrase</p>',
  },
  kosmos2: {
    schema: kosmos2CodecSchema,
    create: (c: z.output<typeof kosmos2CodecSchema>) => new Kosmos2Codec(c),
    about: 'Kosmos-2 <object><patch_index_UL><patch_index_LR></object> on 32×32 cells (1024 added tokens)',
  },
} as const;

export type LocationCodecName = keyof typeof CODECS;
export const LOCATION_CODEC_NAMES = Object.keys(CODECS) as LocationCodecName[];

/** A codec by name with its options validated (`{ frame: 'square' }`, …); unknown names list the known ones. */
export function createLocationCodec(name: string, options: Record<string, unknown> = {}): LocationCodec {
  if (!(name in CODECS))
    throw new Error(`Unknown location codec '${name}': use one of ${LOCATION_CODEC_NAMES.join(', ')}`);
  const entry = CODECS[name as LocationCodecName];
  const parsed = entry.schema.strict().safeParse(options);
  if (!parsed.success)
    throw new Error(
      `Invalid ${name} codec options: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  return (entry.create as (c: unknown) => LocationCodec)(parsed.data);
}

export function registerCodecs(registry: Registry): void {
  for (const name of LOCATION_CODEC_NAMES) {
    const { schema, create, about } = CODECS[name];
    registry.add({
      kind: 'codec',
      name,
      about,
      schema,
      create: create as (c: z.output<typeof schema>) => LocationCodec,
    });
  }
}
