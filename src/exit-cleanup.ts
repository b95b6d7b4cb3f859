import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

/**
 * Folders a run removes when it ends, that must not outlive an exit the run
 * cannot finish (a second Ctrl-C exits at once): PGlite clones, gigabytes in
 * /dev/shm at scale. `removeLeftFolders` removes them synchronously, just
 * before such an exit.
 */
const folders = new Set<string>();

/** Registers `dir` for removal at an abrupt exit; returns its unregistration (call it once the run removed it). */
export function removeAtAbruptExit(dir: string): () => void {
  folders.add(dir);
  return () => void folders.delete(dir);
}

/** Removes every registered folder now (best effort) and returns how many there were. */
export function removeLeftFolders(): number {
  const n = folders.size;
  for (const dir of folders) rmSync(dir, { recursive: true, force: true, maxRetries: 0 });
  folders.clear();
  return n;
}

/**
 * Child processes a run waits for (pg_dump, pg_restore) that must not
 * outlive an abrupt exit: an orphaned pg_dump keeps its session, its
 * transaction and its lock requests open on the source.
 */
const children = new Set<ChildProcess>();

/** Registers `child` to be stopped at an abrupt exit; returns its unregistration (call it once it exited). */
export function stopAtAbruptExit(child: ChildProcess): () => void {
  children.add(child);
  return () => void children.delete(child);
}

/** Stops every registered child process now (SIGTERM, best effort) and returns how many there were. */
export function stopLeftChildren(): number {
  const n = children.size;
  for (const child of children) child.kill('SIGTERM');
  children.clear();
  return n;
}
