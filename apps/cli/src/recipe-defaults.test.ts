import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MultimodalModel } from '@vistune/core';
import { describe, expect, it } from 'vitest';
import { derivePreprocessor, withTokenizerVocabSize } from './recipe-defaults.js';

describe('withTokenizerVocabSize', () => {
  it('fills llm.config.vocab_size (vistune) and text_config.vocab_size (llava) and says so', () => {
    const vistune = withTokenizerVocabSize(
      { model_type: 'vistune', llm: { type: 'llama', config: { hidden_size: 8 } }, modalities: {} },
      321,
      'tok/tokenizer.json',
    );
    expect(vistune.value).toEqual({
      model_type: 'vistune',
      llm: { type: 'llama', config: { hidden_size: 8, vocab_size: 321 } },
      modalities: {},
    });
    expect(vistune.note).toBe('model.llm.config.vocab_size: 321, the size of tok/tokenizer.json');
    const llava = withTokenizerVocabSize({ text_config: { model_type: 'llama' } }, 99, 't.json');
    expect(llava.value).toEqual({ text_config: { model_type: 'llama', vocab_size: 99 } });
    expect(llava.note).toMatch(/^model\.text_config\.vocab_size: 99/);
  });

  it('leaves a given vocab_size, a pretrained LLM and other families alone', () => {
    for (const config of [
      { model_type: 'llava', text_config: { vocab_size: 500 } },
      { model_type: 'vistune', llm: { type: 'llama', path: './llm' } },
      { model_type: 'my_family', text_config: {} },
    ]) {
      const out = withTokenizerVocabSize(config, 42, 't.json');
      expect(out.value).toBe(config);
      expect(out.note).toBeUndefined();
    }
  });
});

/** Just the fields derivePreprocessor reads. */
function fakeModel(encoder: object, encoderConfig: Record<string, unknown>): MultimodalModel {
  return {
    modalities: new Map([['image', { encoder }]]),
    composition: { modalities: { image: { encoder: encoderConfig } } },
  } as unknown as MultimodalModel;
}

describe('derivePreprocessor', () => {
  it('sizes a clip processor (resize + crop) or a siglip one (square) to the tower', () => {
    const clip = derivePreprocessor(
      fakeModel({ imageSize: 64, config: { modelType: 'clip_vision_model' } }, { type: 'clip_vision' }),
      'image',
    );
    expect(clip).toMatchObject({
      kind: 'config',
      config: { type: 'clip', size: { shortest_edge: 64 }, crop_size: { height: 64, width: 64 } },
    });
    expect(clip?.note).toMatch(
      /no preprocessor given; using clip .* from modalities\.image\.encoder image_size 64/,
    );
    const siglip = derivePreprocessor(
      fakeModel({ imageSize: 48, config: { modelType: 'siglip_vision_model' } }, { type: 'siglip_vision' }),
      'image',
    );
    expect(siglip).toMatchObject({
      kind: 'config',
      config: { type: 'siglip', size: { height: 48, width: 48 } },
    });
    // An encoder that is not a ViT but states its image_size in its config.
    expect(derivePreprocessor(fakeModel({}, { type: 'cnn', image_size: 28 }), 'image')).toMatchObject({
      config: { type: 'clip', size: { shortest_edge: 28 } },
    });
    expect(derivePreprocessor(fakeModel({}, { type: 'image_patches' }), 'image')).toBeUndefined();
  });

  it("prefers the preprocessor_config.json of the encoder's pretrained folder", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vistune-derive-'));
    await writeFile(join(dir, 'preprocessor_config.json'), '{}');
    const derived = derivePreprocessor(
      fakeModel({ imageSize: 224 }, { type: 'clip_vision', pretrained: dir }),
      'image',
    );
    expect(derived).toMatchObject({ kind: 'file', path: join(dir, 'preprocessor_config.json') });
  });
});
