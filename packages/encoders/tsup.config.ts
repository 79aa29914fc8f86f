import { browserConfig } from '../../tools/tsup-browser.js';
import { libraryConfig } from '../../tools/tsup-library.js';

export default [libraryConfig(), browserConfig({ aliases: { sharp: 'browser/sharp.ts' } })];
