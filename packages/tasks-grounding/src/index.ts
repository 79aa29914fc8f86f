// @vistune/tasks-grounding public API: one line per folder (codecs, draw, metrics, rec, refcoco, region, seg), then register.
export * from './box.js';
export * from './codecs/index.js';
export * from './draw/index.js';
export * from './metrics/index.js';
export * from './rec/index.js';
export * from './refcoco/index.js';
export * from './region/index.js';
export { register } from './register.js';
export * from './seg/index.js';
export * from './vocab/index.js';
