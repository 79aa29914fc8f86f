// @vistune/core for browsers (the package's "browser" export condition): everything the Node entry has, with
// Node's built-ins replaced at build time (tools/tsup-browser.ts) by an in-memory file system and stand-ins,
// plus initBrowserBackend and fetchModelFolder. Node-only functions (plugins from disk, wasm threads via
// worker files, @vistune/native) throw an error that says so.
export * from './browser/index.js';
export * from './index.js';
