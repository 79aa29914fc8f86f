// The model card the playground shows and /vistune/card returns: parts by registry type, parameter counts,
// the backend answering, the limits a client must respect.
import { basename, resolve } from 'node:path';
import { Module, tf } from '@vistune/core';
import type { VisionLanguageModel } from '../api/model.js';
import type { ModelCard } from './card-types.js';

export type { ModelCard };

const count = (part: unknown) => (part instanceof Module ? part.numParameters() : 0);
const typeOf = (config: { type?: unknown } | undefined, part: unknown) =>
  String(config?.type ?? (part as object | undefined)?.constructor?.name ?? 'unknown');

/** The served name of a model folder: --model-name, else the folder's name. */
export function modelId(dir: string, name?: string): string {
  return name ?? basename(resolve(dir));
}

export function modelCard(vlm: VisionLanguageModel, id: string): ModelCard {
  const { model } = vlm;
  const composition = model.composition;
  const parts: Record<string, number> = { llm: count(model.llm) };
  const modalities = [...vlm.modalities.values()].map((m) => {
    const spec = model.modalities.get(m.name);
    const config = composition?.modalities[m.name];
    parts[`${m.name}.encoder`] = count(spec?.encoder);
    parts[`${m.name}.adapter`] = count(spec?.adapter);
    return {
      name: m.name,
      kind: m.kind.name,
      encoder: typeOf(config?.encoder, spec?.encoder),
      adapter: typeOf(config?.adapter, spec?.adapter),
      extensions: [...m.kind.extensions],
    };
  });
  const heads = model.heads.map((h) => h.name);
  for (const head of model.heads) parts[`heads.${head.name}`] = count(head);
  return {
    id,
    family: model.family?.name ?? 'unknown',
    backend: tf.getBackend(),
    contextLength: Number.isFinite(vlm.contextLength) ? vlm.contextLength : null,
    parameters: { total: model.numParameters(), parts },
    llm: typeOf(composition?.llm, model.llm),
    modalities,
    heads,
    plugins: [...(composition?.plugins ?? [])],
  };
}
