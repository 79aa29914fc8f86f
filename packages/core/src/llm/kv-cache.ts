// Key/value cache of a LLaMA-family decoder: per layer, post-RoPE keys and values [B, kvHeads, S, D].
// Appending is a concat: tfjs tensors are immutable, so a preallocated buffer would still be copied (or
// attended over in full) every step; the concat copies B·kvHeads·S·D floats per layer, which for the models
// this runs is small next to reading the weights once per token.
import * as tf from '@tensorflow/tfjs-core';
import type { KVCache } from './types.js';

export class LlamaKVCache implements KVCache {
  private readonly keys: (tf.Tensor4D | null)[];
  private readonly values: (tf.Tensor4D | null)[];
  private stored = 0;

  constructor(
    readonly batch: number,
    readonly numLayers: number,
  ) {
    this.keys = new Array<tf.Tensor4D | null>(numLayers).fill(null);
    this.values = new Array<tf.Tensor4D | null>(numLayers).fill(null);
  }

  get length(): number {
    return this.stored;
  }

  /**
   * Append one layer's keys/values for the current step ([B, kvHeads, T, D]) and return the whole
   * sequence so far. The returned tensors belong to the cache (kept outside any tidy): do not dispose them.
   */
  append(layer: number, k: tf.Tensor4D, v: tf.Tensor4D): { keys: tf.Tensor4D; values: tf.Tensor4D } {
    const pastK = this.keys[layer];
    const pastV = this.values[layer];
    const pastLength = pastK ? pastK.shape[2] : 0;
    if (pastLength !== this.stored) {
      throw new Error(
        `KV cache layer ${layer} holds ${pastLength} positions, expected ${this.stored} (an earlier forward failed midway?)`,
      );
    }
    if (k.shape[0] !== this.batch)
      throw new Error(`KV cache was created for batch ${this.batch}, got keys of batch ${k.shape[0]}`);
    const keys = tf.keep(pastK ? tf.concat([pastK, k], 2) : k.clone());
    const values = tf.keep(pastV ? tf.concat([pastV, v], 2) : v.clone());
    pastK?.dispose();
    pastV?.dispose();
    this.keys[layer] = keys;
    this.values[layer] = values;
    return { keys, values };
  }

  /** Called once every layer has appended `steps` positions. */
  advance(steps: number): void {
    for (let l = 0; l < this.numLayers; l++) {
      const held = this.keys[l]?.shape[2] ?? 0;
      if (held !== this.stored + steps) {
        throw new Error(
          `KV cache layer ${l} holds ${held} positions after the step, expected ${this.stored + steps}`,
        );
      }
    }
    this.stored += steps;
  }

  dispose(): void {
    for (const t of [...this.keys, ...this.values]) t?.dispose();
    this.keys.fill(null);
    this.values.fill(null);
    this.stored = 0;
  }
}
