import { withDb, type OpenOptions } from '../db/open-db.js';
import type { Db } from '../db/port.js';
import { LockHeldError } from '../errors.js';

/**
 * Opens `url` for a command and always closes it. With `waitMs` (`--wait`), a
 * PGlite directory another process holds is waited for, as the rollout lock
 * of a server is, at most that long.
 */
export async function openTarget<T>(url: string, options: OpenOptions & { waitMs?: number }, fn: (db: Db) => Promise<T>): Promise<T> {
  const deadline = performance.now() + (options.waitMs ?? 0);
  for (let pause = 100; ; pause = Math.min(pause * 2, 2000)) {
    try {
      return await withDb(url, fn, options);
    } catch (e) {
      const left = deadline - performance.now();
      // only a lock met while opening is waited for (fn's own errors are not LockHeldError of a directory)
      if (!(e instanceof LockHeldError) || !e.subject.startsWith('PGlite directory') || left <= 0) throw e;
      await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)));
    }
  }
}
