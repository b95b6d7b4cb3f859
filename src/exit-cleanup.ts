import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { isAlive, startedAfter } from './db/dir-lock.js';

/**
 * What a run cleans up when it ends, and must not leave behind at an exit
 * it cannot finish (a second Ctrl-C exits at once): each is registered while
 * it exists, and acted on synchronously just before such an exit.
 */
function atAbruptExit<T>(act: (item: T) => void): { register: (item: T) => () => void; now: () => number } {
  const items = new Set<T>();
  return {
    register: (item) => {
      items.add(item);
      return () => void items.delete(item);
    },
    now: () => {
      // best effort, item by item: one that fails (a folder a worker thread is still writing in) stops neither the
      // others nor the exit that follows (a throw here, in a signal handler, ended the process with exit 1)
      let n = 0;
      for (const item of items) {
        try {
          act(item);
          n++;
        } catch {
          /* left: a later run sweeps a gone process's folders */
        }
      }
      items.clear();
      return n;
    },
  };
}

/** Folders (PGlite clones, gigabytes in /dev/shm at scale; a dump file): removed. */
// (retried: a PGlite worker thread may still be writing in it, and a folder it filled meanwhile is ENOTEMPTY)
const folders = atAbruptExit<string>((dir) => rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 }));

/**
 * Child processes a run waits for (pg_dump, pg_restore): stopped (SIGTERM,
 * best effort). An orphaned pg_dump keeps its session, its transaction and
 * its lock requests open on the source.
 */
const children = atAbruptExit<ChildProcess>((child) => child.kill('SIGTERM'));

/** Registers `dir` for removal at an abrupt exit; returns its unregistration (call it once the run removed it). */
export const removeAtAbruptExit = folders.register;

/** Removes every registered folder now (best effort) and returns how many there were. */
export const removeLeftFolders = folders.now;

/** Registers `child` to be stopped at an abrupt exit; returns its unregistration (call it once it exited). */
export const stopAtAbruptExit = children.register;

/** Stops every registered child process now and returns how many there were. */
export const stopLeftChildren = children.now;

/**
 * The prefix of a temporary folder this process makes (`tiergate-clone-`,
 * `tiergate-dump-`), with its pid: a later run can tell a folder whose
 * process is gone (killed, its machine's power lost) from one in use.
 */
export function ownedTempPrefix(kind: 'clone' | 'dump'): string {
  return `tiergate-${kind}-${process.pid}-`;
}

/** A kept clone's folder (`rehearse --keep`) holds this file: never swept. */
export const KEPT_MARK = '.tiergate-kept';

/**
 * Removes the clone and dump folders that runs killed before their clean-up
 * left in `roots` (a PGlite clone of the source in memory, a dump file of
 * its data): those named by a process that is gone, or by a pid that a
 * newer process has taken since the folder was made. A kept clone, and
 * folders of an older tiergate (no pid in the name), are left. Best effort;
 * returns how many were removed.
 */
export function sweepLeftBehind(roots: string[], alive: (pid: number, since: Date) => boolean = processAlive): number {
  let removed = 0;
  for (const root of new Set(roots)) {
    let names: string[];
    try {
      names = readdirSync(root);
    } catch {
      continue;
    }
    for (const name of names) {
      const m = /^tiergate-(?:clone|dump)-(\d+)-/.exec(name);
      if (!m) continue;
      const dir = join(root, name);
      try {
        const made = statSync(dir);
        if (!made.isDirectory() || existsSync(join(dir, KEPT_MARK)) || alive(Number(m[1]), made.birthtime.getTime() ? made.birthtime : made.mtime)) continue;
        rmSync(dir, { recursive: true, force: true, maxRetries: 0 });
        removed++;
      } catch {
        // another process removes it, or it is not ours to remove: left
      }
    }
  }
  return removed;
}

/** Whether `pid` is a process that was already running at `since` (this one, or one that made the folder). */
function processAlive(pid: number, since: Date): boolean {
  return pid === process.pid || (isAlive(pid) && !startedAfter(pid, since.toISOString()));
}

/**
 * Who made something a later run may find left behind where no folder name
 * can carry it (a clone database on a scratch server): this process, on
 * this machine (its host name), since its last boot (Linux's boot id).
 */
export interface OwnerMark {
  pid: number;
  host: string;
  /** /proc/sys/kernel/random/boot_id; '' where there is none */
  boot: string;
  /** ISO 8601: when the thing was made (a pid taken since by a newer process is not its maker) */
  at: string;
}

export function ownerMark(): OwnerMark {
  return { pid: process.pid, host: hostname(), boot: bootId(), at: new Date().toISOString() };
}

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

/**
 * Whether the run that wrote `mark` is certainly gone: it ran on this
 * machine (same host name) and the machine booted since, or its process is
 * gone (or its pid was taken by a newer one). False whenever it cannot be
 * told — another machine's run, a mark that is not one — so that nothing a
 * live run uses is ever removed on a guess.
 */
export function ownerGone(mark: unknown, alive: (pid: number, since: Date) => boolean = processAlive): boolean {
  const m = mark as Partial<OwnerMark> | null;
  if (!m || typeof m.pid !== 'number' || typeof m.host !== 'string' || typeof m.at !== 'string' || !Number.isFinite(Date.parse(m.at))) return false;
  if (m.host !== hostname()) return false;
  const boot = bootId();
  if (boot && m.boot && boot !== m.boot) return true;
  return !alive(m.pid, new Date(m.at));
}
