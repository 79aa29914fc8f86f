import { browserConfig } from '../../tools/tsup-browser.js';
import { libraryConfig } from '../../tools/tsup-library.js';

// tfjs-core registers gradients only from an ESM file Node cannot load from node_modules (extensionless imports): bundle it.
// dist/parallel-worker.js is the entry of data-parallel training's worker threads (train/parallel.ts).
export default [
  libraryConfig({
    entry: { index: 'src/index.ts', 'parallel-worker': 'src/train/parallel-worker.ts' },
    noExternal: [/register_all_gradients/],
  }),
  browserConfig({ core: true }),
];
