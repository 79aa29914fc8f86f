// Registry entries of this package: adapters linear, mlp2x_gelu (alias mlp), pixel_shuffle, film_mlp and the
// connectors beyond the projector (Q-Former family, resamplers, LLM-internal adapters).
import type { Registry } from '@vistune/core';
import {
  BlivaQFormerConfigSchema,
  CAbstractorConfigSchema,
  FuyuProjectorConfigSchema,
  LdpConfigSchema,
  LlamaAdapterConfigSchema,
  VisualExpertConfigSchema,
  FilmProjectorConfigSchema,
  FlamingoConfigSchema,
  InstructQFormerConfigSchema,
  LinearProjectorConfigSchema,
  MlpProjectorConfigSchema,
  MMAdapterConfigSchema,
  PerceiverResamplerConfigSchema,
  PixelShuffleProjectorConfigSchema,
  QFormerConfigSchema,
  QwenResamplerConfigSchema,
} from './config.js';
import { FilmProjector } from './film.js';
import { FuyuProjector } from './fuyu.js';
import { LlamaAdapter } from './llama-adapter.js';
import { LinearProjector } from './linear.js';
import { MlpProjector } from './mlp.js';
import { MMAdapter } from './mm-adapter.js';
import { FlamingoAdapter, PerceiverResamplerAdapter } from './perceiver.js';
import { PixelShuffleProjector } from './pixel-shuffle.js';
import { BlivaQFormerAdapter, InstructQFormerAdapter, QFormerAdapter } from './qformer.js';
import { QwenResamplerAdapter } from './qwen-resampler.js';
import { CAbstractor, LdpProjector } from './reducers.js';
import { VisualExpertAdapter } from './visual-expert.js';

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
  registry.add({
    kind: 'adapter',
    name: 'qformer',
    about:
      'BLIP-2 / MiniGPT-4 Q-Former: learnable queries, cross-attention to the image, language_projection (HF Blip2 names)',
    schema: QFormerConfigSchema,
    create: (c) => new QFormerAdapter(c),
  });
  registry.add({
    kind: 'adapter',
    name: 'instructblip_qformer',
    about:
      "InstructBLIP Q-Former: the prompt's tokens join the queries' self-attention (HF InstructBlip names)",
    schema: InstructQFormerConfigSchema,
    create: (c) => new InstructQFormerAdapter(c),
  });
  registry.add({
    kind: 'adapter',
    name: 'bliva_qformer',
    about: 'BLIVA: instruction-aware Q-Former slots followed by the linearly projected patch features',
    schema: BlivaQFormerConfigSchema,
    create: (c) => new BlivaQFormerAdapter(c),
  });
  registry.add({
    kind: 'adapter',
    name: 'perceiver_resampler',
    about:
      'Perceiver resampler (Flamingo): numLatents latents attend to the features, projected into the LLM',
    schema: PerceiverResamplerConfigSchema,
    create: (c) => new PerceiverResamplerAdapter(c),
  });
  registry.add({
    kind: 'adapter',
    name: 'flamingo',
    about:
      'Perceiver resampler + tanh-gated cross-attention before every n-th LLM layer (Flamingo, Otter, MultiModal-GPT); gates start at 0',
    schema: FlamingoConfigSchema,
    create: (c) => new FlamingoAdapter(c),
  });
  registry.add({
    kind: 'adapter',
    name: 'mm_adapter',
    about:
      'LaVIN MM-Adapter: visual tokens + routed bottleneck adapters (zero-init) before attention and MLP in every LLM layer',
    schema: MMAdapterConfigSchema,
    create: (c) => new MMAdapter(c),
  });
  registry.add({
    kind: 'adapter',
    name: 'qwen_resampler',
    about:
      'Qwen-VL resampler: gridSize² queries with 2D sin-cos positions, one cross-attention, ln_post, proj',
    schema: QwenResamplerConfigSchema,
    create: (c) => new QwenResamplerAdapter(c),
  });
  registry.add({
    kind: 'adapter',
    name: 'llama_adapter',
    about:
      'LLaMA-Adapter V2: zero-gated adaption prompts in the top LLM layers, the visual query added to the bottom ones (early fusion), bias/scale tuning',
    schema: LlamaAdapterConfigSchema,
    create: (c) => new LlamaAdapter(c),
  });
  registry.add({
    kind: 'adapter',
    name: 'visual_expert',
    about:
      'CogVLM visual expert: image positions get their own q/k/v/o and feed-forward weights in every LLM layer (the LLM’s + zero-init deltas)',
    schema: VisualExpertConfigSchema,
    create: (c) => new VisualExpertAdapter(c),
  });
  registry.add({
    kind: 'adapter',
    name: 'c_abstractor',
    about: 'Honeybee C-Abstractor: RegNet stage → adaptive average pool to numQueries → RegNet stage → MLP',
    schema: CAbstractorConfigSchema,
    create: (c) => new CAbstractor(c),
  });
  registry.add({
    kind: 'adapter',
    name: 'ldp',
    about: 'MobileVLM V2 LDP: MLP → adaptive average pool to numQueries → depthwise-conv position injection',
    schema: LdpConfigSchema,
    create: (c) => new LdpProjector(c),
  });
  registry.add({
    kind: 'adapter',
    name: 'fuyu',
    about:
      'Fuyu / OtterHD: raw patches (encoder image_patches) through one Linear into the decoder, a learnt separator after each row',
    schema: FuyuProjectorConfigSchema,
    create: (c) => new FuyuProjector(c),
  });
}
