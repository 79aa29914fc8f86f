// Component registry and plugins. There is deliberately no global default registry: the CLI (or a test)
// creates one and calls each package's register(), so two configs in one process cannot leak into each other.
export * from './plugins.js';
export * from './registry.js';
export * from './types.js';
export { formatConfigPath, formatZodIssues } from './zod-issues.js';
