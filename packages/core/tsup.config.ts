import { browserConfig } from '../../tools/tsup-browser.js';
import { libraryConfig } from '../../tools/tsup-library.js';

// tfjs-core registers gradients only from an ESM file Node cannot load from node_modules (extensionless imports): bundle it.
export default [libraryConfig({ noExternal: [/register_all_gradients/] }), browserConfig({ core: true })];
