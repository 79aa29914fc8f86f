// Terminal output: colour and progress bars only on a TTY; plain, parseable lines otherwise.
import { SingleBar } from 'cli-progress';
import pc from 'picocolors';

export const isTTY = Boolean(process.stdout.isTTY);
export const color = pc.createColors(isTTY && !process.env.NO_COLOR);

/** A user-facing failure: printed without a stack trace, with the exit code the CLI returns. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export interface Progress {
  update(done: number, fields?: Record<string, string | number>): void;
  stop(): void;
}

/** A progress bar on stderr when it is a terminal; silent otherwise so --json output stays clean. */
export function progress(label: string, total: number, fieldNames: string[] = []): Progress {
  if (!process.stderr.isTTY) return { update() {}, stop() {} };
  const extra = fieldNames.map((f) => `${f} {${f}}`).join(' | ');
  const bar = new SingleBar({
    format: `${label} ${color.cyan('{bar}')} {value}/{total} | ETA {eta_formatted}${extra ? ` | ${extra}` : ''}`,
    stream: process.stderr,
    hideCursor: true,
    barsize: 24,
  });
  bar.start(total, 0, Object.fromEntries(fieldNames.map((f) => [f, '-'])));
  return {
    update: (done, fields) => bar.update(done, fields),
    stop: () => bar.stop(),
  };
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** Left-aligned text table for human output. */
export function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => stripAnsi(r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c + ' '.repeat(widths[i] - stripAnsi(c).length))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function stripAnsi(s: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching ANSI escapes is the point
  return s.replace(/\x1b\[[0-9;]*m/g, '');
}
