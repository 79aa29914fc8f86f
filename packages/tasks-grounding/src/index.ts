// @vistune/tasks-grounding public API: one line per folder (codecs, metrics, refcoco, region, seg), then register.
export { register } from './register.js';
