import { mkdir } from 'node:fs/promises';

// OS errors turned into messages that name the file and say what to do: a bare "ENOSPC: no space left on
// device, write" does not say which of a run's files failed or that the half-written file was removed.

/** The errno code of a Node fs error, or undefined for anything else. */
export function errnoCode(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

const FIXES: Record<string, (path: string) => string> = {
  ENOENT: (path) => `${path} does not exist: check the path (and that its folder exists)`,
  ENOTDIR: (path) =>
    `a part of ${path} is a file where a folder is needed: choose another path or move that file away`,
  EISDIR: (path) => `${path} is a folder where a file is needed: remove or rename the folder`,
  ENOSPC: (path) => `no space left on the device holding ${path}: free disk space or write elsewhere`,
  EDQUOT: (path) => `disk quota exceeded writing ${path}: free space in your quota or write elsewhere`,
  EACCES: (path) => `permission denied for ${path}: check its owner and mode, or use another path`,
  EPERM: (path) => `operation not permitted on ${path}: check its owner and mode, or use another path`,
  EROFS: (path) => `${path} is on a read-only file system: write elsewhere`,
  EMFILE: (path) => `too many open files while opening ${path}: raise the limit (ulimit -n) or open fewer`,
  EEXIST: (path) => `${path} already exists`,
};

/**
 * An Error for an fs failure on `path` while doing `action` ("write the checkpoint weights", "read the model
 * config"): the message names the file, the OS reason and the fix; the original error is its cause. Errors that
 * are not fs errors come back unchanged.
 */
export function fsError(err: unknown, path: string, action: string): Error {
  const code = errnoCode(err);
  const fix = code === undefined ? undefined : FIXES[code];
  if (!fix) return err instanceof Error ? err : new Error(`cannot ${action} (${path}): ${String(err)}`);
  return new Error(`cannot ${action}: ${fix(path)} (${code})`, { cause: err });
}

/** mkdir -p with a clear error when a file stands where a folder of the path should be (EEXIST / ENOTDIR). */
export async function ensureDir(path: string, what: string): Promise<void> {
  try {
    await mkdir(path, { recursive: true });
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'EEXIST' || code === 'ENOTDIR')
      throw new Error(
        `cannot create the ${what} folder ${path}: a file is in the way (it or one of its parents is a file, ${code}): choose another path or move that file away`,
        { cause: err },
      );
    throw fsError(err, path, `create the ${what} folder`);
  }
}

/** Runs `op` and rethrows an fs failure through fsError. */
export async function withFsContext<T>(path: string, action: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw fsError(err, path, action);
  }
}
