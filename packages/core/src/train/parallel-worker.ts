// The worker side of data-parallel training (train/parallel.ts): builds the model replica named by its
// ReplicaSpec on the main thread's backend, repeats each stage's setup, and per step computes Σ weight·gradient
// of its micro-batches into its shared gradient buffer. Runs only as a worker_thread started by ReplicaGroup.
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../backend/init.js';
import type { BackendName } from '../backend/types.js';
import { disposeMultimodalBatch } from '../data/loader.js';
import { applyLora, mergeLora } from '../nn/lora.js';
import { GradientAccumulator } from '../optim/accumulate.js';
import { disposeGradients } from '../optim/clip.js';
import { computeGradientsAsync } from '../optim/gradients.js';
import {
  copyTensorInto,
  type FromReplica,
  type ParameterSlot,
  type ReplicaWorkerData,
  type ToReplica,
  tensorFromShared,
} from './parallel.js';
import { decodeBatch } from './parallel-batch.js';
import { setStageTrainable, supervisedTokens } from './stage.js';
import type { TrainableModel } from './trainer.js';

type ReplicaFactory = (options: unknown) => TrainableModel | Promise<TrainableModel>;
type StageMessage = Extract<ToReplica, { type: 'stage' }>;
type StepMessage = Extract<ToReplica, { type: 'step' }>;

function isReplicaWorkerData(data: unknown): data is ReplicaWorkerData {
  return typeof data === 'object' && data !== null && 'vistuneReplica' in data;
}

/** The replica's model and the shared buffers of the current stage. */
class Replica {
  private slots: ParameterSlot[] = [];
  private parameters = new Float32Array(new SharedArrayBuffer(0));
  private gradients = new Float32Array(new SharedArrayBuffer(0));
  private parameterVersion = -1;

  constructor(private readonly model: TrainableModel) {}

  /** The main thread's stage setup, then every parameter value it sent. */
  setupStage(message: StageMessage): FromReplica {
    const { model } = this;
    mergeLora(model); // the main thread merged the previous stage's LoRA into its base weights
    setStageTrainable(model, message.stage, message.where);
    if (message.stage.lora) applyLora(model, { ...message.stage.lora, seed: message.loraSeed });
    const values = new Map(message.values);
    const params = model.namedParameters();
    for (const [name, p] of params) {
      const value = values.get(name);
      if (!value || value.length !== p.size) continue; // the main thread names the difference
      const tensor = tf.tensor(value, p.shape, 'float32');
      p.assign(tensor);
      tensor.dispose();
    }
    this.slots = message.slots;
    this.parameters = new Float32Array(message.parameters);
    this.gradients = new Float32Array(message.gradients);
    this.parameterVersion = -1;
    model.train();
    return {
      type: 'stage-ready',
      parameters: params.map(([name, p]) => ({ name, shape: [...p.shape], trainable: p.trainable })),
    };
  }

  /** Takes the trainable values the main thread published after its last optimizer step. */
  private readParameters(version: number): void {
    if (version === this.parameterVersion) return;
    const live = new Map(this.model.namedParameters());
    for (const slot of this.slots) {
      const tensor = tensorFromShared(this.parameters, slot.offset, slot.size, slot.shape);
      (live.get(slot.name) as tf.Variable).assign(tensor);
      tensor.dispose();
    }
    this.parameterVersion = version;
  }

  async step(message: StepMessage): Promise<FromReplica> {
    this.readParameters(message.parameterVersion);
    const params = this.model.namedParameters();
    const accumulator = new GradientAccumulator();
    let lossSum = 0;
    try {
      for (const encoded of message.batches) {
        const batch = decodeBatch(encoded);
        try {
          const weight = supervisedTokens(batch) ?? 1;
          if (weight === 0) continue; // nothing supervised: no gradient to add (as on the main thread)
          const { loss, grads } = await computeGradientsAsync(() => {
            const out = this.model.forward(batch, { logits: false });
            if (!out.loss) throw new Error('the model returned no loss (does the batch carry labels?)');
            return out.loss;
          }, params);
          try {
            if (!Number.isFinite(loss))
              return {
                type: 'result',
                lossSum,
                weightSum: 0,
                microBatches: 0,
                gradientNames: [],
                nonFiniteLoss: loss,
              };
            accumulator.add(grads, weight);
          } finally {
            disposeGradients(grads);
          }
          lossSum += loss * weight;
        } finally {
          disposeMultimodalBatch(batch);
        }
      }
      const { sums, totalWeight, microBatches } = accumulator.takeSums();
      try {
        const slots = new Map(this.slots.map((s) => [s.name, s]));
        for (const [name, sum] of sums) {
          const slot = slots.get(name);
          if (!slot)
            throw new Error(`parameter ${name} got a gradient but is not trainable on the main thread`);
          await copyTensorInto(sum, this.gradients, slot.offset);
        }
      } finally {
        tf.dispose([...sums.values()]);
      }
      const gradientNames = [...sums.keys()];
      return {
        type: 'result',
        lossSum,
        weightSum: totalWeight,
        microBatches,
        gradientNames,
        nonFiniteLoss: null,
      };
    } finally {
      accumulator.dispose();
    }
  }
}

/** Builds the replica, then answers the main thread's messages in order until it is terminated. */
export async function serveReplica(data: ReplicaWorkerData): Promise<void> {
  const port = parentPort;
  if (!port) return;
  const send = (message: FromReplica) => port.postMessage(message);
  const report = (error: unknown) => {
    const err = error instanceof Error ? error : new Error(String(error));
    send({ type: 'error', message: err.message, stack: err.stack });
  };
  let replica: Replica;
  try {
    await initBackend({ backend: data.backend as BackendName });
    const spec = data.vistuneReplica;
    const exports = (await import(spec.module)) as Record<string, unknown>;
    const factory = exports[spec.exportName];
    if (typeof factory !== 'function')
      throw new Error(`replica module ${spec.module} has no function export '${spec.exportName}'`);
    replica = new Replica(await (factory as ReplicaFactory)(spec.options));
  } catch (error) {
    report(error);
    return;
  }
  // Messages are handled one at a time, in the order they came (a step never overlaps a stage setup).
  let queue = Promise.resolve();
  port.on('message', (message: ToReplica) => {
    queue = queue.then(async () => {
      try {
        send(message.type === 'stage' ? replica.setupStage(message) : await replica.step(message));
      } catch (error) {
        report(error);
      }
    });
  });
  send({ type: 'ready' });
}

if (!isMainThread && isReplicaWorkerData(workerData)) void serveReplica(workerData);
