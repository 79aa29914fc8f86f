// Training: recipes, the stage-wise trainer, checkpoints with exact resume, loss-curve plots.
export * from './checkpoint.js';
export * from './plot.js';
export * from './publish.js';
export * from './recipe.js';
export * from './run-folder.js';
export * from './stage.js';
export * from './trainer.js';
