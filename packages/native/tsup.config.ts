import { libraryConfig } from '../../tools/tsup-library.js';

export default libraryConfig();
