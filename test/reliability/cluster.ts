/**
 * Throwaway PostgreSQL clusters for the reliability campaign: started from
 * the installed server binaries (as the `postgres` user when run as root) in
 * a temporary directory, listening on a Unix socket only — the same approach
 * as test/setup/postgres.ts — but owned by the test that starts them, so a
 * test may restart one (`pg_ctl restart -m immediate`) without disturbing
 * the others.
 *
 * Password roles: `local all all trust` for everyone except the roles named
 * in `passwordRoles`, which must authenticate with scram-sha-256 (the
 * secrets canary needs a password that really travels).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function findBinDir(): string | null {
  const fromEnv = process.env.TIERGATE_TEST_PG_BINDIR;
  const candidates: string[] = fromEnv ? [fromEnv] : [];
  const fromConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (fromConfig.status === 0) candidates.push(fromConfig.stdout.trim());
  if (existsSync('/usr/lib/postgresql')) {
    for (const v of readdirSync('/usr/lib/postgresql').sort().reverse()) candidates.push(`/usr/lib/postgresql/${v}/bin`);
  }
  return candidates.find((d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl'))) ?? null;
}

const isRoot = () => process.getuid?.() === 0;

function asPostgres(cmd: string, args: string[], timeoutMs = 120_000): string {
  const [file, argv] = isRoot() ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  return execFileSync(file, argv, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: timeoutMs });
}

function givePostgres(path: string): void {
  if (!isRoot()) return;
  execFileSync('chown', ['-R', 'postgres:postgres', path]);
}

export interface ClusterOptions {
  /** roles that must log in with a password (scram-sha-256); everyone else is trusted */
  passwordRoles?: string[];
  /** start from a copy of this (stopped) data directory instead of initdb */
  copyDataFrom?: string;
  /** a label for the temporary directory */
  label?: string;
  /**
   * keep synchronous_commit on: a commit the client saw survives
   * `restartImmediate` (fsync stays off: the OS does not crash here)
   */
  durable?: boolean;
}

export interface Cluster {
  readonly bin: string;
  readonly root: string;
  readonly data: string;
  readonly socket: string;
  readonly port: number;
  readonly log: string;
  /** a URL to a database on this cluster, as the superuser `postgres` unless `user` is given */
  url(database?: string, user?: string, password?: string): string;
  /** `pg_ctl restart -m immediate`: every backend dies without a checkpoint, as in a crash */
  restartImmediate(): void;
  /** `fast` waits for sessions to end cleanly; `immediate` (for a throwaway cluster at the end) does not */
  stop(mode?: 'fast' | 'immediate'): void;
  /** stops the server (if running, immediately: it is thrown away) and removes its directory */
  destroy(): void;
}

/**
 * Fast and disposable (no fsync), with commit timestamps: the gate race orders
 * a revocation's commit against a tier's commit with pg_xact_commit_timestamp.
 */
const SERVER_OPTIONS = [
  '-c fsync=off',
  '-c full_page_writes=off',
  '-c max_connections=200',
  "-c listen_addresses=''",
  '-c track_commit_timestamp=on',
];

/**
 * Starts a cluster and returns its handle. Synchronous: a global setup or a
 * `beforeAll` calls it once.
 *
 * @example const c = startCluster({ passwordRoles: ['canary'] }); try { … c.url('postgres') … } finally { c.destroy(); }
 */
export function startCluster(options: ClusterOptions = {}): Cluster {
  const bin = findBinDir();
  if (!bin) throw new Error('no PostgreSQL server binaries (pg_config --bindir, /usr/lib/postgresql/*/bin): apt-get install -y postgresql');
  const root = mkdtempSync(join(tmpdir(), `tiergate-rel-${options.label ?? 'pg'}-`));
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
  const hba = [
    ...(options.passwordRoles ?? []).map((r) => `local all ${r} scram-sha-256`),
    'local all all trust',
  ].join('\n');
  writeFileSync(join(data, 'pg_hba.conf'), hba + '\n');
  givePostgres(join(data, 'pg_hba.conf'));

  const port = 20000 + Math.floor(Math.random() * 20000);
  const opts = [`-k ${socket}`, `-p ${port}`, ...SERVER_OPTIONS, `-c synchronous_commit=${options.durable ? 'on' : 'off'}`].join(' ');
  const pgCtl = (args: string[]) => asPostgres(join(bin, 'pg_ctl'), ['-D', data, ...args]);
  pgCtl(['-o', opts, '-l', log, '-w', '-t', '60', 'start']);
  let running = true;

  return {
    bin,
    root,
    data,
    socket,
    port,
    log,
    url(database = 'postgres', user = 'postgres', password?: string) {
      const auth = password === undefined ? encodeURIComponent(user) : `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
      return `postgres://${auth}@localhost:${port}/${encodeURIComponent(database)}?host=${encodeURIComponent(socket)}`;
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
    destroy() {
      this.stop('immediate');
      rmSync(root, { recursive: true, force: true });
    },
  };
}
