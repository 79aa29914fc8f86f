// Training: recipes, the stage-wise trainer, checkpoints with exact resume, loss-curve plots, held-out
// validation and time budgets.
export * from './budget.js';
export * from './checkpoint.js';
export { dataParallelRecipe, type ReplicaSpec } from './parallel.js';
export * from './plot.js';
export * from './publish.js';
export * from './recipe.js';
export * from './run-folder.js';
export * from './stage.js';
export * from './trainer.js';
export * from './validation.js';
