/**
 * A throwaway PostgreSQL cluster for the benchmark, started from the installed
 * server binaries (as the `postgres` user when run as root), in a temporary
 * directory, on a Unix socket only — the approach of test/setup/postgres.ts,
 * with settings for a benchmark:
 *
 * - fsync, synchronous_commit and full_page_writes OFF: durability is not what
 *   is measured, and without them every figure would mostly be this machine's
 *   disk flush latency. Both sides of every ratio run on the same server.
 * - max_locks_per_transaction = 256: pg_dump locks every table of the source
 *   in one transaction; 6,500 tables (scale 100) exceed the default lock table.
 * - max_wal_size 8 GB, checkpoint_timeout 30 min: no checkpoint in the middle
 *   of a measurement because a template copy filled the WAL.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Cluster {
  /** directory of initdb, pg_ctl, psql, pg_dump, pg_restore */
  bin: string;
  socket: string;
  port: number;
  /** server_version, e.g. `15.14 (Debian 15.14-0+deb12u1)` */
  version: string;
  /** the settings the server was started with, for results.json */
  settings: Record<string, string>;
  /** a URL to database `db` (libpq conventions: the socket in `host`) */
  url(db: string): string;
  /** environment for libpq tools (psql, pg_dump, sqitch) reaching database `db` */
  env(db: string): Record<string, string>;
  /**
   * Stops the server and removes its directory; with `background`, the
   * removal (minutes for the gigabytes of scale 1000 on a busy disk) is left
   * to a detached `rm -rf` that outlives the benchmark.
   */
  stop(options?: { background?: boolean }): void;
}

export const SETTINGS: Record<string, string> = {
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
  max_locks_per_transaction: '256',
  max_connections: '50',
  shared_buffers: '256MB',
  max_wal_size: '8GB',
  checkpoint_timeout: '30min',
  listen_addresses: "''",
};

/** The newest PostgreSQL server binaries: `pg_config --bindir`, then /usr/lib/postgresql/N/bin. */
export function findBinDir(): string | null {
  const candidates: string[] = [];
  const fromConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (fromConfig.status === 0) candidates.push(fromConfig.stdout.trim());
  if (existsSync('/usr/lib/postgresql')) {
    const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
    for (const v of versions) candidates.push(`/usr/lib/postgresql/${v}/bin`);
  }
  return candidates.find((d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl'))) ?? null;
}

const isRoot = () => process.getuid?.() === 0;

function asPostgres(cmd: string, args: string[]): string {
  const [file, argv] = isRoot() ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  return execFileSync(file, argv, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
}

/**
 * Starts a cluster; `stop()` (also registered for process exit) stops it
 * and removes its directory.
 *
 * @example const c = startCluster(); try { … c.url('postgres') … } finally { c.stop(); }
 */
export function startCluster(): Cluster {
  const bin = findBinDir();
  if (!bin) throw new Error('no PostgreSQL server binaries (pg_config --bindir, /usr/lib/postgresql/*/bin): apt-get install -y postgresql');
  const root = mkdtempSync(join(tmpdir(), 'tiergate-bench-'));
  chmodSync(root, 0o755);
  const data = join(root, 'data');
  const socket = join(root, 'sock');
  mkdirSync(socket);
  if (isRoot()) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(root, uid, gid);
    chownSync(socket, uid, gid);
  }
  asPostgres(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync']);
  const port = 20000 + Math.floor(Math.random() * 20000);
  const opts = [`-k ${socket}`, `-p ${port}`, ...Object.entries(SETTINGS).map(([k, v]) => `-c ${k}=${v}`)];
  asPostgres(join(bin, 'pg_ctl'), ['-D', data, '-o', opts.join(' '), '-l', join(root, 'log'), '-w', '-t', '60', 'start']);
  let stopped = false;
  const stop = (options: { background?: boolean } = {}) => {
    if (stopped) return;
    stopped = true;
    try {
      asPostgres(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } catch {
      /* already stopped */
    }
    if (options.background) spawn('rm', ['-rf', root], { detached: true, stdio: 'ignore' }).unref();
    else rmSync(root, { recursive: true, force: true });
  };
  process.once('exit', () => stop());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      stop();
      process.exit(130);
    });
  }
  const env = (db: string) => ({ PGHOST: socket, PGPORT: String(port), PGUSER: 'postgres', PGDATABASE: db });
  const version = execFileSync(join(bin, 'psql'), ['-XAtqc', 'show server_version'], { env: { ...process.env, ...env('postgres') }, encoding: 'utf8' }).trim();
  return {
    bin,
    socket,
    port,
    version,
    settings: { ...SETTINGS, listen_addresses: '' },
    url: (db) => `postgres://postgres@localhost:${port}/${encodeURIComponent(db)}?host=${encodeURIComponent(socket)}`,
    env,
    stop,
  };
}
