// A pretrained tower as a model folder: ViT towers as HF CLIPVisionModel / SiglipVisionModel folders (config.json
// with model_type clip_vision_model / siglip_vision_model + model.safetensors with HF names), CNN towers as
// vistune_cnn_vision folders; the folder's preprocessor_config.json is the processor the tower was trained with.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ModalityEncoder, readJsonFile, saveSafetensors, tf } from '@vistune/core';
import { CNN_VISION_MODEL_TYPE } from '../cnn/config.js';
import { CnnVisionEncoder } from '../cnn/model.js';
import { visionConfigToHf } from '../vit/config.js';
import { VisionTransformer } from '../vit/model.js';
import { loadPretrainedVisionTransformer } from '../vit/pretrained.js';

export type VisionTower = ModalityEncoder<tf.Tensor4D>;

/** The tower's spatial tokens [N, rows·cols, hidden] (CLS and other prefix tokens dropped) and their grid. */
export function towerTokens(
  tower: VisionTower,
  pixels: tf.Tensor4D,
): { tokens: tf.Tensor3D; grid: [number, number] } {
  const { hiddenStates, layout } = tower.forward(pixels, { hiddenStates: [-1] });
  const states = hiddenStates[0] as tf.Tensor3D;
  const grid = layout.grid as [number, number] | undefined;
  if (!grid)
    throw new Error(
      'pretrain: the encoder reports no token grid; only image towers (a 2-D grid) can be pretrained',
    );
  if (layout.prefixTokens === 0) return { tokens: states, grid };
  const tokens = tf.slice(states, [0, layout.prefixTokens, 0], [-1, -1, -1]) as tf.Tensor3D;
  states.dispose();
  return { tokens, grid };
}

/** config.json of a tower folder (HF layout for ViTs). */
function towerConfig(tower: VisionTower): Record<string, unknown> {
  if (tower instanceof VisionTransformer) {
    const hf = visionConfigToHf(tower.config);
    const siglip = hf.model_type === 'siglip_vision_model';
    return { architectures: [siglip ? 'SiglipVisionModel' : 'CLIPVisionModel'], ...hf };
  }
  if (tower instanceof CnnVisionEncoder) return tower.hfConfig();
  throw new Error(
    'saveVisionTower: only clip_vision, siglip_vision and cnn_vision towers save as a model folder; pick one of those encoder types',
  );
}

/** Writes config.json, model.safetensors and, when given, preprocessor_config.json to `dir`. */
export async function saveVisionTower(
  tower: VisionTower,
  dir: string,
  opts: { preprocessorConfig?: Record<string, unknown> } = {},
): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(towerConfig(tower), null, 2)}\n`);
  await saveSafetensors(join(dir, 'model.safetensors'), tower.stateDict());
  if (opts.preprocessorConfig)
    await writeFile(
      join(dir, 'preprocessor_config.json'),
      `${JSON.stringify(opts.preprocessorConfig, null, 2)}\n`,
    );
}

/** Loads a tower folder of any of the three kinds (its config.json's model_type picks the class). */
export async function loadVisionTower(dir: string): Promise<VisionTower> {
  const config = (await readJsonFile(join(dir, 'config.json'), 'vision tower config', {
    hint: 'expected a folder written by vistune pretrain or a HF CLIP/SigLIP vision model',
  })) as { model_type?: unknown };
  if (config.model_type === CNN_VISION_MODEL_TYPE) return CnnVisionEncoder.fromPretrained(dir);
  return (await loadPretrainedVisionTransformer(dir)).model;
}
