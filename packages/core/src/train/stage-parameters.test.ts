import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { describeStageParameters } from './stage.js';
import { tinyMultimodalModel, toyRecipe } from './test-utils.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu', quiet: true });
});

describe('describeStageParameters', () => {
  it('lists every parameter with its shape and, per stage, the trainable set after globs and LoRA', () => {
    const model = tinyMultimodalModel();
    const names = model.namedParameters().map(([n]) => n);
    try {
      const [align, instruct] = describeStageParameters(model, toyRecipe('/unused'));
      expect(align.stage).toBe('align');
      expect(align.error).toBeUndefined();
      expect(align.parameters.map((p) => p.name)).toEqual(names);
      const embed = align.parameters.find((p) => p.name === 'llm.model.embed_tokens.weight');
      expect(embed).toMatchObject({ shape: [48, 16], count: 768, trainable: false });
      expect(align.parameters.filter((p) => p.trainable).map((p) => p.name)).toEqual([
        'modalities.image.adapter.linear_1.weight',
        'modalities.image.adapter.linear_1.bias',
        'modalities.image.adapter.linear_2.weight',
        'modalities.image.adapter.linear_2.bias',
      ]);
      // 8→16 and 16→16 Linears with biases.
      expect(align.trainableCount).toBe(8 * 16 + 16 + 16 * 16 + 16);
      expect(align.totalCount).toBe(align.parameters.reduce((n, p) => n + p.count, 0));

      // Stage 2: the projector in its paramGroup (lr 2e-3, biases without decay) plus LoRA on every *_proj.
      const lora = instruct.parameters.filter((p) => /\.lora_[AB]\.weight$/.test(p.name));
      expect(lora.length).toBe(2 * 2 * 7); // 2 layers × 7 projections × (A, B)
      expect(lora.every((p) => p.trainable && p.lr === 2e-2 && p.weightDecay === 0.01)).toBe(true);
      expect(instruct.parameters.find((p) => p.name.endsWith('q_proj.lora_A.weight'))?.shape).toEqual([
        2, 16,
      ]);
      expect(
        instruct.parameters.find((p) => p.name === 'modalities.image.adapter.linear_1.weight'),
      ).toMatchObject({
        trainable: true,
        lr: 2e-3,
        weightDecay: 0.01,
      });
      expect(
        instruct.parameters.find((p) => p.name === 'modalities.image.adapter.linear_1.bias'),
      ).toMatchObject({
        lr: 2e-3,
        weightDecay: 0,
      });
      expect(
        instruct.parameters.find((p) => p.name === 'llm.model.layers.0.self_attn.q_proj.weight')?.trainable,
      ).toBe(false);
      // LoRA was merged at the stage's end, as the Trainer does: the model has its original parameters again.
      expect(model.namedParameters().map(([n]) => n)).toEqual(names);
    } finally {
      model.dispose();
    }
  });

  it('reports a glob that matches nothing on its stage and goes on with the next', () => {
    const model = tinyMultimodalModel();
    try {
      const recipe = toyRecipe('/unused');
      recipe.stages[0] = { ...recipe.stages[0], train: ['modalities.image.projector.*'] };
      const [first, second] = describeStageParameters(model, recipe);
      expect(first.error).toMatch(
        /stages\[0\]\.train\[0\]: "modalities\.image\.projector\.\*" matches no parameter.*modalities\.image\.adapter\.linear_1\.weight/,
      );
      expect(second.error).toBeUndefined();
      expect(second.trainableCount).toBeGreaterThan(0);
    } finally {
      model.dispose();
    }
  });
});
