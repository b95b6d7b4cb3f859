import { createHash } from 'node:crypto';
import type { Db, Queryable } from '../db/port.js';
import { DbError, TargetError } from '../errors.js';
import type { FingerprintDiff } from '../evidence/types.js';
import { readCatalog } from './catalog.js';

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
  const catalog: Record<string, string> = {};
  for (const o of await readCatalog(q, { except: excluded })) catalog[`${o.kind} ${o.name}`] = o.def;

  const relations = await readRelations(q, excluded);
  const queries = [...relations.values()].filter((r) => r.hashed).map((r) => ({ name: r.name, sql: contentQuery(r, relations) }));
  const tables: Record<string, string> = {};
  let next = 0;
  let failure: unknown = null;
  const lane = async (conn: Queryable) => {
    while (failure === null && next < queries.length) {
      const i = next;
      next += TABLES_PER_BATCH;
      const batch = queries.slice(i, i + TABLES_PER_BATCH);
      try {
        const rows = (await conn.query<{ name: string; c: string }>(BATCH_SQL, [batch.map((b) => b.name), batch.map((b) => b.sql)])).rows;
        for (const row of rows) tables[row.name] = row.c;
      } catch (e) {
        failure ??= e instanceof DbError && e.sqlstate === '53200' ? outOfLocks(e, i, queries.length) : e;
      }
    }
  };
  // every lane finishes its batch before an error is thrown: nothing is left running on a connection
  await Promise.all([q, ...(options.lanes ?? [])].map(lane));
  if (failure !== null) throw failure;
  return { catalog, tables, hash: hashOf(catalog, tables) };
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
 * time on a server with two cores or more.
 */
export async function fingerprintClone(db: Db, options: Omit<FingerprintOptions, 'lanes'> = {}): Promise<Fingerprint> {
  if (db.capabilities.singleConnection) return fingerprint(db, options);
  const second = await db.sibling();
  try {
    return await fingerprint(db, { ...options, lanes: [second] });
  } finally {
    await second.close();
  }
}

/** The catalog entries and tables that differ between two fingerprints (changed, added or removed), sorted. */
export function diffFingerprints(a: Fingerprint, b: Fingerprint): FingerprintDiff {
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
  const lines = [
    ...Object.entries(catalog).map(([k, v]) => `catalog\t${k}\t${v}\n`),
    ...Object.entries(tables).map(([k, v]) => `table\t${k}\t${v}\n`),
  ].sort();
  const h = createHash('sha256');
  for (const line of lines) h.update(line);
  return h.digest('hex');
}

// ---------------------------------------------------------------- catalog

/** User schemas: everything but the system ones and the excluded ($1). */
const USER_SCHEMAS = `select oid, nspname from pg_namespace
  where nspname not in ('pg_catalog', 'information_schema') and nspname !~ '^pg_(toast|temp)' and nspname <> all($1::text[])`;

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
 where c.relkind in ('r', 'p')
 group by c.oid, ns.nspname, c.relname, c.relkind`;

const FOREIGN_KEYS_SQL = `
with ns as (${USER_SCHEMAS})
select co.conrelid::int8 as rel, co.confrelid::int8 as ref,
       array(select a.attname::text from unnest(co.conkey) with ordinality k(n, i)
               join pg_attribute a on a.attrelid = co.conrelid and a.attnum = k.n order by k.i) as cols,
       array(select a.attname::text from unnest(co.confkey) with ordinality k(n, i)
               join pg_attribute a on a.attrelid = co.confrelid and a.attnum = k.n order by k.i) as refcols
  from pg_constraint co join pg_class c on c.oid = co.conrelid join ns on ns.oid = c.relnamespace
 where co.contype = 'f' and c.relkind = 'r'
 order by co.conrelid, co.conname`;

async function readRelations(q: Queryable, excluded: string[]): Promise<Map<number, Relation>> {
  const out = new Map<number, Relation>();
  const rels = await q.query<{ oid: number; schema: string; table: string; hashed: boolean; cols: string[]; vol: boolean[] }>(
    RELATIONS_SQL,
    [excluded, VOLATILE_DEFAULT, VOLATILE_TIMESTAMP_NAME],
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
  const fks = await q.query<{ rel: number; ref: number; cols: string[]; refcols: string[] }>(FOREIGN_KEYS_SQL, [excluded]);
  for (const fk of fks.rows) out.get(Number(fk.rel))?.foreignKeys.push({ columns: fk.cols, ref: Number(fk.ref), refColumns: fk.refcols });
  return out;
}

/** Runs each table's content query by text, one row per table (`$1` names, `$2` queries). */
const BATCH_SQL = `select u.name, substring(query_to_xml(u.q, false, true, '')::text from '<c>([^<]*)</c>') as c
  from unnest($1::text[], $2::text[]) as u(name, q)`;

/**
 * One table's content as `rows:md5`, order-independent: the sum of its row
 * hashes (two 64-bit halves of each row's md5, summed as numeric), so no
 * sort and constant memory whatever the table's size.
 */
function contentQuery(rel: Relation, all: Map<number, Relation>): string {
  const derefs = rel.foreignKeys.filter((fk) => referencesVolatile(fk, all));
  const viaDeref = new Set(derefs.flatMap((fk) => fk.columns));
  const items: string[] = [];
  for (const col of rel.columns) {
    if (col.volatile) items.push(`(t.${ident(col.name)} is null)`);
    else if (!viaDeref.has(col.name)) items.push(`t.${ident(col.name)}`);
  }
  for (const fk of derefs) {
    const ref = all.get(fk.ref)!;
    const join = fk.columns.map((c, i) => `r.${ident(fk.refColumns[i]!)} = t.${ident(c)}`).join(' and ');
    items.push(`(select ${rowHash(stableItems(ref, all, 'r'))} from ${ref.qualified} r where ${join})`);
  }
  const sum = (from: number) => `coalesce(sum(('x' || substr(h, ${from}, 16))::bit(64)::bigint), 0)`;
  return `select count(*) || ':' || md5(${sum(1)} || ':' || ${sum(17)}) as c from (select ${rowHash(items)} as h from ${rel.qualified} t) x`;
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
