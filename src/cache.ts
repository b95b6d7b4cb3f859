/**
 * tiergate's cache directory: results that are a pure function of their
 * input and of tiergate's own code, kept between runs so that a CLI run does
 * not redo them (the validated plan of a tiergate.yaml, the parse of a tier
 * file, the initialised PGlite directory).
 *
 * `TIERGATE_CACHE_DIR` names the directory (default
 * `node_modules/.cache/tiergate` beside the code); `TIERGATE_CACHE=off` turns
 * the read-through caches off. A cache that cannot be read or written is no
 * cache: every failure here reads as a miss, never as an error.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot } from './package-root.js';

export function cacheRoot(): string {
  return process.env.TIERGATE_CACHE_DIR || join(packageRoot(), 'node_modules', '.cache', 'tiergate');
}

function cacheOff(): boolean {
  return /^(off|0|false|no)$/i.test(process.env.TIERGATE_CACHE ?? '');
}

/**
 * The identity of the code that computes a cached value: the text of its
 * modules (siblings of `from`, by base name: `.js` when compiled, `.ts` under
 * tsx) and the versions of the packages it uses. A change to any of them is
 * a new key, so a stale entry is never read.
 *
 * @example const stamp = codeStamp(import.meta.url, ['parse-script', 'analyze-statement'], ['libpg-query']);
 */
export function codeStamp(from: string, modules: string[], packages: string[]): string {
  const hash = createHash('sha256');
  const ext = from.endsWith('.ts') ? '.ts' : '.js';
  for (const m of modules) {
    try {
      hash.update(readFileSync(fileURLToPath(new URL(`./${m}${ext}`, from))));
    } catch {
      hash.update(`${m}: missing`);
    }
  }
  for (const p of packages) hash.update(`${p}@${packageVersion(p)}`);
  return hash.digest('hex');
}

/** The version of the package `name` as this module resolves it (wherever npm put it), or 'unknown'. */
function packageVersion(name: string): string {
  try {
    let dir = dirname(fileURLToPath(import.meta.resolve(name)));
    for (;;) {
      try {
        const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
        if (pkg.name === name && pkg.version) return pkg.version;
      } catch {
        /* no package.json here: look further up */
      }
      const up = dirname(dir);
      if (up === dir) return 'unknown';
      dir = up;
    }
  } catch {
    return 'unknown';
  }
}

function entryPath(kind: string, key: string): string {
  return join(cacheRoot(), kind, `${createHash('sha256').update(key).digest('hex')}.json`);
}

/** The value stored under `key`, or undefined (none, unreadable, or the cache is off). */
export function readCache<T>(kind: string, key: string): T | undefined {
  if (cacheOff()) return undefined;
  try {
    const entry = JSON.parse(readFileSync(entryPath(kind, key), 'utf8')) as { key?: unknown; value?: T };
    // the key is stored too: a hash collision or a truncated copy is a miss
    return entry.key === key ? entry.value : undefined;
  } catch {
    return undefined;
  }
}

/** Stores `value` under `key`, atomically (a reader sees the old entry, the new one, or none). */
export function writeCache(kind: string, key: string, value: unknown): void {
  if (cacheOff()) return;
  try {
    const path = entryPath(kind, key);
    mkdirSync(join(cacheRoot(), kind), { recursive: true });
    const temp = `${path}.${process.pid}.tmp`;
    writeFileSync(temp, JSON.stringify({ key, value }));
    renameSync(temp, path);
    prune(join(cacheRoot(), kind));
  } catch {
    /* a read-only or full disk: no cache */
  }
}

/** Entries kept per kind: a plan's files are a handful; what is over goes, the least recently written first. */
const KEEP = 256;

function prune(dir: string): void {
  const names = readdirSync(dir);
  if (names.length <= KEEP) return;
  const aged = names.flatMap((name) => {
    try {
      return [{ name, at: statSync(join(dir, name)).mtimeMs }];
    } catch {
      return []; // removed by another process meanwhile
    }
  });
  aged.sort((a, b) => a.at - b.at);
  for (const { name } of aged.slice(0, aged.length - KEEP)) {
    try {
      unlinkSync(join(dir, name));
    } catch {
      /* removed meanwhile */
    }
  }
}
