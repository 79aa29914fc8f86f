// The [SEG] head on a tiny real ViT: one mask per occurrence in order, its loss against a plain-JS
// BCE/DICE computed at the original resolution, and every gradient against finite differences.
import { initBackend, tf } from '@vistune/core';
import { ImageTransform } from '@vistune/encoders';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SegHeadOutput, SegMaskTarget } from './head.js';
import { closeness, det, numericVariableGrad, TINY_IMAGE, TINY_LLM_HIDDEN, tinyHead } from './test-utils.js';

const S = TINY_IMAGE;
let images: tf.Tensor[];
let hidden: tf.Tensor2D;
const sample = Int32Array.from([0, 0, 1]);
const position = Int32Array.from([3, 7, 5]);

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  images = [det([3, S, S], 11), det([3, S, S], 12)];
  hidden = tf.mul(det([3, TINY_LLM_HIDDEN], 4), 2) as tf.Tensor2D;
});
afterAll(() => tf.dispose([...images, hidden]));

const media = () => new Map([['image', [[images[0] as tf.Tensor], [images[1] as tf.Tensor]]]]);

/** Targets in three frames: LLaVA pad + resize of a 10×8 original, the processed frame itself, a 20×20 plain resize. */
function targets(): SegMaskTarget[] {
  const pattern = (w: number, h: number, seed: number) =>
    Uint8Array.from({ length: w * h }, (_, i) => (Math.sin(seed + i * 1.7) > 0.2 ? 1 : 0));
  const padded = new ImageTransform({
    originalWidth: 10,
    originalHeight: 8,
    padLeft: 0,
    padTop: 1,
    paddedWidth: 10,
    paddedHeight: 10,
    resizedWidth: S,
    resizedHeight: S,
    cropLeft: 0,
    cropTop: 0,
    width: S,
    height: S,
  });
  return [
    { mask: pattern(10, 8, 1), width: 10, height: 8, transform: padded },
    { mask: pattern(S, S, 2), width: S, height: S },
    { mask: pattern(20, 20, 3), width: 20, height: 20 },
  ];
}

/** Bilinear sample of a [S, S] map at continuous pixel index (u, v), clamped to the edge (independent of resample.ts). */
function sampleAt(map: Float32Array, u: number, v: number): number {
  const cu = Math.min(Math.max(u, 0), S - 1);
  const cv = Math.min(Math.max(v, 0), S - 1);
  const x0 = Math.floor(cu);
  const y0 = Math.floor(cv);
  const x1 = Math.min(x0 + 1, S - 1);
  const y1 = Math.min(y0 + 1, S - 1);
  const fx = cu - x0;
  const fy = cv - y0;
  const at = (x: number, y: number) => map[y * S + x] as number;
  return (
    (1 - fy) * ((1 - fx) * at(x0, y0) + fx * at(x1, y0)) + fy * ((1 - fx) * at(x0, y1) + fx * at(x1, y1))
  );
}

/** LISA's per-mask BCE and DICE in plain JS, at the original resolution. */
function referenceLoss(logits: Float32Array, ts: SegMaskTarget[]) {
  let bce = 0;
  let dice = 0;
  ts.forEach((t, k) => {
    const map = logits.subarray(k * S * S, (k + 1) * S * S);
    let b = 0;
    let py = 0;
    let p = 0;
    let y = 0;
    for (let j = 0; j < t.height; j++) {
      for (let i = 0; i < t.width; i++) {
        const [xp, yp] = t.transform
          ? t.transform.toProcessed(i + 0.5, j + 0.5)
          : [((i + 0.5) * S) / t.width, ((j + 0.5) * S) / t.height];
        const x = sampleAt(map, xp - 0.5, yp - 0.5);
        const target = t.mask[j * t.width + i] as number;
        b += Math.max(x, 0) - x * target + Math.log1p(Math.exp(-Math.abs(x)));
        const s = 1 / (1 + Math.exp(-x));
        py += (s / 1000) * target;
        p += s / 1000;
        y += target / 1000;
      }
    }
    bce += b / (t.width * t.height);
    dice += 1 - (2 * py + 1e-6) / (p + y + 1e-6);
  });
  return { bce: bce / ts.length, dice: dice / ts.length };
}

describe('LisaSegHead', () => {
  it('gives one mask per [SEG], in order, each from its own state and its own sample’s image', () => {
    const { head } = tinyHead();
    const all = head.forward({ hidden, sample, position, media: media() }).output.logits;
    expect(all.shape).toEqual([3, S, S]);
    const rows = all.arraySync();
    for (let k = 0; k < 3; k++) {
      const one = tf.tidy(() =>
        head
          .forward({
            hidden: tf.slice(hidden, [k, 0], [1, -1]),
            sample: sample.subarray(k, k + 1),
            position: position.subarray(k, k + 1),
            media: media(),
          })
          .output.logits.arraySync(),
      );
      expect(closeness((one[0] ?? []).flat(), (rows[k] ?? []).flat(), 1e-4, 1e-5)).toBeLessThanOrEqual(1);
    }
    // Two prompts on the same image give different masks.
    const diff = tf.tidy(
      () => tf.max(tf.abs(tf.sub(tf.slice(all, [0], [1]), tf.slice(all, [1], [1])))).dataSync()[0],
    );
    expect(diff).toBeGreaterThan(1e-3);
    all.dispose();
    head.dispose();
  });

  it('loss = 2·BCE + 0.5·DICE per mask at the original resolution (plain-JS reference)', () => {
    const { head } = tinyHead({ pixelSkip: true });
    const ts = targets();
    const out = head.forward({ hidden, sample, position, media: media(), targets: ts });
    const { logits, bce, dice } = out.output as Required<SegHeadOutput>;
    const ref = referenceLoss(logits.dataSync() as Float32Array, ts);
    expect(bce.dataSync()[0]).toBeCloseTo(ref.bce, 5);
    expect(dice.dataSync()[0]).toBeCloseTo(ref.dice, 5);
    expect(out.loss?.dataSync()[0]).toBeCloseTo(2 * ref.bce + 0.5 * ref.dice, 5);
    expect(ref.dice).toBeGreaterThan(0.05);
    tf.dispose([logits, bce, dice, out.loss as tf.Scalar]);
    head.dispose();
  });

  it('has gradients matching finite differences for its input, its parameters and the shared encoder', () => {
    const { head, encoder } = tinyHead({ pixelSkip: true, seed: 8 });
    const ts = targets();
    const loss = (h: tf.Tensor2D) =>
      head.forward({ hidden: h, sample, position, media: media(), targets: ts }).loss as tf.Scalar;
    const value = () => tf.tidy(() => loss(hidden).dataSync()[0] as number);

    // d loss / d hidden, every entry.
    const analyticHidden = tf.tidy(() =>
      tf
        .grad((h: tf.Tensor) => loss(h as tf.Tensor2D))(hidden)
        .dataSync(),
    );
    const h0 = hidden.dataSync().slice();
    const numericHidden = Array.from(h0, (_, i) => {
      const shifted = (d: number) => {
        const v = h0.slice();
        v[i] = (v[i] as number) + d;
        return tf.tidy(() => loss(tf.tensor2d(v, hidden.shape)).dataSync()[0] as number);
      };
      return (shifted(1e-2) - shifted(-1e-2)) / 2e-2;
    });
    expect(closeness(analyticHidden, numericHidden)).toBeLessThanOrEqual(1);

    const names = [
      'text_hidden_fcs.0.0.weight',
      'text_hidden_fcs.0.2.bias',
      'mask_decoder.image_proj.weight',
      'mask_decoder.no_mask_embed.weight',
      'mask_decoder.mask_tokens.weight',
      'mask_decoder.transformer.layers.0.self_attn.q_proj.weight',
      'mask_decoder.transformer.layers.0.cross_attn_image_to_token.v_proj.weight',
      'mask_decoder.transformer.layers.0.norm4.weight',
      'mask_decoder.transformer.final_attn_token_to_image.out_proj.weight',
      'mask_decoder.output_upscaling.0.weight',
      'mask_decoder.output_upscaling_norm.bias',
      'mask_decoder.output_upscaling.1.weight',
      'mask_decoder.output_hypernetworks_mlps.0.layers.2.weight',
      'mask_decoder.pixel_proj.0.weight',
    ];
    const params = new Map(head.namedParameters());
    const encoderParams = new Map(encoder.namedParameters());
    const chosen = [
      ...names.map((n) => [n, params.get(n)] as const),
      ['encoder: last layer fc2', encoderParams.get('vision_model.encoder.layers.0.mlp.fc2.weight')] as const,
    ];
    for (const [name, v] of chosen) if (!v) throw new Error(`no parameter ${name}`);
    const variables = chosen.map(([, v]) => v as tf.Variable);
    const { value: l, grads } = tf.variableGrads(() => loss(hidden), variables);
    l.dispose();
    chosen.forEach(([name, v]) => {
      const variable = v as tf.Variable;
      const indices = [0, 1, 2, 3, 5, 7].map((i) => (i * 7919) % variable.size);
      const analytic = (grads[variable.name] as tf.Tensor).dataSync();
      const numeric = numericVariableGrad(value, variable, indices);
      expect(
        closeness(
          indices.map((i) => analytic[i] as number),
          numeric,
        ),
        name,
      ).toBeLessThanOrEqual(1);
    });
    tf.dispose(Object.values(grads));
    head.dispose();
    encoder.dispose();
  });

  it('calibrateProjection standardises text_hidden_fcs.0.0 over the given states (data-dependent init)', () => {
    const { head, encoder } = tinyHead();
    // States sharing one large common component, differing by a few percent (a fresh LLM's [SEG] states).
    const states = tf.tidy(() =>
      tf.add(tf.mul(det([40, TINY_LLM_HIDDEN], 6), 0.03), det([1, TINY_LLM_HIDDEN], 2)),
    );
    head.calibrateProjection(states as tf.Tensor2D);
    const first = head.textHiddenFcs[0];
    if (!first) throw new Error('no projection');
    const pre = tf.tidy(() => first.forward(states).arraySync() as number[][]);
    for (let j = 0; j < (pre[0]?.length ?? 0); j++) {
      const column = pre.map((row) => row[j] as number);
      const mean = column.reduce((a, b) => a + b, 0) / column.length;
      const variance = column.reduce((a, b) => a + (b - mean) ** 2, 0) / column.length;
      expect(mean).toBeCloseTo(0, 4);
      expect(variance).toBeCloseTo(1, 3);
    }
    tf.dispose(states);
    head.dispose();
    encoder.dispose();
  });

  it('names the missing piece when the batch cannot be segmented', () => {
    const { head, encoder } = tinyHead();
    expect(() => head.forward({ hidden, sample, position })).toThrow(/no media "image"/);
    expect(() =>
      head.forward({ hidden, sample, position, media: new Map([['image', [[images[0] as tf.Tensor], []]]]) }),
    ).toThrow(/sample 1 has \[SEG\] but no "image" item/);
    expect(() =>
      head.forward({ hidden, sample, position, media: media(), targets: targets().slice(1) }),
    ).toThrow(/2 mask targets for 3 \[SEG\]/);
    expect(() => head.bindVision(encoder)).toThrow(/already bound/);
    head.dispose();
    encoder.dispose();
  });
});
