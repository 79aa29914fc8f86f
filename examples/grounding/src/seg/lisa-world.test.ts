// A LISA-style model end to end on a tiny generated world: recipe → createModel + [SEG] + lisa_seg head →
// segmentation batches with mask targets through MultimodalModel.forward → core's Trainer → gIoU / cIoU.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { register as registerAdapters } from '@vistune/adapters';
import {
  createModel,
  createRegistry,
  disposeMultimodalBatch,
  InstructionDataLoader,
  initBackend,
  loadInstructionData,
  loadRecipe,
  type MultimodalBatch,
  type Recipe,
  type Registry,
  register as registerCore,
  tf,
} from '@vistune/core';
import { generateWorld, worldVocabulary, writeWorldTokenizer } from '@vistune/demo-world';
import { register as registerEncoders } from '@vistune/encoders';
import {
  evaluateSegmentation,
  generateAndSegment,
  type LisaRun,
  prepareLisaRun,
  register,
  type SegHeadOutput,
  type SegMaskTarget,
  segmentationTargets,
  trainLisa,
} from '@vistune/tasks-grounding';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let dir: string;
let registry: Registry;
let recipe: Recipe;
let run: LisaRun;

const TEXT_CONFIG = `{ model_type: llama, vocab_size: 322, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1,
      num_attention_heads: 2, num_key_value_heads: 2, max_position_embeddings: 128, tie_word_embeddings: false }`;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  dir = await mkdtemp(join(tmpdir(), 'lisa-'));
  await generateWorld({
    outDir: join(dir, 'world'),
    seed: 4,
    counts: { train: 8, val: 0, test: 3 },
    imageSize: 32,
    kinds: ['segmentation', 'segmentation', 'vqa_color'],
    questionsPerImage: 3,
  });
  await writeWorldTokenizer(join(dir, 'tok'), worldVocabulary(undefined, { segmentation: true }));
  await writeFile(
    join(dir, 'pre.json'),
    JSON.stringify({
      image_processor_type: 'CLIPImageProcessor',
      size: { shortest_edge: 32 },
      crop_size: { height: 32, width: 32 },
      rescale_factor: 1 / 255,
      image_mean: [0.5, 0.5, 0.5],
      image_std: [0.5, 0.5, 0.5],
    }),
  );
  await writeFile(
    join(dir, 'recipe.yaml'),
    `model:
  tokenizer: ./tok
  preprocessor: ./pre.json
  textStages: [text]
  calibrationExamples: 8
  model_type: llava
  image_token_index: 4
  vision_feature_layer: -1
  text_config: ${TEXT_CONFIG}
  vision_config: { model_type: clip_vision_model, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2, image_size: 32, patch_size: 8 }
  segHead:
    decoder: { dim: 16, heads: 2, depth: 1, mlpDim: 32, upscaleChannels: [8, 4], pixelSkip: true }
data: { train: ./world/train.json, images: ./world, template: vicuna_v1, systemPrompt: '', maxLength: 96, batchSize: 4 }
stages:
  - { name: text, train: ['*'], lr: 1.0e-2, steps: 4, schedule: constant }
  - { name: seg, train: ['*'], lr: 1.0e-2, steps: 30, warmupSteps: 2, schedule: constant_with_warmup }
checkpoint: { every: 0 }
output: ./run
`,
  );
  registry = createRegistry();
  registerCore(registry);
  registerEncoders(registry);
  registerAdapters(registry);
  register(registry);
  recipe = await loadRecipe(join(dir, 'recipe.yaml'));
  run = await prepareLisaRun(recipe, registry);
});

afterAll(async () => {
  run?.model.dispose();
  await rm(dir, { recursive: true, force: true });
});

describe('LISA on the demo world', () => {
  it('adds [SEG], grows the LLM by one row (old rows kept) and names the head’s parameters', async () => {
    expect(registry.list('head').map((e) => e.name)).toContain('lisa_seg');
    expect(run.tokenizer.tokenToId('[SEG]')).toBe(322);
    expect(run.head.triggerTokenId).toBe(322);
    const names = new Map(run.model.namedParameters());
    const table = names.get('llm.model.embed_tokens.weight') as tf.Variable;
    expect(table.shape).toEqual([323, 32]);
    expect((names.get('llm.lm_head.weight') as tf.Variable).shape).toEqual([323, 32]);
    // The same seed builds the same 322 rows: resizing kept them.
    const {
      tokenizer: _t,
      preprocessor: _p,
      textStages: _s,
      calibrationExamples: _c,
      segHead: _h,
      ...config
    } = (recipe.model as { config: Record<string, unknown> }).config;
    const fresh = await createModel(config, registry, { seed: recipe.seed });
    const freshTable = new Map(fresh.namedParameters()).get('llm.model.embed_tokens.weight') as tf.Variable;
    const kept = tf.tidy(() => tf.slice(table, [0, 0], [322, 32]).dataSync());
    expect(Array.from(kept)).toEqual(Array.from(freshTable.dataSync()));
    // The LLaVA outgrew its vocabulary: the rebuilt model is a vistune composition.
    expect(fresh.family?.name).toBe('llava');
    expect(run.model.family?.name).toBe('vistune');
    fresh.dispose();
    for (const n of [
      'heads.lisa_seg.text_hidden_fcs.0.0.weight',
      'heads.lisa_seg.text_hidden_fcs.0.2.weight',
      'heads.lisa_seg.mask_decoder.transformer.layers.0.cross_attn_token_to_image.q_proj.weight',
      'heads.lisa_seg.mask_decoder.output_hypernetworks_mlps.0.layers.2.weight',
    ])
      expect(names.has(n), n).toBe(true);
    // The head reads the image modality's encoder: no second copy of the tower.
    expect([...names.keys()].some((n) => n.startsWith('heads.lisa_seg.visual_model'))).toBe(false);
  });

  it('passes one mask target per [SEG] through MultimodalModel.forward: loss = CE + 2·BCE + 0.5·DICE', async () => {
    // Sample-major: a two-object record gives two targets in question order.
    const rows = [...run.source.examples].sort((a, b) => b.masks.length - a.masks.length).slice(0, 3);
    expect(rows[0]?.masks.length).toBe(2);
    const batch = await run.source.collate(rows);
    const ids = batch.inputIds.dataSync();
    const segs = Array.from(ids).filter((id) => id === 322).length;
    const targets = batch.headTargets?.lisa_seg as SegMaskTarget[];
    expect(targets.length).toBe(segs);
    expect(targets.length).toBe(rows.reduce((n, r) => n + r.masks.length, 0));
    const out = run.model.forward(batch, { logits: false });
    const head = out.heads.lisa_seg?.output as Required<SegHeadOutput>;
    expect(head.logits.shape).toEqual([segs, 32, 32]);
    const [loss, lm, bce, dice] = [out.loss, out.lmLoss, head.bce, head.dice].map(
      (t) => t?.dataSync()[0] as number,
    );
    expect(loss).toBeCloseTo((lm as number) + 2 * (bce as number) + 0.5 * (dice as number), 4);
    tf.dispose(
      [out.loss, out.lmLoss, head.logits, head.bce, head.dice, out.heads.lisa_seg?.loss].filter(
        (t) => t !== undefined,
      ) as tf.Tensor[],
    );
    tf.dispose(
      [batch.inputIds, batch.attentionMask, batch.labels].filter((t) => t !== undefined) as tf.Tensor[],
    );
    tf.dispose(Object.values(batch.media ?? {}).flat(2));
  });

  it('core’s InstructionDataLoader carries the masks (segmentationTargets): same head loss as SegmentationBatchSource', async () => {
    const { examples } = await loadInstructionData({
      files: join(dir, 'world', 'train.json'),
      imageFolder: join(dir, 'world'),
      tokenizer: run.tokenizer,
      template: 'vicuna_v1',
      templateOptions: { systemPrompt: '' },
      imageToken: { id: 4, slots: 16 },
      maxLength: 96,
      targets: segmentationTargets(322),
    });
    const rows = examples.filter((e) => (e.targets?.lisa_seg?.length ?? 0) > 0).slice(0, 3);
    const loader = new InstructionDataLoader(rows, {
      batchSize: 3,
      padTokenId: run.tokenizer.padTokenId ?? run.tokenizer.eosTokenId ?? 0,
      shuffle: false,
      loadImage: async (path) => (await run.loadImage(path)).pixels,
    });
    const batch = (await loader.next()) as MultimodalBatch;
    const ours = run.source.examples.filter((e) => rows.some((r) => r.id === e.example.id));
    const reference = await run.source.collate(
      rows.map((r) => ours.find((e) => e.example.id === r.id) as (typeof ours)[number]),
    );
    expect(Array.from(batch.inputIds.dataSync())).toEqual(Array.from(reference.inputIds.dataSync()));
    const targets = batch.headTargets?.lisa_seg as SegMaskTarget[];
    expect(targets.length).toBe((reference.headTargets?.lisa_seg ?? []).length);
    expect(targets.length).toBeGreaterThan(0);
    const loss = (b: MultimodalBatch) => {
      const out = run.model.forward(b, { logits: false });
      const value = out.heads.lisa_seg?.loss?.dataSync()[0] as number;
      tf.dispose(
        [
          out.loss,
          out.lmLoss,
          ...Object.values(out.heads).flatMap((h) => [
            h.loss,
            ...Object.values(h.output as Record<string, tf.Tensor>),
          ]),
        ].filter((t) => t !== undefined) as tf.Tensor[],
      );
      return value;
    };
    // The world's 32-px images are not resized: a plain-resize mapping equals the processor's transform.
    expect(loss(batch)).toBeCloseTo(loss(reference), 5);
    disposeMultimodalBatch(batch);
    disposeMultimodalBatch(reference);
    loader.dispose();
  });

  it('trains with core’s Trainer (text stage, then segmentation: loss falls), then scores gIoU / cIoU', async () => {
    // The text stage reads only the records without masks; the segmentation stage reads all of them.
    expect(run.textSource?.examples.length).toBeGreaterThan(0);
    expect(run.textSource?.examples.every((e) => e.masks.length === 0)).toBe(true);
    const withMasks = run.source.examples.filter((e) => e.masks.length > 0).length;
    expect(withMasks).toBeGreaterThan(8);
    expect(run.source.examples.length).toBe((run.textSource?.examples.length ?? 0) + withMasks);
    const before = tf.memory().numTensors;
    const result = await trainLisa(recipe, run);
    expect(result.status).toBe('completed');
    expect(result.metrics.map((m) => m.stage)).toEqual([...Array(4).fill('text'), ...Array(30).fill('seg')]);
    const losses = result.metrics.filter((m) => m.stage === 'seg').map((m) => m.loss);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(losses.slice(-5))).toBeLessThan(0.6 * mean(losses.slice(0, 3)));
    expect(tf.memory().numTensors).toBeLessThanOrEqual(before + 2);

    const test = await run.examples(join(dir, 'world', 'test.json'));
    expect(test.skipped).toEqual([]);
    const masks = test.examples.reduce((n, e) => n + e.masks.length, 0);
    const scores = await evaluateSegmentation(run, test.examples, { generate: true, maxNewTokens: 8 });
    expect(scores.teacherForced.count).toBe(masks);
    expect(scores.generated?.count).toBe(masks);
    for (const r of [scores.teacherForced, scores.generated]) {
      expect(r?.gIoU).toBeGreaterThanOrEqual(0);
      expect(r?.gIoU).toBeLessThanOrEqual(1);
      expect(r?.cIoU).toBeCloseTo((r?.intersection ?? 0) / (r?.union ?? 1), 8);
    }

    const example = test.examples[0];
    if (!example) throw new Error('no test example');
    const image = await run.loadImage(example.image);
    const seg = generateAndSegment(
      run.model,
      run.head,
      Array.from(example.example.inputIds.subarray(0, example.promptLength)),
      { image: [[image.pixels]] },
      { width: 32, height: 32, transform: image.transform },
      { maxNewTokens: 8, eosTokenIds: run.tokenizer.eosTokenIds },
    );
    image.pixels.dispose();
    expect(seg.masks.length).toBe(seg.ids.filter((id) => id === 322).length);
    for (const m of seg.masks) expect(m.length).toBe(32 * 32);
  });
});
