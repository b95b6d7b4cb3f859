import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

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
      const n = items.size;
      for (const item of items) act(item);
      items.clear();
      return n;
    },
  };
}

/** Folders (PGlite clones, gigabytes in /dev/shm at scale; a dump file): removed. */
const folders = atAbruptExit<string>((dir) => rmSync(dir, { recursive: true, force: true, maxRetries: 0 }));

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
