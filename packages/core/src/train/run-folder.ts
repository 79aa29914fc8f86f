// Guards of a run folder: an exclusive lock while a run trains in it (two runs appending to one
// metrics.jsonl and pruning each other's checkpoints lose both), and a fresh run refusing to start over the
// files of an earlier one unless asked to move them aside (they are moved, never deleted).
import { randomUUID } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import { link, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { ensureDir, errnoCode, fsError } from '../io/fs-errors.js';

export const RUN_LOCK_FILE = '.vistune-run.lock';
/** What a run writes at the top of its folder (besides the checkpoint folder). */
export const RUN_FILES = ['metrics.jsonl', 'loss.html', 'model', 'adapters'] as const;
const ASIDE_PREFIX = 'previous-run-';
/** A lock file this young that cannot be parsed is being written by its holder right now. */
const LOCK_WRITE_GRACE_MS = 10_000;

export interface RunLockHolder {
  pid: number;
  hostname: string;
  /** ISO time the holder started. */
  startedAt: string;
  /** Distinguishes this holder from a later one with a reused pid. */
  token: string;
}

function parseHolder(text: string): RunLockHolder | null {
  try {
    const v = JSON.parse(text) as Partial<RunLockHolder>;
    if (typeof v.pid === 'number' && typeof v.hostname === 'string' && typeof v.token === 'string')
      return { pid: v.pid, hostname: v.hostname, startedAt: String(v.startedAt), token: v.token };
  } catch {
    // fall through: not a lock this code wrote (or half written)
  }
  return null;
}

/** Whether a process with this pid exists on this host (EPERM: it exists but belongs to another user). */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}

function describeHolder(h: RunLockHolder): string {
  return `pid ${h.pid} on host ${h.hostname} (started ${h.startedAt})`;
}

/** The exclusive lock of a run folder; release() it when the run ends (a process exit releases it too). */
export class RunLock {
  private released = false;
  private readonly releaseOnExit = () => this.releaseSync();

  private constructor(
    readonly path: string,
    readonly holder: RunLockHolder,
  ) {
    process.once('exit', this.releaseOnExit);
  }

  /**
   * Takes `<dir>/.vistune-run.lock`. A lock whose holder is a dead pid on this host is taken over (`warn` says
   * so); a live holder, or one on another host, is an error naming it.
   */
  static async acquire(dir: string, warn: (message: string) => void): Promise<RunLock> {
    await ensureDir(dir, 'run output');
    const path = join(dir, RUN_LOCK_FILE);
    const holder: RunLockHolder = {
      pid: process.pid,
      hostname: hostname(),
      startedAt: new Date().toISOString(),
      token: randomUUID(),
    };
    for (let attempt = 0; attempt < 3; attempt++) {
      if (await RunLock.create(path, holder)) return new RunLock(path, holder);
      const stale = await RunLock.staleHolder(path, dir);
      // Moved away under a unique name first: of two processes taking over at once, only one wins the rename,
      // and a lock that changed since it was judged stale goes back.
      const moved = `${path}.stale-${holder.token}`;
      if (
        !(await rename(path, moved).then(
          () => true,
          () => false,
        ))
      )
        continue;
      if ((await readFile(moved, 'utf8').catch(() => null)) !== stale.text) {
        await rename(moved, path).catch(() => undefined);
        continue;
      }
      await rm(moved, { force: true });
      warn(
        `took over the run lock ${path}: ${stale.holder} is no longer running (killed or crashed); ` +
          "its checkpoints are kept: resume them with resumeFrom 'latest'",
      );
    }
    throw new Error(`run folder ${dir}: could not take the run lock ${path} (another run keeps taking it)`);
  }

  /**
   * Creates the lock file whole or not at all (false: it exists): written under a temp name, then hard-linked
   * into place, which fails if the name is taken, so a kill never leaves an empty lock behind.
   */
  private static async create(path: string, holder: RunLockHolder): Promise<boolean> {
    const temp = `${path}.${holder.token}.tmp`;
    try {
      await writeFile(temp, `${JSON.stringify(holder)}\n`, { flag: 'wx' });
      await link(temp, path);
      return true;
    } catch (err) {
      if (errnoCode(err) === 'EEXIST') return false;
      throw fsError(err, path, 'create the run lock file');
    } finally {
      await rm(temp, { force: true });
    }
  }

  /** The lock file's text and holder when that holder is gone; throws when the lock is held (or may be). */
  private static async staleHolder(
    path: string,
    dir: string,
  ): Promise<{ text: string | null; holder: string }> {
    const text = await readFile(path, 'utf8').catch(() => null);
    if (text === null) return { text, holder: 'a holder that already released it' };
    const holder = parseHolder(text);
    const inUse = (who: string) =>
      new Error(
        `run folder ${dir} is in use by ${who} (lock file ${path}): wait for that run to finish or stop it, ` +
          'or train into another output folder; if that process is gone, delete the lock file',
      );
    if (!holder) {
      const age = Date.now() - (await stat(path)).mtimeMs;
      if (age < LOCK_WRITE_GRACE_MS) throw inUse('a run that is starting');
      return { text, holder: `an unreadable lock holder (lock file ${Math.round(age / 1000)} s old)` };
    }
    if (holder.hostname !== hostname()) throw inUse(`${describeHolder(holder)}, another machine`);
    if (pidAlive(holder.pid)) throw inUse(describeHolder(holder));
    return { text, holder: describeHolder(holder) };
  }

  private ownsLockFile(text: string): boolean {
    return parseHolder(text)?.token === this.holder.token;
  }

  /** Deletes the lock file if it is still this holder's. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    process.off('exit', this.releaseOnExit);
    const text = await readFile(this.path, 'utf8').catch(() => '');
    if (this.ownsLockFile(text)) await rm(this.path, { force: true });
  }

  private releaseSync(): void {
    if (this.released) return;
    this.released = true;
    try {
      if (this.ownsLockFile(readFileSync(this.path, 'utf8'))) unlinkSync(this.path);
    } catch {
      // exiting anyway: a lock left behind is taken over as stale by the next run
    }
  }
}

async function nonEmpty(path: string): Promise<boolean> {
  const s = await stat(path).catch(() => null);
  if (!s) return false;
  if (!s.isDirectory()) return true;
  return (await readdir(path)).length > 0;
}

/** The files of an earlier run in `output` (and its checkpoint folder), as paths; empty for a fresh folder. */
export async function previousRunFiles(output: string, checkpointRoot: string): Promise<string[]> {
  const found: string[] = [];
  for (const name of RUN_FILES) {
    const path = join(output, name);
    if (await nonEmpty(path)) found.push(path);
  }
  if (await nonEmpty(checkpointRoot)) found.push(checkpointRoot);
  return found;
}

function inside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel !== '' && !rel.startsWith('..') && !rel.startsWith(sep);
}

/**
 * Moves an earlier run's files out of the way: those inside `output` into `<output>/previous-run-<time>/`,
 * a checkpoint folder outside it to `<that folder>.previous-run-<time>`. Returns where each went.
 */
export async function moveRunAside(output: string, files: readonly string[]): Promise<Map<string, string>> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const aside = join(output, `${ASIDE_PREFIX}${stamp}`);
  const moved = new Map<string, string>();
  for (const from of files) {
    const to = inside(output, from) ? join(aside, relative(output, from)) : `${from}.${ASIDE_PREFIX}${stamp}`;
    await mkdir(dirname(to), { recursive: true });
    try {
      await rename(from, to);
    } catch (err) {
      throw fsError(err, from, `move the earlier run's ${from} aside to ${to}`);
    }
    moved.set(from, to);
  }
  return moved;
}
