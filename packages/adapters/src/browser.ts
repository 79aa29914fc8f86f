// @vistune/adapters for browsers (the package's "browser" export condition): the same connectors, importing
// @vistune/core/browser.
export * from './index.js';
