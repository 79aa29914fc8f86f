// Registry entries of this package. Each folder exports its own `register…(registry)`; add one import and one
// call per folder below.
import type { Registry } from '@vistune/core';
import { registerCodecs } from './codecs/register.js';
import { registerMetrics } from './metrics/register.js';
import { registerRegion } from './region/register.js';
import { registerSeg } from './seg/register.js';

/** Adds this package's codecs, metrics, region encoder/adapter, heads and tasks to a registry. */
export function register(registry: Registry): void {
  registerCodecs(registry);
  registerMetrics(registry);
  registerRegion(registry);
  registerSeg(registry);
}
