import { registerLlms } from './llm/register.js';
import type { Registry } from './registry/types.js';

/** Adds @vistune/core's own entries (LLM families) to a registry; the CLI calls every package's register(). */
export function register(registry: Registry): void {
  registerLlms(registry);
}
