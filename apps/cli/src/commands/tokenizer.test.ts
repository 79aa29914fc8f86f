// The tokenizer → recipe → params → train → extend path through the real CLI (dist/bin.js), on a tiny world.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { initBackend, loadSafetensorsDir, Tokenizer, tf } from '@vistune/core';
import { generateWorld } from '@vistune/demo-world';
import { beforeAll, describe, expect, it } from 'vitest';

const bin = new URL('../../dist/bin.js', import.meta.url).pathname;
const run = promisify(execFile);
const vistune = (...args: string[]) =>
  run(process.execPath, [bin, ...args], { env: { ...process.env, NO_COLOR: '1' } });
const json = async (...args: string[]) => JSON.parse((await vistune(...args)).stdout);

let dir = '';

/** A recipe that names neither vocab_size nor a preprocessor: both follow from the tokenizer and the tower. */
const RECIPE = `model:
  tokenizer: ./tok
  model_type: vistune
  llm: { type: llama, config: { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2, max_position_embeddings: 256 } }
  modalities:
    image:
      placeholder_token_id: 4
      encoder: { type: siglip_vision, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, image_size: 32, patch_size: 16 }
      adapter: { type: mlp2x_gelu }
data: { train: ./world/train.json, template: vicuna_v1, systemPrompt: '', maxLength: 128, batchSize: 4 }
stages:
  - { name: align, train: ['modalities.image.adapter.*'], lr: 1.0e-3, steps: 1 }
  - { name: tune, train: ['llm.*', 'modalities.image.*'], freeze: ['llm.model.embed_tokens.*'], paramGroups: [{ patterns: ['modalities.image.encoder.*'], lr: 1.0e-4 }], lr: 1.0e-3, steps: 1, lora: { r: 2, alpha: 4, targets: ['llm.model.layers.*.q_proj'] } }
checkpoint: { every: 0 }
output: ./run
`;

beforeAll(async () => {
  await initBackend({ backend: 'cpu', quiet: true });
  dir = await mkdtemp(join(tmpdir(), 'vistune-tokenizer-cli-'));
  await generateWorld({
    outDir: join(dir, 'world'),
    seed: 5,
    counts: { train: 16, val: 2, test: 2 },
    imageSize: 32,
  });
  await writeFile(join(dir, 'recipe.yaml'), RECIPE);
});

describe('vistune tokenizer / params', () => {
  it('trains a tokenizer on the rendered records; a recipe reads vocab_size and a preprocessor from it; params lists the stages; extend grows a saved model', async () => {
    const trained = await json(
      'tokenizer',
      'train',
      '--data',
      join(dir, 'world', 'train.json'),
      '--vocab-size',
      '400',
      '--model',
      'wordlevel',
      '--min-frequency',
      '1',
      '--system-prompt',
      '',
      '--out',
      join(dir, 'tok'),
      '--json',
    );
    expect(trained).toMatchObject({ model: 'wordlevel', mediaTokenIds: { image: 4 }, split: { share: 0 } });
    expect(trained.corpus.samples).toBeGreaterThan(16);
    const tokenizer = await Tokenizer.fromDir(join(dir, 'tok'));
    expect(tokenizer.vocabSize).toBe(trained.vocabSize);
    // The answer after "ASSISTANT:" carries a leading space in training text: that form is one token.
    const prompt = tokenizer.applyChatTemplate(
      [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'What colour is the circle?' }] }],
      { addGenerationPrompt: true },
    );
    expect(prompt).toBe('USER: <image>\nWhat colour is the circle? ASSISTANT:');
    const answer = JSON.parse(readFileSync(join(dir, 'world', 'train.json'), 'utf8'))[0].conversations[1]
      .value;
    const firstWord = ` ${answer.split(/[ .]/)[0]}`;
    expect(tokenizer.encode(firstWord, { addSpecialTokens: false })).toHaveLength(1);

    const params = await vistune('params', '--config', join(dir, 'recipe.yaml'), '--json');
    // The recipe says so when it fills in vocab_size and a preprocessor.
    expect(params.stderr).toContain(`model.llm.config.vocab_size: ${trained.vocabSize}`);
    expect(params.stderr).toMatch(/using siglip \(resize to 32×32, mean\/std 0\.5\)/);
    const { stages } = JSON.parse(params.stdout);
    expect(stages.map((s: { stage: string }) => s.stage)).toEqual(['align', 'tune']);
    const find = (si: number, name: string) =>
      stages[si].parameters.find((p: { name: string }) => p.name === name);
    expect(find(0, 'llm.model.embed_tokens.weight')).toMatchObject({
      shape: [trained.vocabSize, 32],
      trainable: false,
    });
    expect(find(0, 'modalities.image.adapter.linear_1.weight')).toMatchObject({ trainable: true, lr: 1e-3 });
    expect(find(1, 'llm.model.embed_tokens.weight').trainable).toBe(false);
    expect(find(1, 'llm.model.layers.0.self_attn.q_proj.lora_A.weight')).toMatchObject({
      shape: [2, 32],
      trainable: true,
    });
    expect(find(1, 'modalities.image.encoder.vision_model.embeddings.patch_embedding.weight')).toMatchObject({
      trainable: true,
      lr: 1e-4,
    });

    const result = await json('train', '--config', join(dir, 'recipe.yaml'), '--json');
    expect(result.status).toBe('completed');
    const saved = JSON.parse(readFileSync(join(result.modelDir, 'preprocessor_config.json'), 'utf8'));
    expect(saved).toMatchObject({
      image_processor_type: 'SiglipImageProcessor',
      size: { height: 32, width: 32 },
    });

    const extended = await json(
      'tokenizer',
      'extend',
      '--model',
      result.modelDir,
      '--add',
      '[SEG]',
      '--special',
      '--out',
      join(dir, 'extended'),
      '--json',
    );
    expect(extended).toMatchObject({
      added: { '[SEG]': trained.vocabSize },
      vocabSize: { before: trained.vocabSize, after: trained.vocabSize + 1 },
      resized: true,
    });
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'preprocessor_config.json'])
      expect(existsSync(join(dir, 'extended', f)), f).toBe(true);
    // Old rows are kept; the new row is the mean of the old ones (HF mean init; the noise term is ~1e-9).
    const before = await loadSafetensorsDir(result.modelDir);
    const after = await loadSafetensorsDir(join(dir, 'extended'));
    const name = 'llm.model.embed_tokens.weight';
    const old = before.get(name) as tf.Tensor2D;
    const grown = after.get(name) as tf.Tensor2D;
    expect(grown.shape).toEqual([trained.vocabSize + 1, 32]);
    expect(tf.slice(grown, [0, 0], [trained.vocabSize, -1]).arraySync()).toEqual(old.arraySync());
    const mean = tf.mean(old, 0).arraySync() as number[];
    const added = (tf.slice(grown, [trained.vocabSize, 0], [1, -1]).arraySync() as number[][])[0];
    for (const [i, v] of added.entries()) expect(v).toBeCloseTo(mean[i], 3);
    const reloaded = await Tokenizer.fromDir(join(dir, 'extended'));
    expect(reloaded.encode('[SEG]', { addSpecialTokens: false })).toEqual([trained.vocabSize]);

    // The extended folder loads and generates; `extend` refuses to write over it.
    const gen = await json(
      'generate',
      '--model',
      join(dir, 'extended'),
      '--image',
      join(dir, 'world', 'images', 'train-00000.png'),
      '--prompt',
      'What colour is the circle?',
      '--max-new-tokens',
      '2',
      '--no-eos',
      '--json',
    );
    expect(gen.prompt).toBe(prompt);
    expect(gen.ids).toHaveLength(2);
    await expect(
      vistune(
        'tokenizer',
        'extend',
        '--model',
        result.modelDir,
        '--add',
        'x',
        '--out',
        join(dir, 'extended'),
      ),
    ).rejects.toThrow(/already holds config.json: pick another folder or pass --overwrite/);
  });

  it('params: a glob that matches nothing fails naming the stage and the nearest parameter names', async () => {
    await writeFile(
      join(dir, 'bad.yaml'),
      RECIPE.replace("train: ['modalities.image.adapter.*']", "train: ['modalities.image.projector.*']"),
    );
    const failure = await vistune('params', '--config', join(dir, 'bad.yaml')).catch((e) => e);
    expect(failure.code).toBe(1);
    expect(failure.stderr).toMatch(
      /stage align: .*stages\[0\]\.train\[0\]: "modalities\.image\.projector\.\*" matches no parameter .*Parameters: modalities\.image\./,
    );
    // The table is still printed, so the right name can be picked from it.
    expect(failure.stdout).toMatch(/modalities\.image\.adapter\.linear_1\.weight\s+32×16/);
  });

  it('tokenizer train: a vocabulary too small for the specials and the byte alphabet is refused', async () => {
    const failure = await vistune(
      'tokenizer',
      'train',
      '--data',
      join(dir, 'world', 'train.json'),
      '--vocab-size',
      '50',
      '--out',
      join(dir, 'small'),
    ).catch((e) => e);
    expect(failure.code).toBe(1);
    expect(failure.stderr).toMatch(
      /vocab size 50 is too small: the 5 special tokens and the \d+ byte symbols/,
    );
  });
});
