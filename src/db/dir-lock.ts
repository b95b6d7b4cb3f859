import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { LockHeldError } from '../errors.js';
import { mkdirEach } from '../mkdir.js';

export interface DirLock {
  release(): void;
}

const LOCK_FILE = '.tiergate.lock';

/**
 * An exclusive lock on a PGlite data directory: two processes must never open
 * the same directory. A lock left by a dead process is taken over.
 */
export function acquireDirLock(dir: string, options: { create?: boolean; command?: string } = {}): DirLock {
  const command = options.command ?? (process.argv.slice(2, 3).join(' ') || 'tiergate');
  if (options.create) mkdirEach(dir);
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, JSON.stringify({ pid: process.pid, command, startedAt: new Date().toISOString() }));
      closeSync(fd);
      let released = false;
      return {
        release() {
          if (released) return;
          released = true;
          rmSync(path, { force: true });
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const holder = readHolder(path);
      if (holder && isAlive(holder.pid)) {
        throw new LockHeldError(
          `PGlite directory ${dir}`,
          `pid ${holder.pid}, tiergate ${holder.command}, since ${holder.startedAt}`,
        );
      }
      rmSync(path, { force: true }); // stale: its process is gone
    }
  }
  throw new LockHeldError(`PGlite directory ${dir}`, 'another process keeps re-taking the lock');
}

function readHolder(path: string): { pid: number; command: string; startedAt: string } | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as { pid: number; command: string; startedAt: string };
  } catch {
    return null;
  }
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
