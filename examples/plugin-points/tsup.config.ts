import { libraryConfig } from '../../tools/tsup-library.js';

// index (the library), register (the plugin entry package.json names) and world (the generator command).
export default libraryConfig({
  entry: { index: 'src/index.ts', register: 'src/register.ts', world: 'src/world.ts' },
  external: [/^@tensorflow\//, /^@vistune\//, /^@loaders\.gl\//, 'zod'],
});
