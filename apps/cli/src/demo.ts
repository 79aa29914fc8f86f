// The embedded demo: a generated world → a tiny LLaVA built from scratch → two training stages → held-out
// evaluation per question kind → sample conversations with boxes drawn. Everything runs locally.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  createLlava,
  InstructionDataLoader,
  parseRecipe,
  type Registry,
  type StageRecipe,
  type StepMetrics,
  Trainer,
  tf,
} from '@vistune/core';
import {
  BoxCodec,
  describeLayout,
  drawBoxes,
  generateWorld,
  loadWorldSplit,
  type SceneLayout,
  scoreWorldPredictions,
  type WorldRecord,
  type WorldScores,
  writeWorldTokenizer,
} from '@vistune/demo-world';
import type { ImageProcessor } from '@vistune/encoders';
import { evaluate } from './evaluate.js';
import type { LoadedModel } from './runtime.js';
import { modelSaver } from './training.js';

export type DemoSize = 'smoke' | 'quick' | 'full';

export interface DemoOptions {
  out: string;
  seed: number;
  /** smoke: a few steps to check the wiring (tests); quick: ~3 minutes; full: sized to learn. */
  size: DemoSize;
  onLog: (line: string) => void;
  onStep?: (m: StepMetrics) => void;
  onStage?: (name: string, steps: number) => void;
  onEval?: (done: number, total: number) => void;
}

export interface DemoResult {
  scores: WorldScores;
  trainSeconds: number;
  totalSeconds: number;
  modelDir: string;
  samples: { id: string; question: string; answer: string; truth: string; image: string }[];
}

/** Sizes: the quick run shows the loop in ~2-3 minutes; the default run is sized to learn within ~15. */
function plan(size: DemoSize) {
  if (size === 'smoke') return { images: 12, test: 6, alignSteps: 2, tuneSteps: 3, batch: 4 };
  return size === 'quick'
    ? { images: 400, test: 60, alignSteps: 40, tuneSteps: 260, batch: 8 }
    : { images: 2400, test: 200, alignSteps: 150, tuneSteps: 1500, batch: 8 };
}

const IMAGE_SIZE = 64;

/** A HF LlavaConfig for a model small enough to train from scratch on two CPU cores. */
function demoModelConfig(imageTokenId: number, vocabSize: number) {
  return {
    model_type: 'llava',
    image_token_index: imageTokenId,
    vision_feature_layer: -1,
    vision_feature_select_strategy: 'default',
    projector_hidden_act: 'gelu',
    text_config: {
      model_type: 'llama',
      vocab_size: vocabSize,
      hidden_size: 128,
      intermediate_size: 256,
      num_hidden_layers: 4,
      num_attention_heads: 4,
      num_key_value_heads: 4,
      max_position_embeddings: 512,
      tie_word_embeddings: true,
      bos_token_id: 1,
      eos_token_id: 2,
      pad_token_id: 3,
    },
    vision_config: {
      model_type: 'clip_vision_model',
      hidden_size: 64,
      intermediate_size: 256,
      num_hidden_layers: 2,
      num_attention_heads: 2,
      image_size: IMAGE_SIZE,
      patch_size: 8,
      hidden_act: 'gelu',
    },
  };
}

/** One multi-turn sample per image: the questions about an image share its 64 image tokens. */
function mergeByImage(records: readonly WorldRecord[]) {
  const byImage = new Map<string, WorldRecord[]>();
  for (const r of records) byImage.set(r.image, [...(byImage.get(r.image) ?? []), r]);
  return [...byImage.values()].map((rs) => ({
    id: rs[0].id,
    image: rs[0].image,
    conversations: rs.flatMap((r, i) =>
      r.conversations.map((t, j) =>
        i > 0 && j === 0 ? { ...t, value: t.value.replace('<image>\n', '') } : t,
      ),
    ),
  }));
}

export async function runDemo(registry: Registry, opts: DemoOptions): Promise<DemoResult> {
  const t0 = performance.now();
  const p = plan(opts.size);
  const out = resolve(opts.out);
  const worldDir = join(out, 'world');
  opts.onLog(`generating the world: ${p.images} training images of coloured shapes, ${p.test} held out`);
  await generateWorld({
    outDir: worldDir,
    seed: opts.seed,
    imageSize: IMAGE_SIZE,
    questionsPerImage: 4,
    counts: { train: p.images, val: 20, test: p.test },
  });
  const tokenizer = await writeWorldTokenizer(join(out, 'tokenizer'));
  const preprocessorPath = join(out, 'preprocessor_config.json');
  await writeFile(
    preprocessorPath,
    `${JSON.stringify(
      {
        image_processor_type: 'CLIPImageProcessor',
        do_resize: false,
        do_center_crop: false,
        do_rescale: true,
        rescale_factor: 1 / 255,
        do_normalize: true,
        image_mean: [0.5, 0.5, 0.5],
        image_std: [0.5, 0.5, 0.5],
        size: { shortest_edge: IMAGE_SIZE },
        crop_size: { height: IMAGE_SIZE, width: IMAGE_SIZE },
      },
      null,
      2,
    )}\n`,
  );

  const train = await loadWorldSplit(join(worldDir, 'train.json'));
  await writeFile(join(worldDir, 'train-merged.json'), JSON.stringify(mergeByImage(train)));
  const scenes = JSON.parse(await readFile(join(worldDir, 'scenes.json'), 'utf8')) as {
    train: Record<string, SceneLayout>;
  };
  const captions = Object.entries(scenes.train).map(([image, layout], i) => ({
    id: `caption-${i}`,
    image,
    conversations: [
      { from: 'human', value: '<image>' },
      { from: 'gpt', value: describeLayout(layout) },
    ],
  }));
  await writeFile(join(worldDir, 'captions.json'), JSON.stringify(captions));

  const imageTokenId = tokenizer.tokenToId('<image>');
  if (imageTokenId === undefined || imageTokenId === null)
    throw new Error('the world tokenizer has no <image> token');
  const hf = demoModelConfig(imageTokenId, tokenizer.vocabSize);
  const model = await createLlava(hf, registry, { seed: opts.seed });
  const processor = (await registry.create('processor', {
    type: 'clip',
    pretrained: preprocessorPath,
  })) as ImageProcessor;
  const loaded: LoadedModel = {
    dir: join(out, 'tokenizer'),
    model,
    tokenizer,
    processor,
    preprocessorPath,
    imageToken: { id: imageTokenId, text: '<image>', slots: model.imageSeqLength },
  };
  opts.onLog(
    `model: ViT 64-d × 2 layers → MLP projector → LLaMA 128-d × 4 layers, ${(model.numParameters() / 1e6).toFixed(2)}M parameters, ${model.imageSeqLength} image tokens`,
  );

  const pixels = new Map<string, Float32Array>();
  const loadImage = async (path: string) => {
    let v = pixels.get(path);
    if (!v) {
      v = (await processor.preprocess(path)).pixelValues;
      pixels.set(path, v);
    }
    return tf.tensor3d(v, [3, IMAGE_SIZE, IMAGE_SIZE]);
  };
  // There is no pretrained encoder for this world, so stage 1 aligns the tower with the projector (LLaVA freezes a CLIP tower instead).
  const recipe = parseRecipe(
    {
      model: hf,
      data: {
        train: join(worldDir, 'train-merged.json'),
        template: 'vicuna_v1',
        systemPrompt: '',
        maxLength: 512,
        batchSize: p.batch,
      },
      stages: [
        {
          name: 'align',
          template: 'plain',
          train: ['modalities.image.*'],
          lr: 2e-3,
          steps: p.alignSteps,
          warmupRatio: 0.05,
        },
        {
          name: 'instruct',
          train: ['*'],
          lr: 2e-3,
          steps: p.tuneSteps,
          warmupRatio: 0.05,
          schedule: 'cosine_with_min_lr',
          minLrRatio: 0.1,
        },
      ],
      optimizer: { weightDecay: 0, clip: 1.0 },
      checkpoint: { every: 0, keep: 1 },
      seed: opts.seed,
      output: join(out, 'run'),
    },
    { source: 'vistune demo' },
  );
  const data = (stage: StageRecipe) =>
    InstructionDataLoader.fromFiles({
      files: stage.name === 'align' ? join(worldDir, 'captions.json') : join(worldDir, 'train-merged.json'),
      tokenizer,
      template: stage.template === 'plain' ? 'plain' : 'vicuna_v1',
      templateOptions: { systemPrompt: '' },
      imageToken: { id: imageTokenId, slots: model.imageSeqLength },
      maxLength: 512,
      batchSize: p.batch,
      loadImage,
      seed: opts.seed,
    });
  const tTrain = performance.now();
  const trainer = new Trainer({
    model,
    recipe,
    data,
    saveModel: modelSaver(loaded),
    onStep: opts.onStep,
    onEvent: (e) => {
      if (e.type === 'stage-start') opts.onStage?.(e.stage, e.steps);
    },
  });
  const result = await trainer.run();
  const trainSeconds = (performance.now() - tTrain) / 1000;
  const modelDir = result.modelDir ?? join(out, 'run', 'model');

  const test = await loadWorldSplit(join(worldDir, 'test.json'));
  const predictions = await evaluate(loaded, {
    data: join(worldDir, 'test.json'),
    template: 'vicuna_v1',
    systemPrompt: '',
    maxLength: 512,
    generate: { maxNewTokens: 24, eosTokenIds: tokenizer.eosTokenIds },
    onPrediction: (_, done) => opts.onEval?.(done, test.length),
  });
  const byId: Record<string, string[]> = {};
  for (const pr of predictions) (byId[pr.id] ??= []).push(pr.prediction);
  const scores = scoreWorldPredictions(test, byId);

  const codec = new BoxCodec();
  const samples: DemoResult['samples'] = [];
  await mkdir(join(out, 'samples'), { recursive: true });
  for (const r of test.filter((t) => t.kind === 'grounding').slice(0, 3)) {
    const answer = byId[r.id]?.[0] ?? '';
    const truthBox = r.truth[0].box;
    const predicted = codec.decode(answer, r.imageSize);
    const image = join(out, 'samples', `${r.id}.png`);
    await drawBoxes(
      join(worldDir, r.image),
      [
        ...(truthBox ? [{ box: truthBox, label: 'truth', color: 'green' as const }] : []),
        ...(predicted ? [{ box: predicted, label: 'model', color: 'red' as const }] : []),
      ],
      image,
    );
    samples.push({
      id: r.id,
      question: r.conversations[0].value.replace('<image>\n', ''),
      answer,
      truth: r.truth[0].answer,
      image,
    });
  }
  for (const r of test.filter((t) => t.kind !== 'grounding' && t.kind !== 'description').slice(0, 3)) {
    samples.push({
      id: r.id,
      question: r.conversations[0].value.replace('<image>\n', ''),
      answer: byId[r.id]?.[0] ?? '',
      truth: r.truth[0].answer,
      image: join(worldDir, r.image),
    });
  }
  model.dispose();
  return { scores, trainSeconds, totalSeconds: (performance.now() - t0) / 1000, modelDir, samples };
}
