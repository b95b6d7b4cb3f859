import { createHash } from 'node:crypto';
import type { Db, Queryable } from '../db/port.js';
import { DbError, InterruptedError, TargetError } from '../errors.js';
import { sayingWhileSilent } from '../while-silent.js';
import type { FingerprintDiff } from '../evidence/types.js';
import { both } from '../settle.js';
import { readCatalog } from './catalog.js';
import { keepJitOff, withoutJit } from './jit.js';
import { currentSettings, NAME_TEXT_SETTINGS, VALUE_TEXT_SETTINGS } from './settings.js';
import { changedSince, PROOF_SETTINGS, readGlobalProof, readInheritance, readRelationProofs, sha1, tablesWrittenSince, unvouchedTables, type GlobalProof, type LogPosition, type RelationProof } from './change-log.js';

/**
 * A stable hash of a database: its catalog (every object of the user schemas
 * with an md5 of its normalised definition) and its content (one
 * order-independent hash per base table, volatile columns excluded).
 */
export interface Fingerprint {
  /** `kind schema.name` (`table public.orders`, `constraint public.orders.orders_pkey`) → md5 of the definition */
  catalog: Record<string, string>;
  /** `schema.table` → `rows:md5` of the table's content */
  tables: Record<string, string>;
  /** sha256 over both, sorted */
  hash: string;
}

export interface FingerprintOptions {
  /** schemas left out besides the system ones and tiergate's own (`tiergate`) */
  excludeSchemas?: string[];
  /**
   * More connections to the same database: the tables' batches are hashed on
   * all of them at once (each connection is one server process). Only for a
   * database nobody else writes to meanwhile (a clone): the batches do not
   * share one snapshot.
   */
  lanes?: Queryable[];
  /**
   * Content hashes of earlier fingerprints of this clone (or of the clone it
   * was copied from or to), reused for the tables its change log proves
   * unchanged since (src/probe/change-log.ts); updated with this one.
   */
  cache?: FingerprintCache;
  /**
   * Which database this is (with `cache`: the next fingerprint of this
   * database brings its catalog read up to date, on this database only);
   * fingerprintClone passes the connection's display URL.
   */
  instance?: string;
  /** told after each batch of tables hashed: how many of how many (a baseline of a large source takes minutes) */
  onProgress?: (hashed: number, total: number) => void;
  /** Ctrl-C: no batch starts after it (each connection finishes the one it runs), and an InterruptedError is thrown */
  signal?: AbortSignal;
  /**
   * (with `cache`: a baseline, `recordBaseline`) tables of at least
   * `minBytes` (`pg_table_size`) the change log can vouch for are not
   * hashed: each gets a deferred hash (`DEFERRED`), hashed only if a
   * comparison needs it (`deferredDifferences`, `hashDeferred`).
   */
  defer?: { minBytes: number };
}

/** tiergate's own schema (ledger, clone mark): never part of a fingerprint. */
export const TIERGATE_SCHEMA = 'tiergate';

/**
 * A column default the database fills differently on every apply: clocks,
 * sequences, random values. (`pg_get_expr` spells the SQL-standard ones in
 * upper case without parentheses: `CURRENT_TIMESTAMP`.)
 */
const VOLATILE_DEFAULT =
  '\\m(now|clock_timestamp|statement_timestamp|transaction_timestamp|timeofday|nextval|random|gen_random_uuid|uuid_generate_v[0-9a-z]*|uuidv[47])\\s*\\(' +
  '|\\m(current_timestamp|current_date|current_time|localtimestamp|localtime)\\M';
/** Timestamp columns an application fills with "now" (Directus' date_created / date_updated …). */
const VOLATILE_TIMESTAMP_NAME = '^(at|date_(created|updated|modified)|(created|updated|modified|changed|observed)_at)$';

/** Tables per content query: bounds the locks one statement takes (each table and its indexes). */
const TABLES_PER_BATCH = 250;

/**
 * Tables per content query for `n` tables on `connections`: at most
 * TABLES_PER_BATCH, and at least four batches a connection while there are
 * tables enough, taken in turn: 16 tables are no longer one query on one
 * connection while the other waits (a fingerprint after stage B at scale
 * 100: 300 ms, five of them Directus tables of 7,000–34,000 rows).
 */
function batchSize(n: number, connections: number): number {
  return Math.max(1, Math.min(TABLES_PER_BATCH, Math.ceil(n / (connections * 4))));
}

/** User schemas: everything but the system ones and the excluded ($1). */
const USER_SCHEMAS = `select oid, nspname from pg_namespace
  where nspname not in ('pg_catalog', 'information_schema') and nspname !~ '^pg_(toast|temp)' and nspname <> all($1::text[])`;

/**
 * Fingerprints a database, read-only. Three catalog queries, then one query
 * per 250 tables: every table's rows are hashed on the server (nothing but
 * the hashes travels), through `query_to_xml`, which runs a query given as
 * text and so needs no function of ours (nothing is left behind, and it works
 * in a READ ONLY transaction).
 *
 * Volatile columns count only as null / not null: serial and identity
 * columns, columns whose default is a clock, a sequence or a random value,
 * and timestamps named like `date_created`. A foreign key to such a column
 * is hashed as the referenced row's own content, so that re-inserting the
 * same rows with new ids gives the same fingerprint.
 *
 * Inside one transaction every table stays locked until commit: at thousands
 * of tables that can exceed the server's lock table, so pass a connection
 * (each batch then commits on its own) unless a single snapshot is needed.
 *
 * @example const before = await fingerprint(db); …; sameFingerprint(before, await fingerprint(db))
 */
export async function fingerprint(q: Queryable, options: FingerprintOptions = {}): Promise<Fingerprint> {
  const excluded = [TIERGATE_SCHEMA, ...(options.excludeSchemas ?? [])];
  // the catalog side (objects, relations, the cache's proof) is tiergate's own reading: no JIT compilation
  const { read, all, proof } = await withoutJit(q, async () => {
    // the catalog as this database last read it, brought up to date where it changed, when that can be told
    const database = options.cache && options.instance ? `${options.instance}\n${excluded.join(',')}` : null;
    const previous = database ? options.cache!.latestOf(database) : undefined;
    const lane = options.lanes?.[0];
    // with a second connection (a clone: nothing writes to it meanwhile), the basis of an incremental read on this one
    // while the other reads the catalog rows newer than the last read's basis and the change log's proof, as this
    // session's settings shape them
    const session = options.cache && lane ? await readSession(q) : null;
    const onLane = session ? withoutJit(lane!, () => readEarly(lane!, session, previous, options.cache!)) : null;
    onLane?.catch(() => undefined);
    try {
      const early: Early | undefined = onLane ? { basis: await readBasis(q, excluded), ...(await onLane) } : undefined;
      const read = await readCatalogState(q, excluded, Boolean(options.cache), lane, previous, early);
      if (database) options.cache!.rememberLatest(database, read);
      if (options.cache) {
        options.cache.lastCatalog = read.updated !== undefined ? 'updated' : 'read';
        options.cache.lastUpdated = read.updated ?? 0;
      }
      const all = contentQueries(read);
      return { read, all, proof: options.cache ? await readProof(q, read, all, options.cache, early) : null };
    } finally {
      // nothing is left running on the lane
      await onLane?.catch(() => undefined);
    }
  });
  const { catalog } = read;
  const tables: Record<string, string> = {};
  const reused = proof ? options.cache!.reusable(proof) : new Map<string, string>();
  for (const [name, hash] of reused) tables[name] = hash;
  const deferred = proof && options.defer ? await deferLarge(q, all.filter((x) => !reused.has(x.name)), proof, options.defer.minBytes, options.cache!) : new Map<string, string>();
  for (const [name, token] of deferred) tables[name] = token;
  const queries = all.filter((x) => !reused.has(x.name) && !deferred.has(x.name));
  let next = 0;
  let failure: unknown = null;
  const connections = [q, ...(options.lanes ?? [])];
  // a few tables (a later fingerprint hashes what a tier wrote) in several batches: every connection takes its share
  const size = batchSize(queries.length, connections.length);
  let hashed = 0;
  const lane = async (conn: Queryable) => {
    while (failure === null && next < queries.length) {
      if (options.signal?.aborted) {
        failure ??= new InterruptedError('interrupted (Ctrl-C) while hashing the tables');
        break;
      }
      const i = next;
      next += size;
      const batch = queries.slice(i, i + size);
      try {
        const rows = (await conn.query<{ name: string; c: string }>(BATCH_SQL, [batch.map((b) => b.name), batch.map((b) => b.sql)])).rows;
        for (const row of rows) tables[row.name] = row.c;
        hashed += batch.length;
        options.onProgress?.(hashed, queries.length);
      } catch (e) {
        // a statement cancelled at Ctrl-C (cancelAtAbort) is the interruption, not a failure of the hash
        failure ??= options.signal?.aborted ? new InterruptedError('interrupted (Ctrl-C) while hashing the tables') : e instanceof DbError && e.sqlstate === '53200' ? outOfLocks(e, i, queries.length) : e;
      }
    }
  };
  // every lane finishes its batch before an error is thrown: nothing is left running on a connection
  await Promise.all(connections.map(lane));
  if (failure !== null) throw failure;
  if (proof) options.cache!.record(proof, tables, queries.map((x) => x.name).sort(), deferred.size);
  return { catalog, tables, hash: hashOf(catalog, tables) };
}

/**
 * What a deferred hash stands for: a table's content as it was in the
 * database a baseline was recorded in (`recordBaseline`), not hashed then.
 * The token is the baseline's log position and the table's key: a
 * fingerprint of a copy of that database carries the same token for the
 * table exactly while the change log proves the table unchanged since, with
 * the same key — the rule by which it would reuse a hash — so two equal
 * tokens stand for equal contents, and a token beside anything else is
 * hashed (on an untouched copy of that database) before it is compared.
 */
export const DEFERRED = 'deferred:';

export function isDeferred(value: string | undefined): boolean {
  return value !== undefined && value.startsWith(DEFERRED);
}

/** What a comparison needs to hash a deferred table: its name, content query, and the digest (settings, role, the log's objects) its key was made under. */
export interface DeferredTable {
  name: string;
  sql: string;
  digest: string;
}

/** The tables of `candidates` of at least `minBytes` its log can vouch for, each with its deferred hash (noted in `cache` with its query). */
async function deferLarge(q: Queryable, candidates: { name: string; sql: string; oid: number }[], proof: Proof, minBytes: number, cache: FingerprintCache): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const global = proof.global;
  const vouched = candidates.filter((x) => proof.keys.get(x.name)?.provable);
  if (!global || !vouched.length) return out;
  const large = new Set(
    (await q.query<{ oid: string }>('select c.oid::text as oid from unnest($1::int8[]) c(oid) where pg_table_size(c.oid::oid) >= $2::int8', [vouched.map((x) => x.oid), minBytes])).rows.map((r) => Number(r.oid)),
  );
  for (const x of vouched) {
    if (!large.has(x.oid)) continue;
    const token = `${DEFERRED}${sha1(`${global.nonce}:${global.seq}:${global.n}:${proof.keys.get(x.name)!.key}`)}`;
    out.set(x.name, token);
    cache.noteDeferred(token, { name: x.name, sql: x.sql, digest: global.digest });
  }
  return out;
}

/** The tables whose values differ between `a` and `b` where one of them is deferred: what must be hashed before the two are compared. */
export function deferredDifferences(a: Fingerprint, b: Fingerprint): string[] {
  if (a.hash === b.hash) return [];
  return differing(a.tables, b.tables).filter((name) => isDeferred(a.tables[name]) || isDeferred(b.tables[name]));
}

/** `fp` with each deferred hash `hashes` knows replaced by the hash it stands for. */
export function withResolved(fp: Fingerprint, hashes: Map<string, string>): Fingerprint {
  const tables: Record<string, string> = {};
  let changed = false;
  for (const [name, value] of Object.entries(fp.tables)) {
    const hash = isDeferred(value) ? hashes.get(value) : undefined;
    tables[name] = hash ?? value;
    changed ||= hash !== undefined;
  }
  return changed ? { catalog: fp.catalog, tables, hash: hashOf(fp.catalog, tables) } : fp;
}

/**
 * Hashes deferred tables on `q`, an untouched copy of the database their
 * baseline was recorded in (its change log still at the baseline's
 * position, so every table as it was), under the settings and role their
 * keys were made with (else a TargetError: another text of the same rows).
 */
export async function hashDeferred(q: Queryable, tokens: Map<string, DeferredTable>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const items = [...tokens];
  if (!items.length) return out;
  const global = await readGlobalProof(q);
  const digests = new Set(items.map(([, t]) => t.digest));
  if (!global || digests.size !== 1 || !digests.has(global.digest)) {
    throw new TargetError(
      `the untouched copy of the source reads ${items.map(([, t]) => t.name).join(', ')} under other settings, role or change log than its baseline did: its content cannot be compared with the clones' (rehearse again from a new copy: --fresh, or --no-snapshot)`,
    );
  }
  for (let i = 0; i < items.length; i += TABLES_PER_BATCH) {
    const batch = items.slice(i, i + TABLES_PER_BATCH);
    const rows = (await q.query<{ name: string; c: string }>(BATCH_SQL, [batch.map(([token]) => token), batch.map(([, t]) => t.sql)])).rows;
    for (const row of rows) out.set(row.name, row.c);
  }
  return out;
}

/** What one fingerprint proved, for the cache: the log's position and each table's key and whether its content can be vouched for by the log. */
interface Proof {
  global: GlobalProof | null;
  /** which recorded position this database's log passes through, and what it names since */
  since: { entry: CacheEntry; touched: Set<number> } | null;
  /** `schema.table` → its key, and whether its log proves it (every relation its hash reads has a valid trigger, and none was written since) */
  keys: Map<string, { key: string; proven: boolean; provable: boolean }>;
}

/**
 * Content hashes reused across fingerprints of a clone, each only where
 * tiergate's change log (src/probe/change-log.ts) proves the table unchanged
 * since it was hashed:
 *
 * - the database's log passes through the position recorded with the hash
 *   (same nonce at that seq, same number of rows up to it: the same history,
 *   also on a copy of the clone), and names none of the relations the hash
 *   reads since — the table, its inheritance or partition family (a write
 *   through a parent fires the parent's trigger only; an inheritance
 *   parent's rows include its children's), and the families of the tables a
 *   foreign key to a volatile column is dereferenced into;
 * - each of those relations has tiergate's trigger, exactly as installed
 *   and always enabled, and no row-level security;
 * - the table's key is unchanged: its content query's text (its columns,
 *   which are volatile, the referenced tables' columns), and for each
 *   relation it reads, its oid, relfilenode (rewrites, TRUNCATE), pg_class
 *   row (any ALTER TABLE) and trigger row (dropped, recreated, disabled and
 *   enabled again); the log's own table, guard and functions; the user
 *   types and their output functions (an enum value renamed changes the
 *   text of rows nobody wrote); the settings that shape a value's text; the
 *   role hashing.
 *
 * Anything else is hashed again, so a fingerprint with a cache equals one
 * without (test/fingerprint-cache.test.ts proves it against changes the
 * parser cannot see). Assumes what a clone guarantees: nothing writes to the
 * database while it is being fingerprinted.
 */
interface CacheEntry {
  at: LogPosition;
  digest: string;
  tables: Map<string, { key: string; hash: string }>;
}

export class FingerprintCache {
  private readonly positions: CacheEntry[] = [];
  /** tables hashed, reused and deferred by the last fingerprint */
  last = { hashed: 0, reused: 0, deferred: 0 };
  /** the tables the last fingerprint hashed (those it could not prove unchanged) */
  lastHashed: string[] = [];
  /**
   * whether the last fingerprint read the catalog in full or brought its
   * last read up to date (read again only the relations that changed or
   * name one that did, and the objects of no relation: schemas, types,
   * functions)
   */
  lastCatalog: 'read' | 'updated' = 'read';
  /** (a catalog brought up to date) how many relations were read again: 0 when nothing changed */
  lastUpdated = 0;

  /** The hashes this database may reuse. */
  reusable(proof: Proof): Map<string, string> {
    const out = new Map<string, string>();
    const at = proof.since?.entry;
    if (!at || !proof.global || at.digest !== proof.global.digest) return out;
    for (const [name, k] of proof.keys) {
      const cached = at.tables.get(name);
      if (k.proven && cached && cached.key === k.key) out.set(name, cached.hash);
    }
    return out;
  }

  /** Records a fingerprint's hashes at its log position (at most eight positions are kept). */
  record(proof: Proof, tables: Record<string, string>, hashed: string[], deferred = 0): void {
    this.last = { hashed: hashed.length, reused: proof.keys.size - hashed.length - deferred, deferred };
    this.lastHashed = hashed;
    if (!proof.global) return;
    const kept = new Map<string, { key: string; hash: string }>();
    for (const [name, k] of proof.keys) if (k.provable && tables[name] !== undefined) kept.set(name, { key: k.key, hash: tables[name]! });
    const { seq, nonce, n } = proof.global;
    this.positions.push({ at: { seq, nonce, n }, digest: proof.global.digest, tables: kept });
    if (this.positions.length > 8) this.positions.shift();
  }

  /** The latest catalog read of each database (and list of schemas left out): where the next read of it starts from. */
  private readonly latest = new Map<string, CatalogState>();

  rememberLatest(database: string, state: CatalogState): void {
    this.latest.set(database, state);
  }

  /** The catalog state stored in the clone the others were copied from (`importCatalog`): where a clone's first read starts. */
  private seed: CatalogState | undefined;

  latestOf(database: string): CatalogState | undefined {
    return this.latest.get(database) ?? this.seed;
  }

  /** The latest catalog state read (and its basis) as JSON, for `recordBaseline`; null when none was read for the cache. */
  exportCatalog(): string | null {
    const state = [...this.latest.values()].at(-1);
    const at = this.positions.at(-1)?.at;
    if (!state?.basis || !state.owned || !state.proofs || !state.edges || !at) return null;
    return JSON.stringify({
      basis: { xmin: state.basis.xmin, global: state.basis.global, schemas: state.basis.schemas, roles: state.basis.roles, functions: state.basis.functions, counts: [...state.basis.counts], lineage: at },
      catalog: [...state.owned].flatMap(([owner, keys]) => keys.map((key) => [key, state.catalog[key], owner])),
      relations: [...state.relations.values()],
      proofs: [...state.proofs],
      edges: state.edges,
    });
  }

  /**
   * Seeds the cache with a state `exportCatalog` wrote: the first catalog
   * read of a database it is used for starts from it — only a copy of the
   * clone it was stored in (its change log must pass through the state's
   * position), else that read is a full one.
   */
  importCatalog(json: string): void {
    const e = JSON.parse(json) as {
      basis: { xmin: string; global: string; schemas: Record<string, string>; roles: Record<string, string>; functions: Record<string, string>; counts: [number, string][]; lineage: LogPosition };
      catalog: [string, string, number][];
      relations: Relation[];
      proofs: [number, RelationProof][];
      edges: [number, number][];
    };
    // (a loop, not Object.fromEntries of a mapped copy: 33,000 entries at 6,500 tables)
    const catalog: Record<string, string> = {};
    for (const [key, def] of e.catalog) catalog[key] = def;
    this.seed = {
      catalog,
      owned: ownedBy(e.catalog.map(([key, , owner]) => ({ key, owner }))),
      relations: new Map(e.relations.map((r) => [r.oid, r])),
      proofs: new Map(e.proofs),
      edges: e.edges,
      basis: { xmin: e.basis.xmin, global: e.basis.global, schemas: e.basis.schemas, roles: e.basis.roles, functions: e.basis.functions, counts: new Map(e.basis.counts), lineage: e.basis.lineage },
    };
  }

  /** The latest entry as JSON, for `recordBaseline` (null before any fingerprint with a change log); a deferred hash with its table's content query. */
  exportLatest(): string | null {
    const e = this.positions.at(-1);
    const row = (name: string, v: { key: string; hash: string }) => {
      const d = isDeferred(v.hash) ? this.deferred.get(v.hash) : undefined;
      return d ? [name, v.key, v.hash, d.sql] : [name, v.key, v.hash];
    };
    return e ? JSON.stringify({ at: e.at, digest: e.digest, tables: [...e.tables].map(([name, v]) => row(name, v)) }) : null;
  }

  /** Adds an entry `exportLatest` wrote (its hashes are reused only where this cache's rules prove them, as any entry's). */
  importEntry(json: string): void {
    const e = JSON.parse(json) as { at: LogPosition; digest: string; tables: [string, string, string, string?][] };
    for (const [name, , hash, sql] of e.tables) if (sql !== undefined && isDeferred(hash)) this.noteDeferred(hash, { name, sql, digest: e.digest });
    this.positions.push({ at: e.at, digest: e.digest, tables: new Map(e.tables.map(([name, key, hash]) => [name, { key, hash }])) });
  }

  /** Deferred hashes (`DEFERRED`) and what hashing each needs. */
  private readonly deferred = new Map<string, DeferredTable>();

  noteDeferred(token: string, table: DeferredTable): void {
    this.deferred.set(token, table);
  }

  deferredTable(token: string): DeferredTable | undefined {
    return this.deferred.get(token);
  }

  /** The entries recorded, oldest first (a copy: two fingerprints may run at once, each recording its own). */
  entries(): CacheEntry[] {
    return [...this.positions];
  }
}

/**
 * What a fingerprint reads from the catalog alone: the objects and their
 * definitions, the user tables, and (for the cache) each table's proof and
 * the inheritance edges. The next fingerprint of the same database brings
 * it up to date where it changed (`basis`).
 */
interface CatalogState {
  catalog: Record<string, string>;
  relations: Map<number, Relation>;
  proofs?: Map<number, RelationProof>;
  edges?: [number, number][];
  /** (for the cache) what a later read of the same database starts from, and the catalog entries read from each relation (0: the rest) */
  basis?: CatalogBasis;
  owned?: Map<number, string[]>;
  /** how many relations an incremental read read again (absent: a full read) */
  updated?: number;
}

/** A session's settings that shape the change log's proof (`PROOF_SETTINGS`), and its role: a second connection has its own. */
interface Session {
  proof: string;
  user: string;
}

async function readSession(q: Queryable): Promise<Session> {
  const r = await q.query<Session>(`select concat_ws('|', ${PROOF_SETTINGS}) as proof, current_user::text as user`);
  return r.rows[0]!;
}

/**
 * What a fingerprint with a cache reads before it brings the last catalog
 * read up to date: the basis of an incremental read, on its first
 * connection; on its second, meanwhile (a clone: nothing writes between
 * them), the catalog rows newer than the last read's basis and the change
 * log's global proof and position. At 6,500 tables, in a rehearsal's
 * server log, the basis took ~40 ms, the newer rows ~60 and the log ~30:
 * ~90 ms two by two, ~125 ms before beside the version. (The catalog's
 * version, ~80 ms there, is no longer read for a fingerprint: it let one
 * reuse a read whole when nothing had changed, which in a rehearsal, where
 * every fingerprint follows a tier that changed the catalog, never
 * happened; an unchanged catalog is brought up to date reading no relation
 * again. A seal still reads it.)
 */
interface Early {
  basis: CatalogBasis;
  newer: NewerRow[] | null;
  global: GlobalProof | null;
  since: { entry: CacheEntry; touched: Set<number> } | null;
}

async function readEarly(lane: Queryable, session: Session, previous: CatalogState | undefined, cache: FingerprintCache): Promise<Omit<Early, 'basis'>> {
  const newer = previous?.basis ? await readNewer(lane, previous.basis.xmin) : null;
  const global = await readGlobalProof(lane, session);
  return { newer, global, since: global ? await logSince(lane, cache) : null };
}

/** The latest entry of `cache` this database's log passes through, and the relations it names since (the entry itself: another fingerprint may record one meanwhile). */
async function logSince(q: Queryable, cache: FingerprintCache): Promise<Early['since']> {
  const entries = cache.entries();
  const found = await changedSince(q, entries.map((e) => e.at));
  return found ? { entry: entries[found.index]!, touched: found.touched } : null;
}

/**
 * With a second connection (`lane`: a clone, which nothing else writes to),
 * the objects are read on one while the tables, their proofs and the
 * inheritance edges are read on the other: at 6,500 tables 0.85 s and
 * 0.7 s, which ran one after the other. Both finish before an error is
 * thrown: nothing is left running on a connection.
 *
 * With `previous` (the last state read on this database), only what changed
 * since is read again (`updateCatalogState`), when it can be told.
 */
async function readCatalogState(q: Queryable, excluded: string[], forCache: boolean, lane?: Queryable, previous?: CatalogState, early?: Early): Promise<CatalogState> {
  // taken before anything is read: whatever changes after it is seen as changed by the next read
  const basis = early?.basis ?? (forCache ? await readBasis(q, excluded) : undefined);
  if (basis && previous) {
    const updated = await updateCatalogState(q, excluded, previous, basis, lane, early?.newer);
    if (updated) return updated;
  }
  const { objects, ...tables } = await readObjectsAndTables(q, excluded, null, forCache, lane);
  const read: { key: string; owner: number }[] = [];
  const catalog: Record<string, string> = {};
  for (const o of objects) {
    const key = `${o.kind} ${o.name}`;
    catalog[key] = o.def;
    read.push({ key, owner: o.owner });
  }
  return { catalog, ...tables, ...(basis ? { basis, owned: ownedBy(read) } : {}) };
}

/**
 * The objects (of the relations `only`, and the rest; null: all) read on
 * `q`, and the relations, (`forCache`) their proofs and the inheritance
 * edges on `lane` at the same time — on `q` after the objects without one.
 */
async function readObjectsAndTables(q: Queryable, excluded: string[], only: number[] | null, forCache: boolean, lane?: Queryable) {
  const tables = async (c: Queryable) => {
    const relations = await readRelations(c, excluded, only);
    if (!forCache) return { relations };
    return { relations, proofs: await readRelationProofs(c, [...relations.keys()]), edges: await readInheritance(c) };
  };
  const objects = readCatalog(q, { except: excluded }, only);
  if (!lane) return { objects: await objects, ...(await tables(q)) };
  const [read, rest] = await both(objects, withoutJit(lane, () => tables(lane)));
  return { objects: read, ...rest };
}

/** The catalog entries read from each relation (0: the rest). */
function ownedBy(read: { key: string; owner: number }[]): Map<number, string[]> {
  const owned = new Map<number, string[]>();
  for (const { key, owner } of read) {
    const keys = owned.get(owner);
    if (keys) keys.push(key);
    else owned.set(owner, [key]);
  }
  return owned;
}

/**
 * What an incremental catalog read starts from, taken before a read:
 *
 * - `xmin`: the oldest transaction of this database still running then (or
 *   the next one to start). Every catalog row written since (an insert or
 *   update: CREATE, ALTER, RENAME, GRANT …) has that transaction or a later
 *   one as its xmin; every row visible then was read. The server's oldest
 *   running transaction would do too, but a long transaction in another
 *   database (a busy server, a report, a test beside) would make every row
 *   look new; a transaction of another database cannot write this one's
 *   catalogs, so those that pg_stat_activity or pg_prepared_xacts place in
 *   another database are passed over (one that ended before it was looked
 *   up is counted: its database is not known).
 * - `counts`: each relation of the user schemas (any kind) and how many rows
 *   it has in the catalogs it can lose rows from without one of its own
 *   changing (a constraint, trigger, rule, policy, default or parent
 *   dropped). A relation gone or new is one missing from either side.
 * - `schemas`: the schemas read. One renamed or dropped: a full read (its
 *   name prints in every object of it).
 * - `roles`: the roles a policy names. One renamed: a full read (a policy
 *   prints its roles); the server's other roles, created or dropped
 *   elsewhere, change nothing this database prints.
 * - `global`: what, changed, may change how any object prints — collations, operators, operator classes, access
 *   methods, text search, casts, languages, extensions, the settings that
 *   shape a printed value or a qualified name. Any change there: a full
 *   read.
 *
 * The xmin test holds on a copy of the database too (CREATE DATABASE …
 * TEMPLATE on one server shares its transaction counter; a copied PGlite
 * directory continues its own), so a state stored in a clone when it is
 * made (`recordBaseline`) is where every copy of it starts (`lineage`).
 */
interface CatalogBasis {
  xmin: string;
  counts: Map<number, string>;
  global: string;
  /** each schema read, by oid: its row's version (one renamed or dropped: a full read; a new one is read with the rest) */
  schemas: Record<string, string>;
  /** each role a policy names, by oid: its name (a policy prints it: renamed, a full read; roles are the server's, and the others, created or dropped elsewhere, change nothing printed here) */
  roles: Record<string, string>;
  /** each function of the schemas read, by oid: its name (one dropped changes how a call of another function of that name prints) */
  functions: Record<string, string>;
  /**
   * (a state stored in a clone, `recordBaseline`) its change log's position
   * then: a database whose log does not pass through it is no copy of that
   * clone, and is read in full
   */
  lineage?: LogPosition;
}

/**
 * The settings that shape how a definition prints: name qualification
 * (search_path), the role, and a default's or a check's constant printed in
 * the session's style (a timestamp default under DateStyle).
 */
const PRINTING_SETTINGS = `${currentSettings(NAME_TEXT_SETTINGS)}, current_user, ${currentSettings([...VALUE_TEXT_SETTINGS, 'standard_conforming_strings'])}`;

/** A catalog's rows as their count and a sum of hashes of their (ctid, xmin): any insert, update or delete changes it. */
function catalogRows(catalog: string): string {
  return `(select count(*)::text || ':' || coalesce(sum(hashtext(ctid::text || xmin::text)::int8), 0)::text from pg_catalog.${catalog})`;
}

const GLOBAL_CATALOGS = ['pg_collation', 'pg_language', 'pg_opclass', 'pg_operator', 'pg_am', 'pg_ts_config', 'pg_ts_dict', 'pg_cast', 'pg_extension'];

const BASIS_SQL = `
with snap as (select pg_current_snapshot() as s, (select oid from pg_database where datname = current_database()) as db)
select (least(pg_snapshot_xmax(s), (select min(x) from pg_snapshot_xip(s) x
          where not exists (select 1 from pg_stat_activity a where a.backend_xid = x::xid and a.datid is distinct from db)
            and not exists (select 1 from pg_prepared_xacts p where p.transaction = x::xid and p.database <> current_database())))::text::int8 % 4294967296)::text as xmin,
       (select string_agg(n.oid::text || ':' || n.ctid::text || ':' || n.xmin::text, ',' order by n.oid) from (${USER_SCHEMAS}) u join pg_namespace n on n.oid = u.oid) as schemas,
       (select json_object_agg(r.oid::text, r.rolname) from pg_roles r where r.oid in (select unnest(p.polroles) from pg_policy p)) as roles,
       (select json_object_agg(p.oid::text, p.proname) from pg_proc p where p.pronamespace in (select oid from (${USER_SCHEMAS}) u)) as functions,
       concat_ws('|', concat_ws('|', ${PRINTING_SETTINGS}),
         ${GLOBAL_CATALOGS.map(catalogRows).join(',\n         ')}) as global,
       -- the relations of the user schemas, and per relation (of any schema) its rows in the catalogs it can
       -- lose rows from (see CatalogBasis): each a text of its own, not a row a relation (19,000 at scale 100)
       (select string_agg(c.oid::text, ',') from pg_class c where c.relnamespace in (select oid from (${USER_SCHEMAS}) u)) as relations,
       (select string_agg(g.o::text || g.k || g.n::text, ',')
          from (select x.o, x.k, count(*) as n
                  from (select conrelid as o, 'c' as k from pg_constraint
                        union all select tgrelid, 't' from pg_trigger
                        union all select ev_class, 'r' from pg_rewrite
                        union all select polrelid, 'p' from pg_policy
                        union all select adrelid, 'd' from pg_attrdef
                        union all select inhrelid, 'i' from pg_inherits) x
                 group by x.o, x.k) g) as owned
  from snap`;

/** The order of the catalogs in a relation's counts (constraints, triggers, rules, policies, defaults, parents). */
const COUNTED = ['c', 't', 'r', 'p', 'd', 'i'];

/** Per relation of `relations` (oids, comma-separated): its counts from `owned` (`<oid><kind><n>,…`), the non-zero ones in COUNTED's order, each after its kind (`c2t1d3`). */
function relationCounts(relations: string | null, owned: string | null): Map<number, string> {
  const per = new Map<number, number[]>();
  for (const oid of (relations ?? '').split(',')) if (oid) per.set(Number(oid), [0, 0, 0, 0, 0, 0]);
  for (const item of (owned ?? '').split(',')) {
    const m = /^(\d+)([a-z])(\d+)$/.exec(item);
    const counts = m ? per.get(Number(m[1])) : undefined;
    if (counts) counts[COUNTED.indexOf(m![2]!)] = Number(m![3]);
  }
  const out = new Map<number, string>();
  for (const [oid, counts] of per) out.set(oid, counts.map((n, i) => (n > 0 ? `${COUNTED[i]}${n}` : '')).join(''));
  return out;
}

async function readBasis(q: Queryable, excluded: string[]): Promise<CatalogBasis> {
  const b = (
    await q.query<{ xmin: string; schemas: string | null; roles: Record<string, string> | string | null; functions: Record<string, string> | string | null; global: string; relations: string | null; owned: string | null }>(
      BASIS_SQL,
      [excluded],
    )
  ).rows[0]!;
  const counts = relationCounts(b.relations, b.owned);
  const schemas = Object.fromEntries((b.schemas ?? '').split(',').filter(Boolean).map((x) => [x.slice(0, x.indexOf(':')), x.slice(x.indexOf(':') + 1)]));
  const record = (v: Record<string, string> | string | null): Record<string, string> => (typeof v === 'string' ? (JSON.parse(v) as Record<string, string>) : (v ?? {}));
  return { xmin: b.xmin, counts, global: sha1(b.global), schemas, roles: record(b.roles), functions: record(b.functions) };
}

type NewerRow = { k: string; oid: string };

async function readNewer(q: Queryable, xmin: string): Promise<NewerRow[]> {
  return (await q.query<NewerRow>(NEWER_SQL, [xmin])).rows;
}

/** The catalog rows written since transaction `$1` (see CatalogBasis): the relations they belong to ('r'), and the functions ('p') and types ('t') written. */
const NEWER_SQL = `
with h as (select age($1::text::xid) as a)
select 'r' as k, x.oid::int8 as oid from pg_class x, h where age(x.xmin) <= h.a
union select 'r', x.attrelid from pg_attribute x, h where age(x.xmin) <= h.a
union select 'r', x.adrelid from pg_attrdef x, h where age(x.xmin) <= h.a
union select 'r', x.conrelid from pg_constraint x, h where age(x.xmin) <= h.a and x.conrelid <> 0
union select 'r', x.tgrelid from pg_trigger x, h where age(x.xmin) <= h.a
union select 'r', x.ev_class from pg_rewrite x, h where age(x.xmin) <= h.a
union select 'r', x.polrelid from pg_policy x, h where age(x.xmin) <= h.a
union select 'r', x.indexrelid from pg_index x, h where age(x.xmin) <= h.a
union select 'r', x.seqrelid from pg_sequence x, h where age(x.xmin) <= h.a
union select 'r', x.inhrelid from pg_inherits x, h where age(x.xmin) <= h.a
union select 'r', x.partrelid from pg_partitioned_table x, h where age(x.xmin) <= h.a
union select 'r', x.ftrelid from pg_foreign_table x, h where age(x.xmin) <= h.a
union select 'p', x.oid from pg_proc x, h where age(x.xmin) <= h.a
union select 't', x.oid from pg_type x, h where age(x.xmin) <= h.a
-- an enum value renamed rewrites its pg_enum row only: a stored constant of the type prints the new label
union select 't', x.enumtypid from pg_enum x, h where age(x.xmin) <= h.a`;

/**
 * The relations whose objects print another object's name (a view, a
 * foreign key, a trigger, a default, an index …: pg_depend) — of the
 * relations `$1` or of their own objects (a primary key's index depends on
 * its constraint, not on its table), of the functions `$2` and of every
 * function named `$4` (one created or dropped beside it changes whether a
 * call prints qualified), of the types `$3` — and the tables of the
 * exclusion constraints whose index is one of `$1`: read again when those
 * changed (a rename prints in them though none of their rows changed).
 */
const DEPENDENTS_SQL = `
with changed as (select unnest($1::int8[])::oid as oid),
refs (classid, objid) as (
  select 'pg_class'::regclass::oid, oid from changed
  union all select 'pg_constraint'::regclass::oid, x.oid from pg_constraint x where x.conrelid in (select oid from changed)
  union all select 'pg_trigger'::regclass::oid, x.oid from pg_trigger x where x.tgrelid in (select oid from changed)
  union all select 'pg_rewrite'::regclass::oid, x.oid from pg_rewrite x where x.ev_class in (select oid from changed)
  union all select 'pg_attrdef'::regclass::oid, x.oid from pg_attrdef x where x.adrelid in (select oid from changed)
  union all select 'pg_policy'::regclass::oid, x.oid from pg_policy x where x.polrelid in (select oid from changed)
  union all select 'pg_proc'::regclass::oid, unnest($2::int8[])::oid
  -- a function of a name created or dropped: a call of another function of that name may now print qualified, or not
  union all select 'pg_proc'::regclass::oid, p.oid from pg_proc p where p.proname = any($4::text[])
  union all select 'pg_type'::regclass::oid, unnest($3::int8[])::oid)
select distinct coalesce(co.conrelid, tg.tgrelid, ru.ev_class, ad.adrelid, po.polrelid, case when d.classid = 'pg_class'::regclass then d.objid end)::int8 as owner
  from refs join pg_depend d on d.refclassid = refs.classid and d.refobjid = refs.objid
  left join pg_constraint co on d.classid = 'pg_constraint'::regclass and co.oid = d.objid
  left join pg_trigger tg on d.classid = 'pg_trigger'::regclass and tg.oid = d.objid
  left join pg_rewrite ru on d.classid = 'pg_rewrite'::regclass and ru.oid = d.objid
  left join pg_attrdef ad on d.classid = 'pg_attrdef'::regclass and ad.oid = d.objid
  left join pg_policy po on d.classid = 'pg_policy'::regclass and po.oid = d.objid
union
-- an exclusion constraint prints its index's options (WITH (…)): the index depends on it, not it on the index
select co.conrelid::int8 from pg_constraint co where co.conindid = any($1::int8[]::oid[]) and co.conrelid <> 0`;

/**
 * The catalog state of `previous`, brought up to date by reading again only
 * the relations whose catalog rows changed since (`basis`), those whose
 * objects name a changed relation, function or type, and the rest (schemas,
 * functions, types, extensions: few). Null when it cannot be told (a global
 * change: a schema renamed, a collation, a setting …) or when so much
 * changed that a full read is cheaper. Equal to a full read: proven against
 * one by test/fingerprint-cache.test.ts.
 */
async function updateCatalogState(q: Queryable, excluded: string[], previous: CatalogState, basis: CatalogBasis, lane?: Queryable, newer?: NewerRow[] | null): Promise<CatalogState | null> {
  const before = previous.basis;
  if (!before || !previous.owned || !previous.proofs || !previous.edges || before.global !== basis.global) return null;
  // (a state stored by an earlier tiergate may lack a part: read in full)
  if (!before.schemas || !before.roles || !before.functions) return null;
  if (Object.entries(before.schemas).some(([oid, v]) => basis.schemas[oid] !== v)) return null;
  // (a role no policy names any more is no rename: the relations whose policies named it changed rows, and are read again)
  if (Object.entries(before.roles).some(([oid, name]) => oid in basis.roles && basis.roles[oid] !== name)) return null;
  if (before.lineage && !(await changedSince(q, [before.lineage]))) return null;
  // (a transaction id compares by age: far older than a rehearsal lasts, the comparison is not trusted)
  const age = Number((await q.query<{ a: number }>('select age($1::text::xid) as a', [before.xmin])).rows[0]?.a ?? Infinity);
  if (!(age < 1e9)) return null;
  const changed = new Set<number>();
  for (const [oid, n] of basis.counts) if (before.counts.get(oid) !== n) changed.add(oid);
  const gone = [...before.counts.keys()].filter((oid) => !basis.counts.has(oid));
  const procs: number[] = [];
  const types: number[] = [];
  for (const r of newer ?? (await readNewer(q, before.xmin))) {
    const oid = Number(r.oid);
    if (r.k === 'p') procs.push(oid);
    else if (r.k === 't') types.push(oid);
    else changed.add(oid);
  }
  const dirty = new Set([...changed].filter((oid) => basis.counts.has(oid)));
  // the names of the functions written since (created or replaced) and of those of the last read that are gone
  const procNames = procs.length ? (await q.query<{ n: string }>('select distinct proname::text as n from pg_proc where oid = any($1::int8[]::oid[])', [procs])).rows.map((r) => r.n) : [];
  const dependents = await q.query<{ owner: string | null }>(DEPENDENTS_SQL, [[...changed, ...gone], procs, types, [...procNames, ...Object.entries(before.functions).filter(([oid]) => !(oid in basis.functions)).map(([, name]) => name)]]);
  for (const r of dependents.rows) if (r.owner !== null && basis.counts.has(Number(r.owner))) dirty.add(Number(r.owner));
  // (a long transaction in this database makes more rows look new. When a large part of a large database
  // would be read again, one full read on two connections is cheaper)
  if (dirty.size > 500 && dirty.size > basis.counts.size / 4) return null;
  const oids = [...dirty];
  const stale = new Set([...dirty, ...gone, 0]);
  // the last read, less what is read again (a copy: the last state stays as it was, the cache may hold it)
  const catalog = copyRecord(previous.catalog);
  const owned = new Map(previous.owned);
  let sum = catalogSum(previous.catalog);
  for (const owner of stale) {
    for (const key of owned.get(owner) ?? []) {
      sum -= lineSum(key, catalog[key]!);
      delete catalog[key];
    }
    owned.delete(owner);
  }
  const fresh = await readObjectsAndTables(q, excluded, oids, true, lane);
  const read: { key: string; owner: number }[] = [];
  for (const o of fresh.objects) {
    const key = `${o.kind} ${o.name}`;
    if (key in catalog) sum -= lineSum(key, catalog[key]!);
    catalog[key] = o.def;
    sum += lineSum(key, o.def);
    read.push({ key, owner: o.owner });
  }
  for (const [owner, keys] of ownedBy(read)) owned.set(owner, keys);
  catalogSums.set(catalog, ((sum % SUM_MOD) + SUM_MOD) % SUM_MOD);
  const relations = new Map([...previous.relations].filter(([oid]) => !stale.has(oid)));
  for (const [oid, rel] of fresh.relations) relations.set(oid, rel);
  const proofs = new Map([...previous.proofs].filter(([oid]) => !stale.has(oid)));
  for (const [oid, proof] of fresh.proofs!) proofs.set(oid, proof);
  return { catalog, relations, proofs, edges: fresh.edges!, basis, owned, updated: oids.length };
}

/**
 * The catalogs a fingerprint's catalog read depends on (what readCatalog,
 * pg_get_*def and the relation and proof queries read), each as its row
 * count and a sum of hashes of its rows' (ctid, xmin): any insert, update
 * or delete in them — any DDL, GRANT, COMMENT ON, ALTER … — changes a row
 * version and so the sum. Updates made in place (VACUUM's and ANALYZE's
 * relpages, reltuples, relfrozenxid) change neither, and nothing read
 * depends on them. The settings that shape how constants print (DateStyle
 * and the like: a timestamp default) and name qualification (search_path)
 * are part of the version. Within one database an xid is never reused, so an equal
 * version is an unchanged catalog; between two databases (a clone and its
 * copy, whose PGlite xids run alike) it proves nothing, which is why seals
 * are compared on one database only.
 */
const CATALOGS = [
  'pg_namespace', 'pg_class', 'pg_attribute', 'pg_attrdef', 'pg_inherits', 'pg_type', 'pg_enum', 'pg_range', 'pg_extension', 'pg_rewrite',
  'pg_sequence', 'pg_index', 'pg_proc', 'pg_aggregate', 'pg_constraint', 'pg_trigger', 'pg_policy', 'pg_collation', 'pg_language',
  'pg_opclass', 'pg_operator', 'pg_am', 'pg_partitioned_table', 'pg_ts_config', 'pg_ts_dict', 'pg_foreign_table', 'pg_cast',
];
const versionSql = (rows: (catalog: string) => string) => `select concat_ws('|', ${PRINTING_SETTINGS},
  (select d.oid::text from pg_database d where d.datname = current_database()),
  -- the roles a policy names (it prints them): a role created or changed elsewhere on the server changes nothing read here
  (select md5(coalesce(string_agg(r.oid::text || ':' || r.rolname, ',' order by r.oid), '')) from pg_roles r where r.oid in (select unnest(p.polroles) from pg_policy p)),
  ${CATALOGS.map(rows).join(',\n  ')}) as v`;

/**
 * On PostgreSQL 14 and later each row's (ctid, xmin) is hashed by
 * hashtidextended (its ctid, seeded with its xmin: a 64-bit hash of the
 * pair) instead of printing both as text and hashing that: the same rows
 * read, a quarter less time (a version at 6,500 tables 69 → 52 ms, at 650
 * 12.1 → 8.7 ms; a rehearsal reads a dozen). The form depends on the server
 * alone, so two versions of one database always compare like with like.
 */
const CATALOG_VERSION_SQL = {
  tid: versionSql((c) => `(select count(*)::text || ':' || coalesce(sum(hashtidextended(ctid, xmin::text::int8)), 0)::text from pg_catalog.${c})`),
  text: versionSql(catalogRows),
};

/** Whether the server of `q` has hashtidextended (14 and later); asked once per connection object. */
const tidHash = new WeakMap<Queryable, Promise<boolean>>();

function hasTidHash(q: Queryable): Promise<boolean> {
  if ('capabilities' in q) return Promise.resolve((q as Db).capabilities.serverVersion >= 140000);
  let known = tidHash.get(q);
  if (!known) {
    known = q.query<{ n: string }>(`select current_setting('server_version_num') as n`).then((r) => Number(r.rows[0]?.n ?? 0) >= 140000);
    known.catch(() => tidHash.delete(q));
    tidHash.set(q, known);
  }
  return known;
}

async function catalogVersion(q: Queryable): Promise<string> {
  const r = await q.query<{ v: string }>(CATALOG_VERSION_SQL[(await hasTidHash(q)) ? 'tid' : 'text']);
  return sha1(r.rows[0]?.v ?? '');
}

/** Reads what the cache needs to decide, for every hashed table, whether its last hash still holds. */
async function readProof(q: Queryable, state: CatalogState, hashed: { name: string; sql: string; oid: number }[], cache: FingerprintCache, early?: Early): Promise<Proof> {
  const global = early ? early.global : await readGlobalProof(q);
  if (!global) return { global: null, since: null, keys: new Map() };
  const since = early ? early.since : await logSince(q, cache);
  const keys = new Map<string, { key: string; proven: boolean; provable: boolean }>();
  for (const [name, { key, provable, reads }] of await tableKeys(q, state, hashed, global.digest)) {
    keys.set(name, { key, provable, proven: provable && since !== null && !reads.some((oid) => since.touched.has(oid)) });
  }
  return { global, since, keys };
}

/** Each hashed table's key, whether its log can prove it, and the relations its hash reads. */
type TableKeys = Map<string, { key: string; provable: boolean; reads: number[] }>;

/**
 * Table keys of a catalog state (asked once per fingerprint): each kept
 * with the relation object it was made from, and the same while its inputs
 * and the log's own objects (`digest`) are — a catalog brought up to date
 * keeps the objects of the relations it did not read again, so only those
 * are keyed anew (6,520 tables at scale 100).
 */
const keysOfState = new WeakMap<CatalogState, { digest: string; keys: TableKeys }>();
const keyMemo = new WeakMap<Relation, { digest: string; sql: string; reads: number[]; proofs: (RelationProof | undefined)[]; key: string; provable: boolean }>();

async function tableKeys(q: Queryable, state: CatalogState, hashed: { name: string; sql: string; oid: number }[], digest: string): Promise<TableKeys> {
  const known = keysOfState.get(state);
  if (known?.digest === digest) return known.keys;
  const relations = state.relations;
  const proofs = state.proofs ?? (await readRelationProofs(q, [...relations.keys()]));
  const familyOf = families(state.edges ?? (await readInheritance(q)));
  const keys: TableKeys = new Map();
  for (const t of hashed) {
    const rel = relations.get(t.oid)!;
    // every relation the content query reads: the table, the tables it dereferences, and their families
    const refs = rel.foreignKeys.length ? derefs(rel, relations) : [];
    const reads = refs.length ? [...new Set([rel.oid, ...refs.map((fk) => fk.ref)].flatMap(familyOf))].sort((a, b) => a - b) : familyOf(rel.oid);
    const memberProofs = reads.map((oid) => (relations.has(oid) ? proofs.get(oid) : undefined));
    // the same inputs (the proofs' objects are kept for the relations a catalog update did not read again): the same key
    const memo = keyMemo.get(rel);
    if (memo && memo.digest === digest && memo.sql === t.sql && sameItems(memo.reads, reads) && sameItems(memo.proofs, memberProofs)) {
      keys.set(t.name, { key: memo.key, provable: memo.provable, reads });
      continue;
    }
    const provable = memberProofs.every((p) => p !== undefined && p.trigger !== null && !p.rls);
    const key = sha1([digest, t.sql, ...reads.map((oid, i) => `${oid}:${describe(memberProofs[i])}`)].join('\n'));
    keyMemo.set(rel, { digest, sql: t.sql, reads, proofs: memberProofs, key, provable });
    keys.set(t.name, { key, provable, reads });
  }
  keysOfState.set(state, { digest, keys });
  return keys;
}

/** The content query of each hashed table of a catalog state, computed once per state (see `memoContentQuery` for what is kept across states). */
const queriesOfState = new WeakMap<CatalogState, { name: string; sql: string; oid: number }[]>();

function contentQueries(state: CatalogState): { name: string; sql: string; oid: number }[] {
  let all = queriesOfState.get(state);
  if (!all) {
    all = [...state.relations.values()].filter((r) => r.hashed).map((r) => ({ name: r.name, sql: memoContentQuery(r, state.relations), oid: r.oid }));
    queriesOfState.set(state, all);
  }
  return all;
}

/**
 * A table's content query depends on the table, the tables its foreign keys
 * reference, and theirs (whether a referenced column is volatile): kept with
 * the relation objects it was made from. A catalog brought up to date keeps
 * the objects of the relations it did not read again.
 */
const queryMemo = new WeakMap<Relation, { sql: string; inputs: (Relation | undefined)[] }>();

function memoContentQuery(rel: Relation, all: Map<number, Relation>): string {
  const inputs: (Relation | undefined)[] = [];
  for (const fk of rel.foreignKeys) {
    const ref = all.get(fk.ref);
    inputs.push(ref);
    if (ref) for (const f of ref.foreignKeys) inputs.push(all.get(f.ref));
  }
  const memo = queryMemo.get(rel);
  if (memo && sameItems(memo.inputs, inputs)) return memo.sql;
  const sql = contentQuery(rel, all);
  queryMemo.set(rel, { sql, inputs });
  return sql;
}

/** A copy of a large record: a for-in loop copies 33,000 entries in half the time of a spread. */
function copyRecord(from: Record<string, string>): Record<string, string> {
  const to: Record<string, string> = {};
  for (const key in from) to[key] = from[key]!;
  return to;
}

function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function describe(p: RelationProof | undefined): string {
  return p ? `${p.storage}:${p.trigger ?? '-'}:${p.rls}` : 'absent';
}

/** Each relation's inheritance or partition family (the connected set of parents and children), itself included. */
function families(edges: [number, number][]): (oid: number) => number[] {
  const parent = new Map<number, number>();
  const find = (x: number): number => {
    let r = x;
    while (parent.has(r) && parent.get(r) !== r) r = parent.get(r)!;
    return r;
  };
  for (const [a, b] of edges) {
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent.set(ra, rb);
  }
  const members = new Map<number, number[]>();
  for (const [a, b] of edges) for (const x of [a, b]) members.set(find(x), [...new Set([...(members.get(find(x)) ?? []), x])]);
  // (each family sorted once: a table's reads are its family when it dereferences nothing)
  for (const [root, list] of members) members.set(root, list.sort((a, b) => a - b));
  return (oid) => members.get(find(oid)) ?? [oid];
}

function outOfLocks(e: DbError, done: number, total: number): TargetError {
  return new TargetError(
    `fingerprint: the server ran out of lock slots after ${done} of ${total} tables (${e.message}); ` +
      'run the fingerprint outside an explicit transaction (each batch then releases its locks), or raise max_locks_per_transaction',
  );
}

/**
 * Fingerprints a database nobody else writes to (a clone) on two
 * connections at once where the target has more than one: about half the
 * time on a server with two cores or more. `lane`: the second connection,
 * kept by the caller across fingerprints of one clone (a new server process
 * fills its catalog caches first: at 6,500 tables, beside the objects'
 * read, the lane's catalog reads took 0.92–1.18 s in a new session and
 * 0.76–0.86 s in a kept one); else one is opened and closed.
 */
export async function fingerprintClone(db: Db, options: Omit<FingerprintOptions, 'lanes' | 'instance'> & { lane?: Db } = {}): Promise<Fingerprint> {
  const { lane, ...rest } = options;
  const own = { ...rest, instance: `${db.capabilities.driver} ${db.displayUrl}` };
  if (db.capabilities.singleConnection) return fingerprint(db, own);
  if (lane) return fingerprint(db, { ...own, lanes: [lane] });
  const second = await db.sibling();
  // tiergate's own connection, for this fingerprint's reads only (as a kept lane: src/rehearsal/rehearse.ts)
  keepJitOff(second);
  // Ctrl-C: the hash of a table of gigabytes is not waited for — its statements are cancelled (from a third connection);
  // and a process killed outright has its statements ended by the server within seconds (PostgreSQL 14 and later)
  if (db.capabilities.serverVersion >= 140000) await Promise.all([db, second].map((c) => c.exec("set client_connection_check_interval = '2s'")));
  const stopCancelling = options.signal ? await cancelAtAbort(db, [db, second], options.signal) : () => undefined;
  try {
    return await fingerprint(db, { ...own, lanes: [second] });
  } catch (e) {
    // (a statement of the catalog's side cancelled at Ctrl-C, before the batches: the interruption, not a failure)
    if (options.signal?.aborted && !(e instanceof InterruptedError)) throw new InterruptedError('interrupted (Ctrl-C) while fingerprinting');
    throw e;
  } finally {
    stopCancelling();
    await second.close();
  }
}

/**
 * Cancels, when `signal` aborts, whatever `connections` are running
 * (pg_cancel_backend from a connection of its own): a statement hashing one
 * large table would otherwise run on for minutes after Ctrl-C, on the server
 * too. Returns what stops listening.
 */
export async function cancelAtAbort(db: Db, connections: Db[], signal: AbortSignal): Promise<() => void> {
  const pids = await Promise.all(connections.map(async (c) => (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid));
  const cancel = () => {
    void (async () => {
      const other = await db.sibling();
      try {
        await other.query('select pg_cancel_backend(pid) from unnest($1::int[]) pid', [pids]);
      } finally {
        await other.close();
      }
    })().catch(() => undefined);
  };
  if (signal.aborted) cancel();
  else signal.addEventListener('abort', cancel, { once: true });
  return () => signal.removeEventListener('abort', cancel);
}

/**
 * Fingerprints a clone or snapshot tiergate has just made and marked
 * (nothing has run on it) and stores its table hashes in it, with the
 * change log's position (`tiergate.fingerprint_baseline`): a rehearsal of it,
 * or of any copy of it, starts from them (`loadBaseline`) instead of hashing
 * every table once more. The hashes count only where the cache's rules prove
 * them for the database they are read in, like any cached hash. `defer`:
 * large tables are not hashed, their hashes deferred (`DEFERRED`): a
 * rehearsal's tiers seldom write the gigabytes of an activity log, and a
 * table no tier writes compares equal on every copy by its token alone.
 * Returns how many tables it left unhashed.
 */
export async function recordBaseline(db: Db, options: { progress?: (message: string) => void; signal?: AbortSignal; defer?: FingerprintOptions['defer'] } = {}): Promise<number> {
  const cache = new FingerprintCache();
  // a line every 5 s while it hashes (every row of every table: minutes on a source of gigabytes), with the tables done so far
  let hashed = 0;
  let total = 0;
  const say = (s: number) =>
    options.progress?.(`hashing the copy's tables for its baseline: ${hashed.toLocaleString('en')} of ${total ? total.toLocaleString('en') : '…'} (${s} s${hashed < total ? '; a table of gigabytes takes minutes' : ''})`);
  await sayingWhileSilent(5000, say, () => fingerprintClone(db, { cache, signal: options.signal, defer: options.defer, onProgress: (h, t) => void ([hashed, total] = [h, t]) }));
  const deferred = cache.last.deferred;
  if (deferred && options.defer) {
    options.progress?.(
      `${deferred.toLocaleString('en')} table${deferred === 1 ? '' : 's'} of ${options.defer.minBytes / 1048576} MB and more left unhashed: hashed only where a rehearsal's tiers change ${deferred === 1 ? 'it' : 'them'}`,
    );
  }
  const entry = cache.exportLatest();
  if (!entry) return 0;
  await db.transaction(async (tx) => {
    await tx.exec(`create table if not exists tiergate.fingerprint_baseline (entry text not null);
      alter table tiergate.fingerprint_baseline add column if not exists catalog text;
      delete from tiergate.fingerprint_baseline`);
    await tx.query('insert into tiergate.fingerprint_baseline (entry, catalog) values ($1, $2)', [entry, cache.exportCatalog()]);
  });
  return deferred;
}

/**
 * Adds the baseline `recordBaseline` stored in this database to `cache` —
 * its table hashes, and its catalog read (a snapshot kept by an earlier
 * tiergate has none) — false when it has none. For a cache used on this
 * clone and its copies only (a rehearsal's).
 */
export async function loadBaseline(q: Queryable, cache: FingerprintCache): Promise<boolean> {
  const present = await q.query<{ ok: boolean }>(`select to_regclass('tiergate.fingerprint_baseline') is not null as ok`);
  if (!present.rows[0]?.ok) return false;
  const r = await q.query<{ entry: string; catalog: string | null }>(`select b.entry, to_jsonb(b) ->> 'catalog' as catalog from tiergate.fingerprint_baseline b limit 1`);
  const entry = r.rows[0]?.entry;
  if (!entry) return false;
  cache.importEntry(entry);
  const catalog = r.rows[0]?.catalog;
  if (catalog) cache.importCatalog(catalog);
  return true;
}

/**
 * A clone's seal: its catalog's version, its change log's position
 * (src/probe/change-log.ts), and the content of each table the log cannot
 * vouch for (a table a tier created after the log was installed: the
 * whole text of its rows, order-independent). Two equal seals of one clone
 * prove its fingerprint the same without reading either — the cache's own
 * proof (`FingerprintCache`), for every table at once: no catalog row
 * changed (the version), no vouched-for table written (the log has not
 * moved, its guard and functions as they were), and the others' rows as
 * they were. A catalog read is ~0.7 s at 6,500 tables; a seal is three
 * small queries and the rows of the tables the tiers created. Stage A
 * proves a blocked tier changed nothing with two seals
 * (src/rehearsal/rehearse.ts). Compare seals of one database only: a
 * copy's version can read alike.
 */
export interface Seal {
  version: string;
  log: GlobalProof;
  /** `schema.table` → its rows' digest, for each table the log cannot vouch for */
  tables: Record<string, string>;
  /** those tables (the same while the catalog's version is) */
  unvouched: { name: string; qualified: string }[];
}

/**
 * The seal of a clone nobody else writes to; null without a change log.
 * `previous`: an earlier seal of the same database — while the catalog's
 * version is the same, so are the tables the log cannot vouch for.
 * `lane`: a second connection to the same database, on which the tables
 * the log cannot vouch for are listed meanwhile (a catalog read that
 * depends on no setting of the session): at 6,500 tables the seal's three
 * reads are ~45, ~55 and ~55 ms.
 */
export async function sealOf(q: Queryable, options: { excludeSchemas?: string[]; previous?: Seal | null; lane?: Queryable } = {}): Promise<Seal | null> {
  const excluded = [TIERGATE_SCHEMA, ...(options.excludeSchemas ?? [])];
  const listed = options.lane && !options.previous ? withoutJit(options.lane, () => unvouchedTables(options.lane!, excluded)) : null;
  listed?.catch(() => undefined);
  return withoutJit(q, async () => {
    // (nothing is left running on the lane when this returns or throws)
    const [read] = await both(
      readGlobalProof(q).then(async (log) => (log ? { log, version: await catalogVersion(q) } : null)),
      listed ?? Promise.resolve(null),
    );
    if (!read) return null;
    const { log, version } = read;
    const unvouched = options.previous?.version === version ? options.previous.unvouched : ((await listed) ?? (await unvouchedTables(q, excluded)));
    const tables: Record<string, string> = {};
    for (let i = 0; i < unvouched.length; i += TABLES_PER_BATCH) {
      const batch = unvouched.slice(i, i + TABLES_PER_BATCH);
      const sql = batch.map((t) => summedRows('(t.*)::text', t.qualified));
      for (const row of (await q.query<{ name: string; c: string }>(BATCH_SQL, [batch.map((t) => t.name), sql])).rows) tables[row.name] = row.c;
    }
    return { version, log, tables, unvouched };
  });
}

/** Whether two seals of one database prove its fingerprint unchanged. */
export function sameSeal(a: Seal, b: Seal): boolean {
  return (
    a.version === b.version && a.log.seq === b.log.seq && a.log.nonce === b.log.nonce && a.log.n === b.log.n && a.log.digest === b.log.digest && differing(a.tables, b.tables).length === 0
  );
}

/** What moved between two seals of one database, in a fingerprint diff's words. */
export async function sealChange(q: Queryable, before: Seal, after: Seal): Promise<string> {
  const parts: string[] = [];
  const list = (xs: string[]) => xs.slice(0, 10).join(', ') + (xs.length > 10 ? ` (+${xs.length - 10})` : '');
  if (after.version !== before.version) parts.push('objects differ: the catalog changed');
  if (after.log.digest !== before.log.digest) parts.push("the change log's own objects, a type or a setting that shapes a value's text changed");
  if (after.log.seq !== before.log.seq || after.log.n !== before.log.n || after.log.nonce !== before.log.nonce) {
    const written = await tablesWrittenSince(q, before.log);
    if (written === null) parts.push('the change log was rewritten');
    else if (written.length) parts.push(`tables written: ${list(written)}`);
  }
  const differ = differing(before.tables, after.tables);
  if (differ.length) parts.push(`table contents differ: ${list(differ)}`);
  return parts.join('; ') || 'the seal changed';
}

/**
 * The catalog entries and tables that differ between two fingerprints
 * (changed, added or removed), sorted. Two fingerprints of one hash differ
 * in nothing (`sameFingerprint`): not compared key by key (33,000 catalog
 * entries at 6,500 tables, ~20 ms).
 */
export function diffFingerprints(a: Fingerprint, b: Fingerprint): FingerprintDiff {
  if (sameFingerprint(a, b)) return { objects: [], tables: [] };
  return { objects: differing(a.catalog, b.catalog), tables: differing(a.tables, b.tables) };
}

export function sameFingerprint(a: Fingerprint, b: Fingerprint): boolean {
  return a.hash === b.hash;
}

function differing(a: Record<string, string>, b: Record<string, string>): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => a[k] !== b[k]).sort();
}

function hashOf(catalog: Record<string, string>, tables: Record<string, string>): string {
  const h = createHash('sha256').update(`catalog\t${catalogSum(catalog).toString(16)}\n`);
  for (const line of Object.entries(tables).map(([k, v]) => `table\t${k}\t${v}\n`).sort()) h.update(line);
  return h.digest('hex');
}

/**
 * The catalog's part of a fingerprint's hash: the sum of the md5 of each of
 * its lines, modulo 2^128 — independent of order, so a catalog brought up to
 * date (`updateCatalogState`) gets its sum from the last one's and the lines
 * it changed, instead of sorting and hashing 33,000 lines again.
 */
const catalogSums = new WeakMap<Record<string, string>, bigint>();
const SUM_MOD = 1n << 128n;

function lineSum(key: string, def: string): bigint {
  return BigInt(`0x${createHash('md5').update(`catalog\t${key}\t${def}\n`).digest('hex')}`);
}

function catalogSum(catalog: Record<string, string>): bigint {
  let sum = catalogSums.get(catalog);
  if (sum === undefined) {
    sum = 0n;
    for (const key in catalog) sum += lineSum(key, catalog[key]!);
    sum %= SUM_MOD;
    catalogSums.set(catalog, sum);
  }
  return sum;
}

// ---------------------------------------------------------------- catalog

// ---------------------------------------------------------------- content

interface Column {
  name: string;
  volatile: boolean;
}

interface Relation {
  oid: number;
  /** schema.table */
  name: string;
  qualified: string;
  /** a base table: its rows are hashed (partitioned parents are hashed through their partitions) */
  hashed: boolean;
  columns: Column[];
  /** foreign keys of this table, in constraint-name order */
  foreignKeys: { columns: string[]; ref: number; refColumns: string[] }[];
}

const RELATIONS_SQL = `
with ns as (${USER_SCHEMAS})
select c.oid::int8 as oid, ns.nspname as schema, c.relname as table, c.relkind = 'r' as hashed,
       coalesce(array_agg(a.attname::text order by a.attnum) filter (where a.attnum is not null), '{}') as cols,
       coalesce(array_agg(a.attidentity <> ''
                   or coalesce(pg_get_expr(d.adbin, d.adrelid) ~* $2, false)
                   or (a.atttypid in ('timestamptz'::regtype, 'timestamp'::regtype) and a.attname ~* $3)
                 order by a.attnum) filter (where a.attnum is not null), '{}') as vol
  from pg_class c join ns on ns.oid = c.relnamespace
  left join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
  left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
 where c.relkind in ('r', 'p') and ($4::int8[] is null or c.oid = any($4::int8[]::oid[]))
 group by c.oid, ns.nspname, c.relname, c.relkind`;

/** The names of columns `keys` of relation `rel`, in key order; a key of one column (most) is one index lookup. */
const keyNames = (keys: string, rel: string) => `case when cardinality(${keys}) = 1
         then array[(select a.attname::text from pg_attribute a where a.attrelid = ${rel} and a.attnum = ${keys}[1])]
         else array(select a.attname::text from unnest(${keys}) with ordinality k(n, i)
                      join pg_attribute a on a.attrelid = ${rel} and a.attnum = k.n order by k.i) end`;

const FOREIGN_KEYS_SQL = `
with ns as (${USER_SCHEMAS})
select co.conrelid::int8 as rel, co.confrelid::int8 as ref,
       ${keyNames('co.conkey', 'co.conrelid')} as cols,
       ${keyNames('co.confkey', 'co.confrelid')} as refcols
  from pg_constraint co join pg_class c on c.oid = co.conrelid join ns on ns.oid = c.relnamespace
 where co.contype = 'f' and c.relkind = 'r' and ($2::int8[] is null or co.conrelid = any($2::int8[]::oid[]))
 order by co.conrelid, co.conname`;

/** The user tables (only those of `only`, by oid, when given), their columns and foreign keys. */
async function readRelations(q: Queryable, excluded: string[], only: number[] | null = null): Promise<Map<number, Relation>> {
  const out = new Map<number, Relation>();
  const rels = await q.query<{ oid: number; schema: string; table: string; hashed: boolean; cols: string[]; vol: boolean[] }>(
    RELATIONS_SQL,
    [excluded, VOLATILE_DEFAULT, VOLATILE_TIMESTAMP_NAME, only],
  );
  for (const r of rels.rows) {
    out.set(Number(r.oid), {
      oid: Number(r.oid),
      name: `${r.schema}.${r.table}`,
      qualified: `${ident(r.schema)}.${ident(r.table)}`,
      hashed: r.hashed,
      columns: r.cols.map((name, i) => ({ name, volatile: r.vol[i] === true })),
      foreignKeys: [],
    });
  }
  const fks = await q.query<{ rel: number; ref: number; cols: string[]; refcols: string[] }>(FOREIGN_KEYS_SQL, [excluded, only]);
  for (const fk of fks.rows) out.get(Number(fk.rel))?.foreignKeys.push({ columns: fk.cols, ref: Number(fk.ref), refColumns: fk.refcols });
  return out;
}

/** Runs each table's content query by text, one row per table (`$1` names, `$2` queries). */
const BATCH_SQL = `select u.name, substring(query_to_xml(u.q, false, true, '')::text from '<c>([^<]*)</c>') as c
  from unnest($1::text[], $2::text[]) as u(name, q)`;

/**
 * One table's content as `rows:md5`, order-independent: each row's text
 * hashed twice (`ROW_HASH`), each hash summed over the rows as numeric, the
 * md5 of both sums: no sort and constant memory whatever the table's size.
 */
function contentQuery(rel: Relation, all: Map<number, Relation>): string {
  const viaDeref = new Set(derefs(rel, all).flatMap((fk) => fk.columns));
  const items: string[] = [];
  for (const col of rel.columns) {
    if (col.volatile) items.push(`(t.${ident(col.name)} is null)`);
    else if (!viaDeref.has(col.name)) items.push(`t.${ident(col.name)}`);
  }
  for (const fk of derefs(rel, all)) {
    const ref = all.get(fk.ref)!;
    const join = fk.columns.map((c, i) => `r.${ident(fk.refColumns[i]!)} = t.${ident(c)}`).join(' and ');
    items.push(`(select ${rowHash(stableItems(ref, all, 'r'))} from ${ref.qualified} r where ${join})`);
  }
  return summedRows(items.length ? `row(${items.join(', ')})::text` : `''`, rel.qualified);
}

/**
 * How a table's rows are hashed (a snapshot records it: its baseline holds
 * only under the same): each row's text by PostgreSQL's own
 * `hashtextextended` under two seeds, 128 bits a row. It was the row's md5
 * split into two 64-bit halves, summed the same way: the same strength
 * against an accidental collision (a sum of row hashes is no defence
 * against rows crafted to collide under either), and four times the cost —
 * at 33,700 rows of Directus's field table 123 ms against 32 ms, of which
 * the rows' text is 27 ms (docs/performance.md).
 */
export const ROW_HASH = 'hashtextextended-2x64';

/**
 * The content of `qualified` (aliased `t`) as `rows:md5`: `text` is each
 * row's text, computed once (OFFSET 0 keeps the planner from computing it
 * for each hash), hashed under two seeds, each summed over the rows.
 */
function summedRows(text: string, qualified: string): string {
  return `select count(*) || ':' || md5(coalesce(sum(hashtextextended(h, 0)), 0) || ':' || coalesce(sum(hashtextextended(h, 1)), 0)) as c from (select ${text} as h from ${qualified} t offset 0) x`;
}

/** The foreign keys whose referenced row's content is hashed in place of the key (they refer to a volatile column). */
function derefs(rel: Relation, all: Map<number, Relation>): Relation['foreignKeys'] {
  return rel.foreignKeys.filter((fk) => referencesVolatile(fk, all));
}

/** A referenced row's content: its columns that are neither volatile nor themselves keys to volatile columns. */
function stableItems(rel: Relation, all: Map<number, Relation>, alias: string): string[] {
  const unstable = new Set(rel.foreignKeys.filter((fk) => referencesVolatile(fk, all)).flatMap((fk) => fk.columns));
  return rel.columns.map((c) => (c.volatile || unstable.has(c.name) ? `(${alias}.${ident(c.name)} is null)` : `${alias}.${ident(c.name)}`));
}

function referencesVolatile(fk: Relation['foreignKeys'][number], all: Map<number, Relation>): boolean {
  const ref = all.get(fk.ref);
  return ref !== undefined && ref.columns.some((c) => c.volatile && fk.refColumns.includes(c.name));
}

function rowHash(items: string[]): string {
  return items.length ? `md5(row(${items.join(', ')})::text)` : `md5('')`;
}

function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
