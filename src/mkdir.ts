import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * `mkdir -p`, one folder at a time: Node 20's `mkdirSync(recursive)` spins at
 * full CPU forever where a parent cannot be made (under /proc); made one by
 * one, the first that cannot be made throws (ENOENT, EACCES …).
 */
export function mkdirEach(dir: string, mode?: number): void {
  const missing: string[] = [];
  for (let d = resolve(dir); !existsSync(d); d = dirname(d)) {
    missing.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const d of missing) mkdirSync(d, { mode });
}
