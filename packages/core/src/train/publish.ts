// The final model folder at a fixed path (<output>/model) that later recipes can start from: hard links to
// the final checkpoint's model files (no second copy on disk), swapped in atomically.
import { randomUUID } from 'node:crypto';
import { copyFile, link, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { OPTIMIZER_FILE, TRAINABLE_WEIGHTS_FILE, TRAINER_STATE_FILE } from './checkpoint.js';

const TRAINER_FILES = new Set([TRAINER_STATE_FILE, TRAINABLE_WEIGHTS_FILE, OPTIMIZER_FILE]);

/** Makes `target` hold the model files of `checkpointDir` (everything but the trainer's own files); returns target. */
export async function publishModelFolder(checkpointDir: string, target: string): Promise<string> {
  const temp = `${target}.tmp-${randomUUID()}`;
  await mkdir(temp, { recursive: true });
  try {
    for (const name of await readdir(checkpointDir)) {
      if (TRAINER_FILES.has(name)) continue;
      const from = join(checkpointDir, name);
      if (!(await stat(from)).isFile()) continue;
      // A hard link fails across file systems; a copy always works.
      await link(from, join(temp, name)).catch(() => copyFile(from, join(temp, name)));
    }
    const old = `${target}.old-${randomUUID()}`;
    const hadOld = await rename(target, old).then(
      () => true,
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return false;
        throw err;
      },
    );
    await rename(temp, target);
    if (hadOld) await rm(old, { recursive: true, force: true });
  } catch (err) {
    await rm(temp, { recursive: true, force: true });
    throw err;
  }
  return target;
}
