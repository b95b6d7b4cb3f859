import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { basename, delimiter, join } from 'node:path';
import { InterruptedError, UsageError } from '../errors.js';
import { stopAtAbruptExit } from '../exit-cleanup.js';
import { editPostgresUrl } from '../db/pg-url.js';
import { registerSecret, scrub } from '../secrets.js';

export interface PgTools {
  pgDump: string;
  pgRestore: string;
  /** major version of both */
  major: number;
}

/**
 * Finds `pg_dump` and `pg_restore` (from one directory) of a major version at
 * least `minMajor` (pg_dump refuses servers newer than itself): on PATH, in
 * `pg_config --bindir`, in /usr/lib/postgresql/N/bin. The newest wins.
 */
export function findPgTools(minMajor: number): PgTools {
  const dirs = new Set<string>();
  for (const d of (process.env.PATH ?? '').split(delimiter)) if (d && existsSync(join(d, 'pg_dump'))) dirs.add(d);
  const fromConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (fromConfig.status === 0 && fromConfig.stdout.trim()) dirs.add(fromConfig.stdout.trim());
  if (existsSync('/usr/lib/postgresql')) {
    for (const v of readdirSync('/usr/lib/postgresql')) dirs.add(`/usr/lib/postgresql/${v}/bin`);
  }
  const found: PgTools[] = [];
  for (const dir of dirs) {
    const pgDump = join(dir, 'pg_dump');
    const pgRestore = join(dir, 'pg_restore');
    if (!existsSync(pgDump) || !existsSync(pgRestore)) continue;
    const major = toolMajor(pgDump);
    if (major !== null && toolMajor(pgRestore) === major) found.push({ pgDump, pgRestore, major });
  }
  found.sort((a, b) => b.major - a.major);
  const best = found[0];
  if (!best) {
    throw new UsageError(
      `pg_dump / pg_restore were not found (looked on PATH, in pg_config --bindir and in /usr/lib/postgresql/*/bin): ` +
        `install the PostgreSQL client tools, version ${minMajor} or newer (e.g. apt-get install postgresql-client-${minMajor}), or put them on PATH`,
    );
  }
  if (best.major < minMajor) {
    throw new UsageError(
      `the newest pg_dump found (${best.pgDump}) is version ${best.major}, but the source server runs PostgreSQL ${minMajor}: ` +
        `pg_dump must be at least as new as the server; install postgresql-client-${minMajor} (or newer) or put it on PATH`,
    );
  }
  return best;
}

function toolMajor(path: string): number | null {
  const r = spawnSync(path, ['--version'], { encoding: 'utf8' });
  // `pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`, `pg_dump (PostgreSQL) 18beta1`
  const m = r.status === 0 ? /\)\s*(\d+)/.exec(r.stdout) : null;
  return m ? Number(m[1]) : null;
}

/**
 * A libpq connection for a child process: the URL without its password, the
 * password in PGPASSWORD (never on a command line, where `ps` shows it).
 */
export function toolConnection(url: string): { dbname: string; env: Record<string, string> } {
  let password: string | null = null;
  const dbname = editPostgresUrl(url, (u) => {
    password = u.password ? decodeURIComponent(u.password) : u.searchParams.get('password');
    u.password = '';
    u.searchParams.delete('password');
  });
  const env: Record<string, string> = {};
  if (password) {
    registerSecret(password);
    env.PGPASSWORD = password;
  }
  return { dbname, env };
}

export interface ToolRun {
  code: number;
  /** stderr lines starting `<tool>: error:` (scrubbed) */
  errors: string[];
  /** the last stderr lines (scrubbed), for a message when `errors` is empty */
  tail: string[];
}

/**
 * Runs a PostgreSQL client tool; each stderr line goes to `onLine`. Rejects
 * when it cannot be started, and with an InterruptedError when `signal`
 * aborts (Ctrl-C): the tool is stopped then (SIGTERM: its session ends, the
 * server rolls back what it had not committed), and at an abrupt exit too.
 */
export function runTool(
  file: string,
  args: string[],
  env: Record<string, string>,
  onLine: (line: string) => void = () => undefined,
  signal?: AbortSignal,
): Promise<ToolRun> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new InterruptedError(`interrupted (Ctrl-C) before ${basename(file)} started`));
      return;
    }
    const child = spawn(file, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    const forget = stopAtAbruptExit(child);
    const stop = () => child.kill('SIGTERM');
    signal?.addEventListener('abort', stop, { once: true });
    const errors: string[] = [];
    const tail: string[] = [];
    let rest = '';
    const take = (line: string) => {
      const clean = scrub(line);
      if (/^\S+: error:/.test(clean)) errors.push(clean);
      tail.push(clean);
      if (tail.length > 10) tail.shift();
      onLine(clean);
    };
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop() ?? '';
      for (const l of lines) take(l);
    });
    child.on('error', (e) => {
      forget();
      signal?.removeEventListener('abort', stop);
      reject(new UsageError(`cannot run ${file}: ${e.message}; install the PostgreSQL client tools or put them on PATH`));
    });
    child.on('close', (code) => {
      forget();
      signal?.removeEventListener('abort', stop);
      if (rest) take(rest);
      // (a Ctrl-C in a terminal reaches the tool too: it stops on its own, as stopped here)
      if (signal?.aborted) reject(new InterruptedError(`interrupted (Ctrl-C): ${basename(file)} stopped`));
      else resolve({ code: code ?? 1, errors, tail });
    });
  });
}

/** The first problems a tool reported, for an error message. */
export function toolProblems(run: ToolRun): string {
  const lines = run.errors.length ? run.errors : run.tail.filter((l) => l.trim());
  const shown = lines.slice(0, 5).join('\n  ');
  return shown + (lines.length > 5 ? `\n  … and ${lines.length - 5} more` : '');
}
