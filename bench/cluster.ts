/**
 * The benchmark's PostgreSQL cluster (`scripts/pg-cluster.ts`), with settings
 * for a benchmark:
 *
 * - fsync, synchronous_commit and full_page_writes OFF: durability is not what
 *   is measured, and without them every figure would mostly be this machine's
 *   disk flush latency. Both sides of every ratio run on the same server.
 * - max_locks_per_transaction = 256: pg_dump locks every table of the source
 *   in one transaction; 6,500 tables (scale 100) exceed the default lock table.
 * - max_wal_size 8 GB, checkpoint_timeout 30 min: no checkpoint in the middle
 *   of a measurement because a template copy filled the WAL.
 * - autovacuum OFF: no background VACUUM or ANALYZE in the middle of a
 *   measurement (runs of the same code read 1.16× to 1.50× at scale 100 with
 *   it on). Statistics are explicit instead: every template is
 *   `VACUUM (FREEZE, ANALYZE)`d when built (its copies inherit them), and the
 *   bundled plan's tiers ANALYZE the tables they write.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { startCluster as startPgCluster, type Cluster as PgCluster } from '../scripts/pg-cluster.js';


export interface Cluster extends Pick<PgCluster, 'bin' | 'socket' | 'port'> {
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
  autovacuum: 'off',
};

/**
 * Starts the cluster; `stop()` (also registered for process exit) stops it
 * and removes its directory.
 *
 * `parent`: where its directory is made (the system's temporary folder by
 * default; `/dev/shm` for a scratch server in memory).
 *
 * @example const c = startCluster(); try { … c.url('postgres') … } finally { c.stop(); }
 */
export function startCluster(options: { label?: string; parent?: string } = {}): Cluster {
  const pg = startPgCluster({ label: options.label ?? 'bench', settings: SETTINGS, parent: options.parent });
  const stop = (options: { background?: boolean } = {}) => pg.destroy(options);
  process.once('exit', () => stop());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      stop();
      process.exit(130);
    });
  }
  const version = execFileSync(join(pg.bin, 'psql'), ['-XAtqc', 'show server_version'], { env: { ...process.env, ...pg.env('postgres') }, encoding: 'utf8' }).trim();
  return {
    bin: pg.bin,
    socket: pg.socket,
    port: pg.port,
    version,
    settings: { ...SETTINGS, listen_addresses: '' },
    url: (db) => pg.url(db),
    env: (db) => pg.env(db),
    stop,
  };
}
