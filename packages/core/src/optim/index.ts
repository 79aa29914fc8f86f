export * from './accumulate.js';
export * from './adamw.js';
export * from './clip.js';
export * from './gradients.js';
export * from './optimizer.js';
export * from './schedule.js';
export * from './sgd.js';
