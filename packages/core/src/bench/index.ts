// Benchmarks (commands, not tests): `vistune bench ops` formats benchOps' report.
export { benchOps, type OpsBenchOptions, type OpsBenchReport, type BackendOpsBench, type ComparedTiming } from './ops.js';
export type { ToyConfig } from './toy-model.js';
