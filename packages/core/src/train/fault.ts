// Fault injection for the crash tests: with VISTUNE_TRAINER_FAULT=<point>[@<step>] set, the process kills
// itself with SIGKILL when training reaches that named point (at that global step), exactly as a power cut
// or the OOM killer would stop it there. Unset (always, outside those tests) it does nothing.

export const FAULT_ENV_VAR = 'VISTUNE_TRAINER_FAULT';

/** Where a trainer run can be stopped by the hook, in the order a run passes them. */
export const FAULT_POINTS = [
  'step:metrics-appended',
  'checkpoint:model-written',
  'checkpoint:weights-written',
  'checkpoint:state-written',
  'checkpoint:renamed',
  'final:checkpoint-saved',
  'final:model-published',
] as const;
export type FaultPoint = (typeof FAULT_POINTS)[number];

/** SIGKILLs this process when VISTUNE_TRAINER_FAULT names `point` (and `step`, when it gives one). */
export function faultPoint(point: FaultPoint, step: number): void {
  const spec = process.env[FAULT_ENV_VAR];
  if (!spec) return;
  const [name, at] = spec.split('@');
  if (name !== point || (at !== undefined && Number(at) !== step)) return;
  process.kill(process.pid, 'SIGKILL');
  // The signal is delivered asynchronously: block until it lands so nothing after this point runs.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
}
