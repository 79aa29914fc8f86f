// @vistune/encoders for browsers (the package's "browser" export condition): the same encoders and image
// processors, with images decoded by the browser (browser/sharp.ts) and files in @vistune/core/browser's
// in-memory file system.
export * from './index.js';
