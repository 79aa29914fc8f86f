// Location codecs: how a model reads and writes boxes and points as text (survey §5.1, reference A.1).
import type { ImageTransform } from '@vistune/encoders';
import type { Box, Point } from '../box.js';

/**
 * The frame a codec's [0,1] coordinates are relative to:
 * - `processed`: the pixels the model sees, after the processor's pad / resize / crop (the default: with a
 *   pad-to-square processor this is Shikra's padded square; with a plain square resize it is the original);
 * - `square`: the original padded to a centred square (Shikra's `expand2square`), whatever the processor does;
 * - `original`: the original image (Qwen-VL, MiniGPT-v2, Kosmos-2 as published; they resize without cropping).
 */
export type CodecFrame = 'processed' | 'square' | 'original';
export const CODEC_FRAMES = ['processed', 'square', 'original'] as const;

/** A phrase bound to its boxes (`<ref>…</ref><box>…</box>`, `<phrase>…</phrase><object>…</object>`). */
export interface GroundedPhrase {
  phrase: string;
  boxes: Box[];
}

export interface DecodeResult {
  /** Every well-formed box, in text order, in original-image pixels (clamped to the image). */
  boxes: Box[];
  /** Every well-formed point (codecs with a point syntax only). */
  points: Point[];
  /** Phrase–box pairs, for codecs that delimit phrases. */
  refs: GroundedPhrase[];
  /** Box-like spans that did not parse (wrong arity, out of range, inverted, unterminated). */
  malformed: number;
}

export interface LocationCodec {
  /** Registry name (`shikra`, `qwen_vl`, `minigpt_v2`, `kosmos2`). */
  readonly name: string;
  readonly frame: CodecFrame;
  /** Tokens to add to the tokenizer (Tokenizer.addTokens) before training; empty for plain-text codecs. */
  readonly specialTokens: readonly string[];
  /** One box, given in original-image pixels. */
  encodeBox(box: Box, transform: ImageTransform): string;
  /** Several boxes of one answer or phrase, in the codec's multi-box syntax. */
  encodeBoxes(boxes: readonly Box[], transform: ImageTransform): string;
  /** A point; codecs without a point syntax write the degenerate box (x, y, x, y). */
  encodePoint(point: Point, transform: ImageTransform): string;
  /** A phrase grounded to boxes, in the codec's phrase syntax. */
  encodeRef(phrase: string, boxes: readonly Box[], transform: ImageTransform): string;
  /** Every box, point and phrase in model text; never throws on malformed text. */
  decodeAll(text: string, transform: ImageTransform): DecodeResult;
}
