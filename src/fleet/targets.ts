/**
 * A fleet's targets file (`tiergate fleet … --targets fleet.yaml`): the
 * databases, their labels, the waves and the concurrency limits. Read with
 * the guarded reader, validated with paths in every message, and turned into
 * waves of named targets. Passwords never leave this module in a printable
 * form: a target keeps its URL as written (for the connection) and a
 * redacted one (for everything shown or stored).
 */
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { NO_PASSWORD_GIVEN, UsageError } from '../errors.js';
import { parseTarget } from '../db/open-db.js';
import { editPostgresUrl, isPostgresUrl, NO_HOST, parsePostgresUrl } from '../db/pg-url.js';
import { readRegularFile } from '../safe-read.js';
import { redactUrl, registerSecret, withPassword } from '../secrets.js';

export interface FleetTarget {
  name: string;
  /** the URL to connect with (password included when the file or its variable gives one): never printed */
  url: string;
  /** the URL for display and for the control database: no password */
  shown: string;
  /** the database server it lives on (`host:port`, a socket folder, or a PGlite folder): the key of the per-server limit */
  server: string;
  /** where the target's password comes from when it is not in the URL: an environment variable each worker must have */
  passwordEnv: string | null;
  labels: Record<string, string>;
}

export interface WaveRule {
  name: string;
  /** failed targets the wave may have and still succeed (default 0: the first failure fails it) */
  failureBudget: number;
  /** stop: once the budget is exceeded no further target of the wave starts; continue: the wave's other targets still run. Either way no later wave starts. */
  onError: 'stop' | 'continue';
  /** report: a target whose gate is closed is NO-GO and does not count as a failure; fail: it does */
  noGo: 'report' | 'fail';
}

export interface FleetWave extends WaveRule {
  index: number;
  targets: FleetTarget[];
}

export interface FleetSpec {
  /** the targets file, absolute */
  file: string;
  /** sha256 of the targets (names, shown URLs, labels) and waves: the rollout's identity with the plan */
  sha256: string;
  waves: FleetWave[];
  targets: FleetTarget[];
  concurrency: { total: number; perServer: number };
  scratch: string | null;
  /** plan: every target must be the plan's `database:` (or a clone of it); from_targets: the plan is for the databases this file lists, whatever their names */
  planDatabase: 'plan' | 'from_targets';
}

interface RawWave {
  name?: unknown;
  count?: unknown;
  percent?: unknown;
  labels?: unknown;
  failure_budget?: unknown;
  on_error?: unknown;
  no_go?: unknown;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const TOP_KEYS = new Set(['targets', 'inventory', 'waves', 'concurrency', 'scratch', 'plan_database']);
const TARGET_KEYS = new Set(['name', 'url', 'connection', 'password_env', 'labels']);
const CONNECTION_KEYS = new Set(['host', 'port', 'user', 'database', 'sslmode']);
const WAVE_KEYS = new Set(['name', 'count', 'percent', 'labels', 'failure_budget', 'on_error', 'no_go']);

/** One target as the file (or an inventory row) gives it, before its URL is built. */
export interface TargetEntry {
  name: unknown;
  url?: unknown;
  connection?: unknown;
  password_env?: unknown;
  labels?: unknown;
}

/** The parsed file, before an inventory is queried. */
export interface FleetFile {
  file: string;
  entries: TargetEntry[] | null;
  inventory: { url: string; query: string } | null;
  waves: RawWave[];
  concurrency: { total: number; perServer: number };
  scratch: string | null;
  planDatabase: 'plan' | 'from_targets';
  /** what is wrong at the top level: reported with the targets' own problems (every problem at once) */
  problems: string[];
}

class Problems {
  constructor(readonly list: string[] = []) {}
  add(path: string, message: string): void {
    this.list.push(`${path}: ${message}`);
  }
  throwIfAny(file: string): void {
    if (this.list.length) {
      throw new UsageError(`targets file '${file}' is invalid (${this.list.length} problem${this.list.length === 1 ? '' : 's'}):\n${this.list.map((p) => `  - ${p}`).join('\n')}`);
    }
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function unknownKeys(p: Problems, path: string, value: Record<string, unknown>, known: Set<string>): void {
  for (const k of Object.keys(value)) if (!known.has(k)) p.add(`${path}.${k}`.replace(/^\./, ''), `unknown key (known: ${[...known].join(', ')})`);
}

function wholeNumber(p: Problems, path: string, v: unknown, min: number, max: number): number | null {
  if (v === undefined) return null;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    p.add(path, `must be a whole number from ${min} to ${max} (got ${JSON.stringify(v)})`);
    return null;
  }
  return v;
}

/**
 * Reads and validates a targets file. Every problem is listed with its path
 * (`targets[3].url`, `waves[1].percent`); nothing connects yet.
 *
 * @example const f = readFleetFile('fleet.yaml'); const spec = await resolveFleet(f);
 */
export async function readFleetFile(path: string): Promise<FleetFile> {
  const file = resolve(path);
  const bytes = readRegularFile(file, 'fleet');
  if ('reason' in bytes) throw new UsageError(`targets file '${path}' ${bytes.reason}: pass a YAML file listing the targets (README: Fleet)`);
  const YAML = await import('yaml');
  let doc: unknown;
  try {
    doc = YAML.parse(bytes.toString('utf8'), { maxAliasCount: 100 });
  } catch (e) {
    throw new UsageError(`targets file '${path}' is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  const p = new Problems();
  if (!isObject(doc)) {
    p.add('(file)', 'must be a mapping with targets: (or inventory:) and optionally waves:, concurrency:, scratch:');
    p.throwIfAny(path);
  }
  const top = doc as Record<string, unknown>;
  unknownKeys(p, '', top, TOP_KEYS);

  let entries: TargetEntry[] | null = null;
  let inventory: FleetFile['inventory'] = null;
  if (top.targets !== undefined && top.inventory !== undefined) p.add('targets', 'give either targets: or inventory:, not both');
  if (top.targets === undefined && top.inventory === undefined) p.add('targets', 'missing: list the targets (name and url), or give inventory: {url, query}');
  if (top.targets !== undefined) {
    if (!Array.isArray(top.targets) || top.targets.length === 0) p.add('targets', 'must be a non-empty list of targets');
    else entries = top.targets.map((t, i) => (isObject(t) ? (t as unknown as TargetEntry) : (p.add(`targets[${i}]`, 'must be a mapping with name and url'), { name: null })));
  }
  if (top.inventory !== undefined) {
    const inv = top.inventory;
    if (!isObject(inv) || typeof inv.url !== 'string' || typeof inv.query !== 'string') p.add('inventory', 'must be {url: postgres://…, query: select name, url, … from …}');
    else {
      unknownKeys(p, 'inventory', inv, new Set(['url', 'query']));
      inventory = { url: inv.url, query: inv.query };
    }
  }

  let waves: RawWave[] = [{ name: 'all' }];
  if (top.waves !== undefined) {
    if (!Array.isArray(top.waves) || top.waves.length === 0) p.add('waves', 'must be a non-empty list of waves');
    else waves = top.waves.map((w, i) => (isObject(w) ? (unknownKeys(p, `waves[${i}]`, w, WAVE_KEYS), w as RawWave) : (p.add(`waves[${i}]`, 'must be a mapping'), {})));
  }

  const concurrency = { total: 4, perServer: 2 };
  if (top.concurrency !== undefined) {
    if (!isObject(top.concurrency)) p.add('concurrency', 'must be {total: N, per_server: M}');
    else {
      unknownKeys(p, 'concurrency', top.concurrency, new Set(['total', 'per_server']));
      concurrency.total = wholeNumber(p, 'concurrency.total', top.concurrency.total, 1, 256) ?? concurrency.total;
      concurrency.perServer = wholeNumber(p, 'concurrency.per_server', top.concurrency.per_server, 1, 64) ?? concurrency.perServer;
    }
  }
  let scratch: string | null = null;
  if (top.scratch !== undefined) {
    if (typeof top.scratch !== 'string' || !isPostgresUrl(top.scratch)) p.add('scratch', 'must be a postgres:// URL of a server where tiergate may create and drop clone databases');
    else scratch = top.scratch;
  }
  const planDatabase = top.plan_database === undefined ? 'plan' : top.plan_database;
  if (planDatabase !== 'plan' && planDatabase !== 'from_targets') p.add('plan_database', `must be plan (each target must be the plan's database:) or from_targets (the plan is for the databases listed here, whatever their names); got ${JSON.stringify(planDatabase)}`);
  // an inventory is queried only from a file without problems; listed targets are checked with the rest
  if (!entries) p.throwIfAny(path);
  return { file, entries, inventory, waves, concurrency, scratch, planDatabase: planDatabase as FleetFile['planDatabase'], problems: p.list };
}

/**
 * The fleet: the targets (from the file, or from its inventory query), each
 * with its connection, server and labels, and the waves they fall into.
 */
export async function resolveFleet(f: FleetFile): Promise<FleetSpec> {
  const entries = f.entries ?? (await queryInventory(f));
  const p = new Problems([...f.problems]);
  const base = f.entries ? 'targets' : 'inventory row';
  const targets: FleetTarget[] = [];
  // names and databases seen: each problem of every entry is said, whatever else is wrong with it
  const seen = new Set<string>();
  const databases = new Map<string, FleetTarget>();
  // the labels of the entries refused for their own problems (see assignWaves)
  const refusedLabels: Record<string, string>[] = [];
  entries.forEach((e, i) => {
    const named = isObject(e) && typeof e.name === 'string' ? e.name : null;
    if (named !== null && seen.has(named)) p.add(`${base}[${i}].name`, `'${named}' is named twice: a target's name is its key in the ledger of the fleet`);
    if (named !== null) seen.add(named);
    const t = targetOf(p, `${base}[${i}]`, e, Boolean(f.entries));
    if (!t) {
      const labels = isObject(e) && isObject(e.labels) ? e.labels : {};
      refusedLabels.push(Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, String(v)])));
      return;
    }
    const database = databaseOf(t.url);
    const other = databases.get(database);
    if (other) p.add(`${base}[${i}].url`, `the same database as target '${other.name}' (${database}${t.shown === other.shown ? '' : `, under another URL: ${t.shown}`}): a database is one target (it would be rolled out twice at once)`);
    else databases.set(database, t);
    targets.push(t);
  });
  const waves = assignWaves(f.waves, targets, p, refusedLabels);
  p.throwIfAny(f.file);
  const canonical = JSON.stringify({
    targets: targets.map((t) => [t.name, t.shown, t.labels]),
    waves: waves.map((w) => [w.name, w.targets.map((t) => t.name), w.failureBudget, w.onError, w.noGo]),
    planDatabase: f.planDatabase,
  });
  return { file: f.file, sha256: createHash('sha256').update(canonical).digest('hex'), waves, targets, concurrency: f.concurrency, scratch: f.scratch, planDatabase: f.planDatabase };
}

function targetOf(p: Problems, path: string, e: TargetEntry, strictKeys: boolean): FleetTarget | null {
  if (strictKeys && isObject(e)) unknownKeys(p, path, e as Record<string, unknown>, TARGET_KEYS);
  const name = typeof e.name === 'string' ? e.name : null;
  // (a bad name does not hide the entry's other problems: they are all said, and the entry is left out)
  const badName = !name || !NAME.test(name);
  if (badName) p.add(`${path}.name`, `must be a name of letters, digits, '.', '_' or '-' (at most 63; got ${JSON.stringify(e.name ?? null)})`);
  const passwordEnv = e.password_env === undefined || e.password_env === null ? null : String(e.password_env);
  if (passwordEnv !== null && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(passwordEnv)) p.add(`${path}.password_env`, 'must name an environment variable');
  let url: string | null = null;
  if (e.url !== undefined && e.connection !== undefined) p.add(path, 'give either url or connection, not both');
  else if (typeof e.url === 'string') url = e.url;
  else if (isObject(e.connection)) url = connectionUrl(p, `${path}.connection`, e.connection);
  else {
    p.add(`${path}.url`, 'missing: give url: postgres://user@host:port/database (or pglite:DIR), or connection: {host, port, user, database}');
    return null;
  }
  if (!url) return null;
  try {
    const parsed = parseTarget(url);
    if (parsed.kind === 'pglite' && !parsed.dir) throw new UsageError('an in-memory PGlite database cannot be a fleet target: give pglite:DIR');
  } catch (err) {
    p.add(`${path}.url`, (err as Error).message);
    return null;
  }
  if (badName) return null;
  if (passwordEnv && isPostgresUrl(url)) {
    const password = process.env[passwordEnv];
    if (password) {
      registerSecret(password);
      url = withPassword(url, password);
    }
  }
  const labels: Record<string, string> = {};
  if (e.labels !== undefined && e.labels !== null) {
    if (!isObject(e.labels)) p.add(`${path}.labels`, 'must be a mapping of label: value');
    else for (const [k, v] of Object.entries(e.labels)) labels[k] = String(v);
  }
  return { name: name!, url, shown: withoutPassword(url), server: serverOf(url), passwordEnv, labels };
}

function connectionUrl(p: Problems, path: string, c: Record<string, unknown>): string | null {
  unknownKeys(p, path, c, CONNECTION_KEYS);
  const host = c.host === undefined ? process.env.PGHOST ?? 'localhost' : String(c.host);
  const port = c.port === undefined ? process.env.PGPORT ?? '5432' : String(c.port);
  const user = c.user === undefined ? process.env.PGUSER ?? '' : String(c.user);
  const database = c.database === undefined ? null : String(c.database);
  if (!database) {
    p.add(`${path}.database`, 'missing: the database to roll out to');
    return null;
  }
  const socket = host.startsWith('/');
  const auth = user ? `${encodeURIComponent(user)}@` : '';
  const params = new URLSearchParams();
  if (socket) params.set('host', host);
  if (socket) params.set('port', port);
  if (c.sslmode !== undefined) params.set('sslmode', String(c.sslmode));
  const query = params.size ? `?${params}` : '';
  return socket ? `postgres://${auth}/${encodeURIComponent(database)}${query}` : `postgres://${auth}${host}:${port}/${encodeURIComponent(database)}${query}`;
}

/** The URL without its password (nothing to redact, nothing to store). */
export function withoutPassword(url: string): string {
  if (!isPostgresUrl(url)) return url;
  redactUrl(url); // registers the password as a secret
  return editPostgresUrl(url, (u) => {
    u.password = '';
    u.searchParams.delete('password');
  });
}

/**
 * The server a target lives on: host and port (PG* defaults filled), a
 * socket folder and port, or a PGlite folder. This machine's loopback
 * names (`localhost`, `127.0.0.1`, `::1`) are one host: the same server.
 */
export function serverOf(url: string): string {
  if (!isPostgresUrl(url)) {
    const t = parseTarget(url);
    return `pglite:${t.kind === 'pglite' && t.dir ? resolve(t.dir) : url}`;
  }
  const u = parsePostgresUrl(url)!;
  const hostname = u.hostname === NO_HOST ? '' : decodeURIComponent(u.hostname);
  const host = u.searchParams.get('host') ?? (hostname || process.env.PGHOST || 'localhost');
  const port = u.searchParams.get('port') ?? (u.port || process.env.PGPORT || '5432');
  // a socket folder is a path (its case counts); a host name is not
  if (host.startsWith('/')) return `${host.replace(/\/+$/, '')}:${port}`;
  return `${LOOPBACK.test(host.toLowerCase()) ? 'localhost' : host.toLowerCase()}:${port}`;
}

/** A name of this machine's loopback interface. */
const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|::1|\[::1\]|0:0:0:0:0:0:0:1)$/;

/**
 * The database a target is, whoever connects to it: its server (serverOf)
 * and the database's name (the URL's, else PGDATABASE, else the user's
 * name, as libpq picks it), or its PGlite folder. Two targets with the same
 * one are one database under two URLs (another user, `localhost` for
 * `127.0.0.1`).
 */
export function databaseOf(url: string): string {
  if (!isPostgresUrl(url)) return serverOf(url);
  const u = parsePostgresUrl(url)!;
  const named = decodeURIComponent(u.pathname.replace(/^\//, ''));
  const user = decodeURIComponent(u.username) || u.searchParams.get('user') || process.env.PGUSER || '';
  return `${serverOf(url)}/${named || u.searchParams.get('dbname') || process.env.PGDATABASE || user}`;
}

/**
 * Waves in file order, each taking from the targets no earlier wave took:
 * those whose labels match `labels` (all of them), then the first `count`, or
 * `percent` of the whole fleet (rounded up, at least one); a wave with no
 * selector takes the rest. A target in no wave is a problem, so is a wave
 * that selects nothing — unless an entry refused for problems of its own
 * (`refused`, their labels) is one it could have taken.
 */
export function assignWaves(raw: RawWave[], targets: FleetTarget[], p: Problems = new Problems(), refused: Record<string, string>[] = []): FleetWave[] {
  let pool = [...targets];
  const waves: FleetWave[] = [];
  const names = new Set<string>();
  raw.forEach((w, i) => {
    const path = `waves[${i}]`;
    const name = typeof w.name === 'string' && NAME.test(w.name) ? w.name : null;
    if (!name) p.add(`${path}.name`, `must be a name of letters, digits, '.', '_' or '-' (got ${JSON.stringify(w.name ?? null)})`);
    else if (names.has(name)) p.add(`${path}.name`, `'${name}' is named twice`);
    if (name) names.add(name);
    const count = wholeNumber(p, `${path}.count`, w.count, 1, 1_000_000);
    let percent: number | null = null;
    if (w.percent !== undefined) {
      if (typeof w.percent !== 'number' || !(w.percent > 0 && w.percent <= 100)) p.add(`${path}.percent`, `must be a number above 0 and at most 100 (got ${JSON.stringify(w.percent)})`);
      else percent = w.percent;
    }
    if (count !== null && percent !== null) p.add(path, 'give count or percent, not both');
    let labels: Record<string, string> | null = null;
    if (w.labels !== undefined) {
      if (!isObject(w.labels) || Object.keys(w.labels).length === 0) p.add(`${path}.labels`, 'must be a mapping of label: value that a target must all have');
      else labels = Object.fromEntries(Object.entries(w.labels).map(([k, v]) => [k, String(v)]));
    }
    const failureBudget = wholeNumber(p, `${path}.failure_budget`, w.failure_budget, 0, 1_000_000) ?? 0;
    const onError = w.on_error === undefined ? 'stop' : w.on_error;
    if (onError !== 'stop' && onError !== 'continue') p.add(`${path}.on_error`, `must be stop or continue (got ${JSON.stringify(onError)})`);
    const noGo = w.no_go === undefined ? 'report' : w.no_go;
    if (noGo !== 'report' && noGo !== 'fail') p.add(`${path}.no_go`, `must be report or fail (got ${JSON.stringify(noGo)})`);

    let chosen = labels ? pool.filter((t) => Object.entries(labels!).every(([k, v]) => t.labels[k] === v)) : pool;
    if (count !== null) chosen = chosen.slice(0, count);
    else if (percent !== null) chosen = chosen.slice(0, Math.max(1, Math.ceil((percent / 100) * targets.length)));
    // (a wave left empty for want of entries refused for problems of their own is not said to be: those problems are)
    const emptyForRefused = labels ? refused.some((r) => Object.entries(labels!).every(([k, v]) => r[k] === v)) : refused.length > 0;
    if (chosen.length === 0 && !emptyForRefused) {
      const why = labels ? `no remaining target has the labels ${Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(', ')}` : 'earlier waves took every target';
      p.add(path, `wave '${name ?? i}' selects no target (${why})`);
    }
    const taken = new Set(chosen);
    pool = pool.filter((t) => !taken.has(t));
    waves.push({ index: i, name: name ?? `wave-${i}`, targets: chosen, failureBudget, onError: onError as WaveRule['onError'], noGo: noGo as WaveRule['noGo'] });
  });
  if (pool.length) p.add('waves', `${pool.length} target${pool.length === 1 ? ' is' : 's are'} in no wave (${pool.slice(0, 5).map((t) => t.name).join(', ')}${pool.length > 5 ? ', …' : ''}): end with a wave without count, percent or labels to take the rest`);
  return waves;
}

/** The targets an inventory query returns: columns name and url (or host, port, user, database), every other column a label. */
async function queryInventory(f: FleetFile): Promise<TargetEntry[]> {
  const inv = f.inventory!;
  const { withDb } = await import('../db/open-db.js');
  const rows = await withDb(inv.url, async (db) => {
    await db.exec('set session characteristics as transaction read only');
    try {
      return (await db.query<Record<string, unknown>>(inv.query)).rows;
    } catch (e) {
      throw new UsageError(`targets file '${f.file}': inventory.query failed on ${redactUrl(inv.url)}: ${(e as Error).message}`);
    }
  }, { applicationName: 'tiergate fleet (inventory, read-only)' });
  if (rows.length === 0) throw new UsageError(`targets file '${f.file}': inventory.query returned no target`);
  return rows.map((r) => {
    const { name, url, host, port, user, database, password_env, sslmode, ...labels } = r;
    const connection = url === undefined || url === null ? Object.fromEntries(Object.entries({ host, port, user, database, sslmode }).filter(([, v]) => v !== undefined && v !== null)) : undefined;
    return { name, url: url ?? undefined, connection, password_env, labels: Object.fromEntries(Object.entries(labels).filter(([, v]) => v !== null)) };
  });
}

/**
 * A fleet target's refusal for want of a password, said for the fleet: which
 * worker had none, and where a password reaches it from — the targets
 * file's URL reaches only the processes that read that file (fleet plan, the
 * coordinator's own workers), `password_env` every worker whose environment
 * sets it. Other messages are returned as they are.
 */
export function fleetPasswordMessage(message: string, target: { name: string; passwordEnv: string | null }, who: string, fromFile: boolean): string {
  if (!message.includes(NO_PASSWORD_GIVEN)) return message;
  const why = target.passwordEnv
    ? `its password_env names ${target.passwordEnv}, which is not set (or empty) in ${who}'s environment: set it there`
    : fromFile
      ? 'the targets file gives it no password: add one to its URL, or give it password_env'
      : `a password in the targets file's URL reaches only the processes that read the file (fleet plan, the coordinator's own workers): give the target password_env and set it for every worker, or use PGPASSWORD or ~/.pgpass on ${who}'s machine`;
  return message.replace(NO_PASSWORD_GIVEN, `the server asks for a password and ${who} has none for target ${target.name}: ${why}`);
}
