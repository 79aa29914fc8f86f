// Model replicas for data-parallel training (recipe parallel.workers, vistune train --workers): each worker
// thread imports this file (dist/replica.js) and builds the model the main thread trains, the same way; the
// trainer then copies every parameter value over, so only names and shapes have to match.
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createLlava,
  createModel,
  type LlavaBenchReplicaOptions,
  loadRecipe,
  type ReplicaSpec,
  type TrainableModel,
} from '@vistune/core';
import { createVistuneRegistry } from './api/registry.js';
import { modelForRecipe } from './training.js';

/** What `vistune train` built its model from. */
export interface RecipeReplicaOptions {
  recipePath: string;
  /** --plugin values (the recipe's own plugins are read from it). */
  plugins: string[];
  allowNonfinite?: boolean;
}

/** The model of a recipe file, built as `vistune train` builds it (config or folder, heads, task setup). */
export async function recipeReplicaModel(opts: RecipeReplicaOptions): Promise<TrainableModel> {
  const recipe = await loadRecipe(opts.recipePath);
  const from = dirname(opts.recipePath);
  const registry = await createVistuneRegistry({ plugins: [...recipe.plugins, ...opts.plugins], from });
  const vlm = await modelForRecipe(recipe, registry, from, { allowNonfinite: opts.allowNonfinite });
  return vlm.model;
}

/** The demo's LLaVA config and seed. */
export interface DemoReplicaOptions {
  config: Record<string, unknown>;
  seed: number;
}

/** The demo's model from its config (the demo's registry has no plugins of its own). */
export async function demoReplicaModel(opts: DemoReplicaOptions): Promise<TrainableModel> {
  return createModel(opts.config, await createVistuneRegistry(), { seed: opts.seed });
}

/** `vistune bench --config --workers`: the bench's LLaVA, with the command's plugins. */
export interface BenchReplicaOptions extends LlavaBenchReplicaOptions {
  plugins: string[];
}

/** The model benchLlava times, built as it builds it (createLlava with the same config and seed). */
export async function benchReplicaModel(opts: BenchReplicaOptions): Promise<TrainableModel> {
  const registry = await createVistuneRegistry({ plugins: opts.plugins });
  return createLlava(opts.config, registry, { seed: opts.seed });
}

/** Where the built CLI keeps this file: dist/replica.js next to the bundle that imports it. */
const REPLICA_MODULE = new URL('./replica.js', import.meta.url);

/** Whether worker threads can import this file (false when running from the TypeScript sources, as tests do). */
export function replicasAvailable(): boolean {
  return existsSync(fileURLToPath(REPLICA_MODULE));
}

/** How a worker builds a replica through one of this file's exports (dist/replica.js once built). */
export function cliReplica(exportName: 'recipeReplicaModel', options: RecipeReplicaOptions): ReplicaSpec;
export function cliReplica(exportName: 'demoReplicaModel', options: DemoReplicaOptions): ReplicaSpec;
export function cliReplica(exportName: 'benchReplicaModel', options: BenchReplicaOptions): ReplicaSpec;
export function cliReplica(
  exportName: string,
  options: RecipeReplicaOptions | DemoReplicaOptions | BenchReplicaOptions,
): ReplicaSpec {
  return { module: REPLICA_MODULE.href, exportName, options };
}
