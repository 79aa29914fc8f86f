// Benchmarks (commands, not tests): `vistune bench ops` formats benchOps' report.

export {
  benchLlava,
  type LlavaBenchOptions,
  type LlavaBenchReplicaOptions,
  type LlavaBenchReport,
  type LlavaBenchSizes,
  type LlavaGenerateReport,
  type LlavaTrainReport,
} from './llava.js';
export {
  type BackendOpsBench,
  benchOps,
  type ComparedTiming,
  type OpsBenchOptions,
  type OpsBenchReport,
} from './ops.js';
export type { ToyConfig } from './toy-model.js';
