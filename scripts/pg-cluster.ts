/**
 * A throwaway PostgreSQL cluster, for `npm test`, the reliability campaign and
 * the benchmark: started from the installed server binaries (as the
 * `postgres` user when run as root: the server refuses to run as root) in a
 * temporary directory, listening on a Unix socket only (and on 127.0.0.1 when
 * asked, for a measurement over TCP), never on the network.
 * Each caller passes the settings it needs (`fsync=off` for speed, commit
 * timestamps, a larger lock table, …).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The newest PostgreSQL server binaries: `TIERGATE_TEST_PG_BINDIR`, then
 * `pg_config --bindir`, then /usr/lib/postgresql/N/bin, newest first.
 */
export function findBinDir(): string | null {
  const fromEnv = process.env.TIERGATE_TEST_PG_BINDIR;
  const candidates: string[] = fromEnv ? [fromEnv] : [];
  const fromConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (fromConfig.status === 0) candidates.push(fromConfig.stdout.trim());
  if (existsSync('/usr/lib/postgresql')) {
    const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
    for (const v of versions) candidates.push(`/usr/lib/postgresql/${v}/bin`);
  }
  return candidates.find((d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl'))) ?? null;
}

export const NO_SERVER_BINARIES = 'no PostgreSQL server binaries (pg_config --bindir, /usr/lib/postgresql/*/bin): apt-get install -y postgresql';

const isRoot = () => process.getuid?.() === 0;

/** Runs a server binary as `postgres` when we are root. */
export function asPostgres(cmd: string, args: string[], timeoutMs = 120_000): string {
  const [file, argv] = isRoot() ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  return execFileSync(file, argv, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: timeoutMs });
}

function givePostgres(path: string): void {
  if (isRoot()) execFileSync('chown', ['-R', 'postgres:postgres', path]);
}

export interface ClusterOptions {
  /** the temporary directory is `tiergate-<label>-XXXXXX` */
  label: string;
  /** server settings (`-c name=value`); `listen_addresses` is always empty unless `tcp` */
  settings?: Record<string, string>;
  /** also listen on 127.0.0.1 (trusted, as the socket is): `url(db, user, password, 'tcp')` reaches it */
  tcp?: boolean;
  /** roles that must log in with a password (scram-sha-256); everyone else is trusted */
  passwordRoles?: string[];
  /** start from a copy of this (stopped) data directory instead of initdb */
  copyDataFrom?: string;
  /** the folder the temporary directory is made in (default: the system's temporary folder) */
  parent?: string;
}

export interface Cluster {
  readonly bin: string;
  readonly root: string;
  readonly data: string;
  readonly socket: string;
  readonly port: number;
  readonly log: string;
  /** a URL to a database on this cluster (libpq conventions: the socket in `host`; `via: 'tcp'`: 127.0.0.1, a cluster started with `tcp`), as `postgres` unless `user` is given */
  url(database?: string, user?: string, password?: string, via?: 'socket' | 'tcp'): string;
  /** environment for libpq tools (psql, pg_dump, sqitch) reaching `database` */
  env(database?: string): Record<string, string>;
  /** `pg_ctl restart -m immediate`: every backend dies without a checkpoint, as in a crash */
  restartImmediate(): void;
  /** `fast` waits for sessions to end cleanly; `immediate` (for a throwaway cluster at the end) does not */
  stop(mode?: 'fast' | 'immediate'): void;
  /**
   * Stops the server at once and removes its directory; with `background`,
   * the removal (minutes for gigabytes on a busy disk) is left to a detached
   * `rm -rf` that outlives this process.
   */
  destroy(options?: { background?: boolean }): void;
}

/**
 * Starts a cluster and returns its handle. Synchronous: a global setup or a
 * `beforeAll` calls it once.
 *
 * @example const c = startCluster({ label: 'test', settings: { fsync: 'off' } }); try { … c.url('postgres') … } finally { c.destroy(); }
 */
export function startCluster(options: ClusterOptions): Cluster {
  const bin = findBinDir();
  if (!bin) throw new Error(NO_SERVER_BINARIES);
  const root = mkdtempSync(join(options.parent ?? tmpdir(), `tiergate-${options.label}-`));
  chmodSync(root, 0o755);
  const data = join(root, 'data');
  const socket = join(root, 'sock');
  const log = join(root, 'log');
  mkdirSync(socket);
  if (options.copyDataFrom) {
    cpSync(options.copyDataFrom, data, { recursive: true });
    rmSync(join(data, 'postmaster.pid'), { force: true });
  }
  if (isRoot()) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(root, uid, gid);
    chownSync(socket, uid, gid);
    if (options.copyDataFrom) givePostgres(data);
  }
  if (!options.copyDataFrom) {
    asPostgres(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync']);
  }
  chmodSync(data, 0o700);
  if (options.passwordRoles?.length) {
    const hba = [...options.passwordRoles.map((r) => `local all ${r} scram-sha-256`), 'local all all trust'].join('\n');
    writeFileSync(join(data, 'pg_hba.conf'), `${hba}\n`);
    givePostgres(join(data, 'pg_hba.conf'));
  }

  const port = 20000 + Math.floor(Math.random() * 20000);
  const settings = { ...options.settings, listen_addresses: options.tcp ? '127.0.0.1' : "''" };
  const opts = [`-k ${socket}`, `-p ${port}`, ...Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`)].join(' ');
  const pgCtl = (args: string[]) => asPostgres(join(bin, 'pg_ctl'), ['-D', data, ...args]);
  pgCtl(['-o', opts, '-l', log, '-w', '-t', '60', 'start']);
  let running = true;
  let destroyed = false;

  const cluster: Cluster = {
    bin,
    root,
    data,
    socket,
    port,
    log,
    url(database = 'postgres', user = 'postgres', password?: string, via: 'socket' | 'tcp' = 'socket') {
      const auth = password === undefined ? encodeURIComponent(user) : `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
      if (via === 'tcp') return `postgres://${auth}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
      return `postgres://${auth}@localhost:${port}/${encodeURIComponent(database)}?host=${encodeURIComponent(socket)}`;
    },
    env(database = 'postgres') {
      return { PGHOST: socket, PGPORT: String(port), PGUSER: 'postgres', PGDATABASE: database };
    },
    restartImmediate() {
      pgCtl(['-o', opts, '-l', log, '-m', 'immediate', '-w', '-t', '60', 'restart']);
      running = true;
    },
    stop(mode: 'fast' | 'immediate' = 'fast') {
      if (!running) return;
      try {
        pgCtl(['-m', mode, '-w', '-t', '60', 'stop']);
      } catch {
        try {
          pgCtl(['-m', 'immediate', '-w', 'stop']);
        } catch {
          /* already stopped */
        }
      }
      running = false;
    },
    destroy(how: { background?: boolean } = {}) {
      if (destroyed) return;
      destroyed = true;
      cluster.stop('immediate');
      if (how.background) spawn('rm', ['-rf', root], { detached: true, stdio: 'ignore' }).unref();
      else rmSync(root, { recursive: true, force: true });
    },
  };
  return cluster;
}
