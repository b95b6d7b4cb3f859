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
        // (a pid the system gave anew since — after a reboot — is not the holder: its process started after the lock)
        if (!startedAfter(holder.pid, holder.startedAt)) {
          throw new LockHeldError(
            `PGlite directory ${dir}`,
            `pid ${holder.pid}, tiergate ${holder.command}, since ${holder.startedAt}`,
          );
        }
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

/** Whether a process with this pid exists (one of another user's counts: EPERM). */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The clock ticks /proc counts in: USER_HZ, 100 on every Linux a tiergate runs on (getconf CLK_TCK). */
const USER_HZ = 100;

/**
 * Whether process `pid` started after `since` (an ISO time), as Linux's
 * /proc says (its start in clock ticks after the boot time); false when it
 * cannot be told (another system), so that a live holder is never taken over
 * on a guess.
 */
export function startedAfter(pid: number, since: string): boolean {
  const at = Date.parse(since);
  if (!Number.isFinite(at)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the fields after the command (in parentheses, which may hold spaces): the 22nd field of the line is the 20th after it
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    const boot = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]);
    if (!Number.isFinite(ticks) || !Number.isFinite(boot)) return false;
    // a second of slack: the lock is written just after its process starts
    return boot * 1000 + (ticks / USER_HZ) * 1000 > at + 1000;
  } catch {
    return false;
  }
}
