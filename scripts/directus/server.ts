/**
 * A throwaway Directus 11 on a throwaway PostgreSQL database, for building the
 * real-Directus fixture (`build-fixture.ts`) and for checking facts against a
 * live server (`check-approvals.ts`). Not used by `npm test`.
 *
 *   const d = await startDirectus();            // a new cluster (scripts/pg-cluster.ts), a new database
 *   const token = await d.login(d.admin.email, d.admin.password);
 *   const api = d.api(token);
 *   await api.post('/collections', { collection: 'books', schema: {}, meta: {}, fields: [...] });
 *   await d.stop();                             // kills the process group, drops the database, stops the cluster
 *
 * Offline: telemetry off, no extensions, no marketplace, no project owner
 * (nothing is sent anywhere); a fresh working directory so that no `.env` is
 * read; uploads, temp files and the log live in that directory.
 *
 * The database is reached over a Unix socket. Checked with Directus's own
 * knex + pg: `DB_HOST=<socket directory>` + `DB_PORT` works, and so does a
 * `DB_CONNECTION_STRING` of the form `postgres://user@localhost:PORT/db?host=/socket/dir`
 * (what `Cluster.url()` returns: `?host=` overrides the host, the port comes
 * from the authority); `postgres://user@/db?host=/socket/dir&port=PORT` does
 * NOT (pg ignores `?port=` and dials 127.0.0.1:5432). We pass the split
 * `DB_*` variables (booted that way), which work for TCP and sockets alike.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startCluster, type Cluster } from '../pg-cluster.js';
import { ensureDirectus, type DirectusInstall } from './install.js';

export interface ApiResponse<T = any> {
  status: number;
  body: T;
}

export interface Api {
  get<T = any>(path: string, query?: Record<string, string | number | boolean>): Promise<ApiResponse<T>>;
  post<T = any>(path: string, body?: unknown): Promise<ApiResponse<T>>;
  patch<T = any>(path: string, body?: unknown): Promise<ApiResponse<T>>;
  delete<T = any>(path: string, body?: unknown): Promise<ApiResponse<T>>;
  /** a multipart upload to POST /files */
  upload<T = any>(file: { name: string; type: string; data: Uint8Array | string }, fields?: Record<string, string>): Promise<ApiResponse<T>>;
}

export interface DirectusOptions {
  /** a PostgreSQL server URL where we may CREATE DATABASE; without it a throwaway cluster is started */
  serverUrl?: string;
  /** the database to create (default `directus_<random>`); it must not exist */
  database?: string;
  admin?: { email: string; password: string };
  /** extra environment for Directus (e.g. `{ CACHE_SCHEMA: 'false' }`) */
  env?: Record<string, string>;
  /** a plain SQL dump loaded (psql -v ON_ERROR_STOP=1 -f) into the new database before `directus bootstrap`, e.g. test/fixtures/directus-real/directus-11.sql: bootstrap then only checks migrations and creates no admin */
  initSql?: string;
  /** keep the database (and the cluster) after stop(); default false */
  keepDatabase?: boolean;
  /** echo the Directus log to stderr */
  verbose?: boolean;
  log?: (s: string) => void;
}

export interface DirectusServer {
  /** http://127.0.0.1:PORT */
  url: string;
  /** a libpq URL of the Directus database */
  database: string;
  /** the database name */
  databaseName: string;
  /** the cluster we started, if any */
  cluster: Cluster | null;
  install: DirectusInstall;
  admin: { email: string; password: string };
  /** the environment Directus runs with */
  env: Record<string, string>;
  /** its log file */
  logFile: string;
  /** timings in ms */
  timings: { install: number; bootstrap: number; start: number };
  /** POST /auth/login → access token (throws on failure) */
  login(email: string, password: string): Promise<string>;
  /** POST /auth/login → the raw response */
  tryLogin(email: string, password: string): Promise<ApiResponse>;
  api(token?: string): Api;
  /** a pg client on the Directus database (caller ends it) */
  sql(): Promise<pg.Client>;
  /** stops Directus and starts it again on the same database (a fresh schema cache) */
  restart(env?: Record<string, string>): Promise<void>;
  /** stops the Directus process only: the database (and cluster) stay until stop() */
  halt(): Promise<void>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return await new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

/** The parts of a libpq URL (with `?host=` for a socket) Directus needs. */
export function pgParts(url: string): { host: string; port: string; user: string; password: string; database: string } {
  const u = new URL(url);
  return {
    host: u.searchParams.get('host') ?? (decodeURIComponent(u.hostname) || 'localhost'),
    port: u.port || '5432',
    user: decodeURIComponent(u.username) || process.env.PGUSER || 'postgres',
    password: decodeURIComponent(u.password) || process.env.PGPASSWORD || '',
    database: decodeURIComponent(u.pathname.replace(/^\//, '')) || 'postgres',
  };
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

export function makeApi(baseUrl: string, token?: string): Api {
  const call = async (method: string, path: string, body?: unknown, query?: Record<string, string | number | boolean>): Promise<ApiResponse> => {
    const u = new URL(path, baseUrl);
    for (const [k, v] of Object.entries(query ?? {})) u.searchParams.set(k, String(v));
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    let payload: string | FormData | undefined;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    const res = await fetch(u, { method, headers, body: payload });
    const text = await res.text();
    let parsed: unknown = text;
    if (text && (res.headers.get('content-type') ?? '').includes('json')) {
      try {
        parsed = JSON.parse(text);
      } catch {
        /* keep the text */
      }
    } else if (!text) parsed = null;
    return { status: res.status, body: parsed };
  };
  return {
    get: (path, query) => call('GET', path, undefined, query),
    post: (path, body) => call('POST', path, body),
    patch: (path, body) => call('PATCH', path, body),
    delete: (path, body) => call('DELETE', path, body),
    upload: (file, fields = {}) => {
      const form = new FormData();
      for (const [k, v] of Object.entries(fields)) form.append(k, v);
      const bytes = typeof file.data === 'string' ? new TextEncoder().encode(file.data) : file.data;
      const data = new Uint8Array(bytes.byteLength);
      data.set(bytes);
      form.append('file', new Blob([data], { type: file.type }), file.name);
      return call('POST', '/files', form);
    },
  };
}

/** Throws unless the status is 2xx; returns `body.data` (or the body). */
export function ok<T = any>(res: ApiResponse, what: string): T {
  if (res.status < 200 || res.status > 299) {
    throw new Error(`${what}: HTTP ${res.status} ${typeof res.body === 'string' ? res.body : JSON.stringify(res.body)}`);
  }
  const b = res.body as { data?: T } | null;
  return (b && typeof b === 'object' && 'data' in b ? b.data : b) as T;
}

// ---- REST helpers (all through the API) -------------------------------------------------------

/** POST /collections (a folder when `schema` is null; `fields` may hold the table's fields) */
export const createCollection = async (api: Api, payload: Record<string, unknown>) => ok(await api.post('/collections', payload), `create collection ${String(payload.collection)}`);
/** POST /fields/{collection} */
export const createField = async (api: Api, collection: string, payload: Record<string, unknown>) =>
  ok(await api.post(`/fields/${collection}`, payload), `create field ${collection}.${String(payload.field)}`);
/** POST /relations */
export const createRelation = async (api: Api, payload: Record<string, unknown>) =>
  ok(await api.post('/relations', payload), `create relation ${String(payload.collection)}.${String(payload.field)}`);
/** POST /users */
export const createUser = async (api: Api, payload: Record<string, unknown>) => ok(await api.post('/users', payload), `create user ${String(payload.email)}`);
/** POST /roles */
export const createRole = async (api: Api, payload: Record<string, unknown>) => ok(await api.post('/roles', payload), `create role ${String(payload.name)}`);
/** POST /policies */
export const createPolicy = async (api: Api, payload: Record<string, unknown>) => ok(await api.post('/policies', payload), `create policy ${String(payload.name)}`);
/** POST /permissions (one row or an array) */
export const createPermissions = async (api: Api, payload: Record<string, unknown> | Record<string, unknown>[]) => ok(await api.post('/permissions', payload), 'create permissions');
/** POST /access: attaches a policy to a role or to a user (a `directus_access` row) */
export const attachAccess = async (api: Api, payload: { policy: string; role?: string | null; user?: string | null; sort?: number }) =>
  ok(await api.post('/access', payload), `attach policy ${payload.policy} to ${payload.role ? `role ${payload.role}` : `user ${String(payload.user)}`}`);
/** POST /items/{collection} (one item or an array) */
export const createItems = async (api: Api, collection: string, payload: unknown) => ok(await api.post(`/items/${collection}`, payload), `create items in ${collection}`);

// ---- the server ------------------------------------------------------------------------------------

/**
 * Boots Directus on a new database: installs Directus if needed, creates the
 * database, `directus bootstrap`, `directus start`, waits for /server/health.
 */
export async function startDirectus(options: DirectusOptions = {}): Promise<DirectusServer> {
  const log = options.log ?? ((s: string) => process.stderr.write(`[directus] ${s}\n`));
  const t0 = Date.now();
  const install = ensureDirectus({ log });
  const tInstall = Date.now() - t0;
  const admin = options.admin ?? { email: 'admin@example.com', password: 'tiergate-admin' };
  const work = mkdtempSync(join(tmpdir(), 'tiergate-directus-'));
  const cleanups: (() => Promise<void> | void)[] = [() => rmSync(work, { recursive: true, force: true })];
  let cluster: Cluster | null = null;
  let child: ChildProcess | null = null;

  const stopChild = async () => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null || c.signalCode !== null || c.pid === undefined) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    try {
      process.kill(-c.pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10_000).unref());
    if ((await Promise.race([exited, timer])) === 'timeout') {
      try {
        process.kill(-c.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      await exited;
    }
  };
  const cleanup = async () => {
    await stopChild();
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (e) {
        log(`cleanup: ${(e as Error).message}`);
      }
    }
    cleanups.length = 0;
  };

  try {
    let serverUrl = options.serverUrl;
    if (!serverUrl) {
      cluster = startCluster({ label: 'directus', settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', max_connections: '50' } });
      const c = cluster;
      cleanups.push(() => {
        if (!options.keepDatabase) c.destroy();
        else c.stop();
      });
      serverUrl = cluster.url('postgres');
    }
    const databaseName = options.database ?? `directus_${randomBytes(4).toString('hex')}`;
    const admin_ = new pg.Client({ connectionString: serverUrl });
    await admin_.connect();
    try {
      await admin_.query(`CREATE DATABASE "${databaseName.replace(/"/g, '""')}"`);
    } finally {
      await admin_.end();
    }
    if (!options.keepDatabase && !cluster) {
      const url = serverUrl;
      cleanups.push(async () => {
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        try {
          await c.query(`DROP DATABASE IF EXISTS "${databaseName.replace(/"/g, '""')}" WITH (FORCE)`);
        } finally {
          await c.end();
        }
      });
    }
    const database = withDatabase(serverUrl, databaseName);
    if (options.initSql) {
      const psql = cluster ? join(cluster.bin, 'psql') : 'psql';
      const load = spawnSync(psql, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', options.initSql, `--dbname=${database}`], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
      if (load.status !== 0) throw new Error(`loading ${options.initSql} failed: ${load.stderr}`);
    }
    const parts = pgParts(database);
    const port = await freePort();
    for (const d of ['uploads', 'extensions', 'tmp', 'templates', 'migrations']) mkdirSync(join(work, d));
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? work,
      NODE_ENV: 'production',
      CONFIG_PATH: join(work, 'no.env'),
      DB_CLIENT: 'pg',
      DB_HOST: parts.host,
      DB_PORT: parts.port,
      DB_DATABASE: parts.database,
      DB_USER: parts.user,
      ...(parts.password ? { DB_PASSWORD: parts.password } : {}),
      KEY: randomBytes(16).toString('hex'),
      SECRET: randomBytes(32).toString('hex'),
      ADMIN_EMAIL: admin.email,
      ADMIN_PASSWORD: admin.password,
      PROJECT_NAME: 'tiergate fixture',
      HOST: '127.0.0.1',
      PORT: String(port),
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      TELEMETRY: 'false',
      MARKETPLACE_TRUST: 'sandbox',
      EXTENSIONS_PATH: join(work, 'extensions'),
      EXTENSIONS_AUTO_RELOAD: 'false',
      MIGRATIONS_PATH: join(work, 'migrations'),
      EMAIL_TEMPLATES_PATH: join(work, 'templates'),
      TEMP_PATH: join(work, 'tmp'),
      STORAGE_LOCATIONS: 'local',
      STORAGE_LOCAL_ROOT: join(work, 'uploads'),
      EMAIL_TRANSPORT: 'sendmail',
      EMAIL_VERIFY_SETUP: 'false',
      ACCESS_TOKEN_TTL: '1d',
      LOGIN_STALL_TIME: '0',
      RATE_LIMITER_ENABLED: 'false',
      PRESSURE_LIMITER_ENABLED: 'false',
      WEBSOCKETS_ENABLED: 'false',
      MCP_ENABLED: 'false',
      AI_ENABLED: 'false',
      LOG_LEVEL: 'info',
      LOG_STYLE: 'raw',
      ...options.env,
    };
    const logFile = join(work, 'directus.log');

    const tb = Date.now();
    const boot = spawnSync(install.bin, ['bootstrap'], { cwd: work, env, encoding: 'utf8', timeout: 300_000 });
    if (boot.status !== 0) throw new Error(`directus bootstrap failed (${boot.status}):\n${boot.stdout}\n${boot.stderr}`);
    const tBootstrap = Date.now() - tb;
    const url = `http://127.0.0.1:${port}`;

    const launch = async (extraEnv: Record<string, string> = {}) => {
      const out = createWriteStream(logFile, { flags: 'a' });
      const c = spawn(install.bin, ['start'], { cwd: work, env: { ...env, ...extraEnv }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      child = c;
      c.stdout?.pipe(out);
      c.stderr?.pipe(out);
      if (options.verbose) {
        c.stdout?.pipe(process.stderr);
        c.stderr?.pipe(process.stderr);
      }
      const deadline = Date.now() + 180_000;
      for (;;) {
        if (c.exitCode !== null || c.signalCode !== null) {
          throw new Error(`directus start exited (${c.exitCode ?? c.signalCode}):\n${readFileSync(logFile, 'utf8').slice(-4000)}`);
        }
        try {
          const res = await fetch(`${url}/server/health`);
          if (res.ok) {
            await res.text();
            break;
          }
        } catch {
          /* not listening yet */
        }
        if (Date.now() > deadline) throw new Error(`directus did not become healthy in 180 s:\n${readFileSync(logFile, 'utf8').slice(-4000)}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    };
    const ts = Date.now();
    await launch();
    const tStart = Date.now() - ts;

    const tryLogin = async (email: string, password: string) => makeApi(url).post('/auth/login', { email, password });
    const server: DirectusServer = {
      url,
      database,
      databaseName,
      cluster,
      install,
      admin,
      env,
      logFile,
      timings: { install: tInstall, bootstrap: tBootstrap, start: tStart },
      tryLogin,
      async login(email, password) {
        const res = await tryLogin(email, password);
        return ok<{ access_token: string }>(res, `login ${email}`).access_token;
      },
      api: (token) => makeApi(url, token),
      async sql() {
        const c = new pg.Client({ connectionString: database });
        await c.connect();
        return c;
      },
      async restart(extraEnv = {}) {
        await stopChild();
        await launch(extraEnv);
      },
      async halt() {
        await stopChild();
      },
      async stop() {
        await cleanup();
      },
    };
    return server;
  } catch (e) {
    if (existsSync(join(work, 'directus.log'))) log(readFileSync(join(work, 'directus.log'), 'utf8').slice(-3000));
    await cleanup();
    throw e;
  }
}

/** Runs `fn` with a fresh Directus and always stops it (also on SIGINT/SIGTERM). */
export async function withDirectus<T>(options: DirectusOptions, fn: (d: DirectusServer) => Promise<T>): Promise<T> {
  const d = await startDirectus(options);
  const onSignal = () => {
    void d.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await fn(d);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await d.stop();
  }
}
