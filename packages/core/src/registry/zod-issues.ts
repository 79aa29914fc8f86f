// Turn zod issues into one line each: `<config path>: <what is wrong>`, e.g. `model.adapter.outDim: expected number`.
import type { z } from 'zod';

/** `a.b[0].c`, prefixed by `prefix` when given. */
export function formatConfigPath(path: readonly PropertyKey[], prefix = ''): string {
  let out = prefix;
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out || '(root)';
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type' && issue.message.endsWith('received undefined')) {
    return `missing (expected ${issue.expected})`;
  }
  if (issue.code === 'unrecognized_keys') {
    return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
  }
  return issue.message.replace(/^Invalid input: /, '');
}

/** One `path: problem` line per issue. */
export function formatZodIssues(error: z.ZodError, prefix = ''): string[] {
  return error.issues.map((issue) => `${formatConfigPath(issue.path, prefix)}: ${describeIssue(issue)}`);
}
