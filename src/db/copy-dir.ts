import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { cp } from 'node:fs/promises';
import { basename, join } from 'node:path';

/** `cp` processes at once: creating files dominates a copy (a PGlite directory holds ~1,600 small files), and it overlaps well. */
const AT_ONCE = 4;

export interface CopyProgress {
  /** a part copied (of all targets' parts) */
  onPart?: (done: number, total: number) => void;
  /** a target complete */
  onCopied?: (target: string) => void;
}

/** Copies a closed PGlite data directory: `cp -a` (reflinks where the file system has them), else node's own copy. */
export async function copyDir(from: string, to: string): Promise<void> {
  await copyDirs(from, [to]);
}

/**
 * Copies a closed PGlite data directory into each of `targets` (existing,
 * empty folders), a few parts at once: each database's folder under `base/`
 * is a part, everything else one more.
 */
export async function copyDirs(from: string, targets: string[], progress: CopyProgress = {}): Promise<void> {
  const top = readdirSync(from);
  const databases = top.includes('base') && statSync(join(from, 'base')).isDirectory() ? readdirSync(join(from, 'base')) : [];
  const rest = top.filter((name) => !(name === 'base' && databases.length));
  const parts: { sources: string[]; into: string; target: string }[] = [];
  const left = new Map<string, number>();
  for (const to of targets) {
    if (databases.length) {
      mkdirSync(join(to, 'base'), { mode: statSync(join(from, 'base')).mode & 0o7777 });
      for (const db of databases) parts.push({ sources: [join(from, 'base', db)], into: join(to, 'base'), target: to });
    }
    if (rest.length) parts.push({ sources: rest.map((name) => join(from, name)), into: to, target: to });
    left.set(to, parts.filter((p) => p.target === to).length);
  }
  for (const [to, n] of left) if (n === 0) progress.onCopied?.(to);
  // target by target: the first is complete first
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < parts.length) {
      const part = parts[next++]!;
      await copyInto(part.sources, part.into);
      progress.onPart?.(++done, parts.length);
      const remaining = left.get(part.target)! - 1;
      left.set(part.target, remaining);
      if (remaining === 0) progress.onCopied?.(part.target);
    }
  };
  await Promise.all(Array.from({ length: Math.min(AT_ONCE, parts.length) }, worker));
}

async function copyInto(sources: string[], into: string): Promise<void> {
  const ok = await new Promise<boolean>((resolve) => {
    const child = spawn('cp', ['-a', '--reflink=auto', ...sources, `${into}/`], { stdio: 'ignore' });
    child.on('error', () => resolve(false));
    child.on('close', (code) => resolve(code === 0));
  });
  if (ok) return;
  for (const source of sources) {
    await cp(source, join(into, basename(source)), { recursive: true, force: true, preserveTimestamps: true });
  }
}
