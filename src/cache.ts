/**
 * tiergate's cache directory: results that are a pure function of their
 * input and of tiergate's own code, kept between runs so that a CLI run does
 * not redo them (the validated plan of a tiergate.yaml, the parse of a tier
 * file, the initialised PGlite directory).
 *
 * `TIERGATE_CACHE_DIR` names the directory (default
 * `node_modules/.cache/tiergate` beside the code, or the user's own cache
 * folder when that is not theirs to write: `cacheRoot`); `TIERGATE_CACHE=off` turns
 * the read-through caches off. A cache that cannot be read or written is no
 * cache: every failure here reads as a miss, never as an error.
 */
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot } from './package-root.js';
import { mkdirEach } from './mkdir.js';

let defaultRoot: string | undefined;

/**
 * The cache directory: `TIERGATE_CACHE_DIR`; else `node_modules/.cache/tiergate`
 * beside the code when this user may write there (an install of their own,
 * where `npm ci` fills it); else — an install another user made, a global
 * one by root — `$XDG_CACHE_HOME/tiergate` (`~/.cache/tiergate`): a run
 * otherwise kept nothing, and read nothing it could trust.
 */
export function cacheRoot(): string {
  if (process.env.TIERGATE_CACHE_DIR) return process.env.TIERGATE_CACHE_DIR;
  defaultRoot ??= ownCacheRoot();
  return defaultRoot;
}

function ownCacheRoot(): string {
  const root = packageRoot();
  const beside = join(root, 'node_modules', '.cache', 'tiergate');
  // the nearest folder of it that exists decides: the cache itself, else .cache, node_modules, the package
  let dir = beside;
  while (dir !== root && !existsSync(dir)) dir = dirname(dir);
  try {
    accessSync(dir, constants.W_OK);
    if (typeof process.getuid !== 'function' || statSync(dir).uid === process.getuid()) return beside;
  } catch {
    // not writable: the user's own cache folder
  }
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'tiergate');
}

function cacheOff(): boolean {
  return /^(off|0|false|no)$/i.test(process.env.TIERGATE_CACHE ?? '');
}

/** False when `TIERGATE_CACHE=off` turns the read-through caches off. */
export function cacheEnabled(): boolean {
  return !cacheOff();
}

/**
 * The identity of the code that computes a cached value: the text of its
 * modules (siblings of `from`, by base name: `.js` when compiled, `.ts` under
 * tsx) and the versions of the packages it uses. A change to any of them is
 * a new key, so a stale entry is never read. Null — no caching — when a
 * module or a package cannot be found: a key that does not follow the code
 * would outlive an upgrade.
 *
 * @example const stamp = codeStamp(import.meta.url, ['parse-script', 'analyze-statement'], ['libpg-query']);
 */
export function codeStamp(from: string, modules: string[], packages: string[]): string | null {
  const hash = createHash('sha256');
  const ext = from.endsWith('.ts') ? '.ts' : '.js';
  try {
    for (const m of modules) hash.update(readFileSync(fileURLToPath(new URL(`./${m}${ext}`, from))));
  } catch {
    return null;
  }
  for (const p of packages) {
    const version = packageVersion(p);
    if (!version) return null;
    hash.update(`${p}@${version}`);
  }
  return hash.digest('hex');
}

/**
 * The version of the package `name` as Node resolves it from tiergate's own
 * folder (its node_modules, then each parent's), or null.
 */
export function packageVersion(name: string): string | null {
  for (let dir = packageRoot(); ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8')) as { version?: string };
      if (pkg.version) return pkg.version;
    } catch {
      /* not installed here: look further up */
    }
    if (dirname(dir) === dir) return null;
  }
}

function entryPath(kind: string, key: string): string {
  return join(cacheRoot(), kind, `${createHash('sha256').update(key).digest('hex')}.json`);
}

/**
 * The value stored under `key`, or undefined (none, unreadable, or the cache
 * is off). An entry is read only when it and its folders belong to this user
 * and nobody else can write them: what the cache holds (a validated plan, the
 * statements of a tier file) is trusted as much as tiergate's own code.
 */
export function readCache<T>(kind: string, key: string): T | undefined {
  if (cacheOff()) return undefined;
  try {
    const path = entryPath(kind, key);
    if (![path, dirname(path), cacheRoot()].every(ownedByUs)) return undefined;
    const entry = JSON.parse(readFileSync(path, 'utf8')) as { key?: unknown; value?: T };
    // the key is stored too: a hash collision or a truncated copy is a miss
    return entry.key === key ? entry.value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether a cached folder and everything in it can be trusted as tiergate's
 * own (the PGlite template every sample and rehearsal clone is copied from):
 * the folder and its parent this user's and writable by nobody else, no link
 * in it, every entry this user's. Inside a folder closed to everyone else
 * (mode 700) an entry's own mode does not matter — nobody else can reach it,
 * and PGlite writes its files 666 —; otherwise no entry may be writable by
 * anyone else.
 */
export function trustedTree(dir: string): boolean {
  const uid = process.getuid?.();
  if (uid === undefined) return true;
  try {
    if (![dir, dirname(dir)].every(ownedByUs)) return false;
    const closed = (statSync(dir).mode & 0o077) === 0;
    const walk = (d: string): boolean => {
      for (const entry of readdirSync(d, { withFileTypes: true })) {
        const path = join(d, entry.name);
        if (entry.isSymbolicLink()) return false;
        const st = statSync(path);
        if (st.uid !== uid || (!closed && (st.mode & 0o022) !== 0)) return false;
        if (entry.isDirectory() && !walk(path)) return false;
      }
      return true;
    };
    return walk(dir);
  } catch {
    return false;
  }
}

/** Owned by this process's user and not writable by group or others (always true where there are no uids). */
function ownedByUs(path: string): boolean {
  const uid = process.getuid?.();
  if (uid === undefined) return true;
  const st = statSync(path);
  return st.uid === uid && (st.mode & 0o022) === 0;
}

/** Stores `value` under `key`, atomically (a reader sees the old entry, the new one, or none); at most `keep` entries of `kind` stay. */
export function writeCache(kind: string, key: string, value: unknown, keep = KEEP): void {
  if (cacheOff()) return;
  try {
    const path = entryPath(kind, key);
    mkdirEach(join(cacheRoot(), kind), 0o700);
    const temp = `${path}.${process.pid}.tmp`;
    writeFileSync(temp, JSON.stringify({ key, value }), { mode: 0o600 });
    renameSync(temp, path);
    prune(join(cacheRoot(), kind), keep);
  } catch {
    /* a read-only or full disk: no cache */
  }
}

/** Entries kept per kind: a plan's files are a handful; what is over goes, the least recently written first. */
const KEEP = 256;

function prune(dir: string, keep: number): void {
  const names = readdirSync(dir);
  if (names.length <= keep) return;
  const aged = names.flatMap((name) => {
    try {
      return [{ name, at: statSync(join(dir, name)).mtimeMs }];
    } catch {
      return []; // removed by another process meanwhile
    }
  });
  aged.sort((a, b) => a.at - b.at);
  for (const { name } of aged.slice(0, aged.length - keep)) {
    try {
      unlinkSync(join(dir, name));
    } catch {
      /* removed meanwhile */
    }
  }
}

/**
 * The cached folder `name` (a PGlite data directory), when there is one this
 * user can trust (`trustedTree`), else null. Its time is touched: folders are
 * pruned least recently used first.
 */
export function cachedFolder(name: string): string | null {
  try {
    const dir = join(cacheRoot(), name);
    if (!existsSync(dir) || !trustedTree(dir)) return null;
    const now = new Date();
    utimesSync(dir, now, now);
    return dir;
  } catch {
    return null;
  }
}

/**
 * Builds the cached folder `name`: `build` fills a new owner-only folder in
 * the cache, which then takes the name atomically (when another process
 * built it meanwhile, theirs is kept and ours dropped). Returns the folder,
 * or null when the cache cannot be written or already holds an untrusted
 * `name` (then nothing was built). An
 * error of `build` is thrown, its half-built folder removed. Afterwards at
 * most `keep` folders whose name starts with `prefix` stay: the least
 * recently used go, unless used within the last hour (another process may be
 * copying it).
 */
export async function buildCachedFolder(name: string, build: (dir: string) => Promise<void>, prune?: { prefix: string; keep: number }): Promise<string | null> {
  const root = cacheRoot();
  let building: string;
  try {
    // one there that could not be trusted (else the caller had it) cannot be replaced: build elsewhere
    if (existsSync(join(root, name))) return null;
    mkdirEach(root, 0o700);
    if (!ownedByUs(root)) return null;
    building = mkdtempSync(join(root, `${name}.building-`));
  } catch {
    return null;
  }
  try {
    await build(building);
  } catch (e) {
    rmSync(building, { recursive: true, force: true });
    throw e;
  }
  try {
    renameSync(building, join(root, name)); // atomic: a concurrent builder's folder wins, ours is dropped
  } catch {
    rmSync(building, { recursive: true, force: true });
  }
  if (prune) pruneFolders(root, prune.prefix, prune.keep);
  return cachedFolder(name);
}

const IN_USE_MS = 3_600_000;

/** Folders `prefix…` beyond the `keep` most recently used go, and half-built ones a killed build left; none used within the hour. */
function pruneFolders(root: string, prefix: string, keep: number): void {
  try {
    const aged = readdirSync(root, { withFileTypes: true })
      .filter((e) => e.isDirectory() && e.name.startsWith(prefix))
      .flatMap((e) => {
        try {
          return [{ path: join(root, e.name), building: e.name.includes('.building-'), at: statSync(join(root, e.name)).mtimeMs }];
        } catch {
          return []; // removed by another process meanwhile
        }
      })
      .sort((a, b) => b.at - a.at);
    const old = [...aged.filter((f) => !f.building).slice(keep), ...aged.filter((f) => f.building)];
    for (const { path, at } of old) {
      if (Date.now() - at > IN_USE_MS) rmSync(path, { recursive: true, force: true });
    }
  } catch {
    /* a cache that cannot be listed is left as it is */
  }
}
