// Benchmarks (commands, not tests): `vistune bench ops` formats benchOps' report.
export {
  type BackendOpsBench,
  benchOps,
  type ComparedTiming,
  type OpsBenchOptions,
  type OpsBenchReport,
} from './ops.js';
export type { ToyConfig } from './toy-model.js';
export {
  type LlavaBenchOptions,
  type LlavaBenchReport,
  type LlavaBenchSizes,
  type LlavaGenerateReport,
  type LlavaTrainReport,
  benchLlava,
} from './llava.js';
