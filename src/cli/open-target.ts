import { openDb, type OpenOptions } from '../db/open-db.js';
import type { Db } from '../db/port.js';
import { InterruptedError, LockHeldError } from '../errors.js';

/**
 * Opens `url` for a command and always closes it. With `waitMs` (`--wait`), a
 * PGlite directory another process holds is waited for, as the rollout lock
 * of a server is, at most that long: `onWait` is told once when the waiting
 * begins, Ctrl-C ends the wait (exit 130, nothing was changed), and giving up
 * says how long it waited.
 */
export async function openTarget<T>(
  url: string,
  options: OpenOptions & { waitMs?: number; onWait?: (held: LockHeldError, waitMs: number) => void },
  fn: (db: Db) => Promise<T>,
): Promise<T> {
  const db = await openWaiting(url, options);
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

/** Opens `url`, waiting up to `waitMs` for a PGlite directory another process holds; Ctrl-C ends the wait (nothing was opened). */
async function openWaiting(url: string, options: OpenOptions & { waitMs?: number; onWait?: (held: LockHeldError, waitMs: number) => void }): Promise<Db> {
  const deadline = performance.now() + (options.waitMs ?? 0);
  let held: LockHeldError | null = null;
  let interrupted = false;
  let wake: (() => void) | null = null;
  const onSigint = () => {
    interrupted = true;
    wake?.();
  };
  try {
    for (let pause = 100; ; pause = Math.min(pause * 2, 2000)) {
      try {
        const db = await openDb(url, options);
        if (!interrupted) return db;
        await db.close();
        throw waitInterrupted(held!);
      } catch (e) {
        // only a lock met while opening is waited for
        if (!(e instanceof LockHeldError) || !e.subject.startsWith('PGlite directory')) throw e;
        const left = deadline - performance.now();
        // given up after --wait: say so, as the rollout lock of a server does
        if (left <= 0) throw options.waitMs ? new LockHeldError(`${e.subject} (waited ${Math.round(options.waitMs / 1000)} s)`, e.holder) : e;
        if (!held) {
          // listening before telling: a Ctrl-C in answer to the notice must find the listener
          process.on('SIGINT', onSigint);
          options.onWait?.(e, options.waitMs ?? 0);
        }
        held = e;
        let timer: NodeJS.Timeout | undefined;
        if (!interrupted) await new Promise<void>((resolve) => ((wake = resolve), (timer = setTimeout(resolve, Math.min(pause, left)))));
        clearTimeout(timer);
        wake = null;
        if (interrupted) throw waitInterrupted(e);
      }
    }
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/** Ctrl-C while waiting for a lock another run holds (--wait): interrupted, not refused, and nothing was changed. */
export function waitInterrupted(held: LockHeldError): InterruptedError {
  return new InterruptedError(`interrupted (Ctrl-C) while waiting for ${held.subject.replace(/ \(waited [^)]*\)$/, '')}, held by another run (${held.holder}): nothing was changed`);
}
