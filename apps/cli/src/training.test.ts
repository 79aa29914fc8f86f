import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { withRecipePaths } from './training.js';

describe('inline model configs', () => {
  it("resolve parts' pretrained folders and an llm path against the recipe's folder", () => {
    const at = (p: string) => resolve('/recipes', p);
    const out = withRecipePaths(
      {
        model_type: 'vistune',
        llm: { type: 'llama', path: './llm' },
        modalities: {
          image: {
            placeholder_token_id: 4,
            encoder: { type: 'cnn_vision', pretrained: 'runs/tower' },
            adapter: { type: 'mlp2x_gelu' },
            processor: { type: 'clip', pretrained: '/abs/pre.json' },
          },
        },
      },
      at,
    );
    expect(out.llm).toEqual({ type: 'llama', path: '/recipes/llm' });
    const image = (out.modalities as Record<string, Record<string, unknown>>).image;
    expect(image.encoder).toEqual({ type: 'cnn_vision', pretrained: '/recipes/runs/tower' });
    expect(image.processor).toEqual({ type: 'clip', pretrained: '/abs/pre.json' });
    expect(image.adapter).toEqual({ type: 'mlp2x_gelu' });
    expect(withRecipePaths({ model_type: 'llava', text_config: {} }, at)).toEqual({
      model_type: 'llava',
      text_config: {},
    });
  });
});
