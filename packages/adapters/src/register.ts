// Registry entries of this package: adapters linear, mlp2x_gelu (alias mlp), pixel_shuffle, film_mlp.
import type { Registry } from '@vistune/core';
import {
  FilmProjectorConfigSchema,
  LinearProjectorConfigSchema,
  MlpProjectorConfigSchema,
  PixelShuffleProjectorConfigSchema,
} from './config.js';
import { FilmProjector } from './film.js';
import { LinearProjector } from './linear.js';
import { MlpProjector } from './mlp.js';
import { PixelShuffleProjector } from './pixel-shuffle.js';

/** Adds this package's adapters to a registry. */
export function register(registry: Registry): void {
  registry.add({
    kind: 'adapter',
    name: 'linear',
    about: 'One Linear from encoder features to the LLM width (LLaVA-1 `linear` projector)',
    schema: LinearProjectorConfigSchema,
    create: (c) => new LinearProjector(c),
  });
  for (const name of ['mlp2x_gelu', 'mlp'] as const) {
    registry.add({
      kind: 'adapter',
      name,
      about:
        name === 'mlp'
          ? 'Alias of mlp2x_gelu'
          : 'Linear → GELU → Linear (LLaVA-1.5 mlp2x_gelu, HF LlavaMultiModalProjector linear_1/linear_2; depth, act configurable)',
      schema: MlpProjectorConfigSchema,
      create: (c) => new MlpProjector(c),
    });
  }
  registry.add({
    kind: 'adapter',
    name: 'pixel_shuffle',
    about: 'Pixel shuffle ×factor over the patch grid, then one Linear (nanoVLM / SmolVLM connector; no CLS)',
    schema: PixelShuffleProjectorConfigSchema,
    create: (c) => new PixelShuffleProjector(c),
  });
  registry.add({
    kind: 'adapter',
    name: 'film_mlp',
    about:
      'mlp2x_gelu whose hidden features are scaled and shifted (FiLM) by the mean prompt-text embedding: instruction-aware (InstructBLIP idea)',
    schema: FilmProjectorConfigSchema,
    create: (c) => new FilmProjector(c),
  });
}
