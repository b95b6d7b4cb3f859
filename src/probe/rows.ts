import type { Queryable } from '../db/port.js';
import type { RowChanges } from '../evidence/types.js';
import { identifierParts } from './identifiers.js';
import { currentSettings, NAME_TEXT_SETTINGS, VALUE_TEXT_SETTINGS } from './settings.js';

/**
 * A row's hash, before and after a tier in the same transaction: 64 bits of
 * its text form. A changed row is missed only if both hashes collide (one in
 * 2^64); md5 cost twice as much per row on Directus's wide tables (3,370
 * rows of directus_fields: 7.7 ms against 4.4 ms, of which 4.1 ms is the
 * text form itself).
 */
const ROW_HASH = 'hashtextextended((t.*)::text, 0)';

/**
 * How far back the row versions the "before" hashed reach, as the age of
 * the oldest transaction still running when it was read (`age()` counts
 * from one point fixed for the whole transaction): a row version whose
 * writer is older than that committed before the "before" read, so that
 * read hashed this very version. A version is written once and never
 * changed in place (an UPDATE writes a new one, with its own writer), so
 * after the tier such a row needs no hash: its text is the one hashed
 * before — unless the text form of the same version changed, which only a
 * change of the catalog (a column added with a default, an enum label
 * renamed, a type altered) or of an output setting can do. PostgreSQL 13
 * and later (`pg_current_snapshot`, `xid(xid8)`).
 */
const HORIZON = 'age(xid(pg_snapshot_xmin(pg_current_snapshot())))::int8';

/**
 * Rows of the system catalogs this transaction inserted, updated or deleted
 * so far (the statistics' per-transaction counters, which only grow within
 * a transaction and count aborted subtransactions too): any DDL, whoever
 * runs it (a trigger, a function), moves it. Read after the "before"
 * snapshots (their temp tables are catalog rows) and again after the tier.
 * The planner's statistics are left out: an ANALYZE (the bundled data tiers
 * run one after each bulk write) changes no value's text.
 */
const CATALOG_WRITES = `(select coalesce(sum(pg_stat_get_xact_tuples_inserted(c.oid) + pg_stat_get_xact_tuples_updated(c.oid)
                           + pg_stat_get_xact_tuples_deleted(c.oid)), 0)::int8
                          from pg_class c where c.oid < 16384 and c.relkind = 'r'
                           and c.oid not in ('pg_catalog.pg_statistic'::regclass, 'pg_catalog.pg_statistic_ext_data'::regclass))`;

/**
 * The rows of the system catalogs this transaction has written so far
 * (CATALOG_WRITES), as text: what a data tier's run is told by (DDL it ran
 * moves it; another session's does not).
 */
export async function catalogWritesSoFar(tx: Queryable): Promise<string> {
  return String((await tx.query<{ n: string }>(`select ${CATALOG_WRITES} as n`)).rows[0]?.n ?? '0');
}

/** The settings that change how a value prints (src/probe/settings.ts: dates, times, intervals, floats, bytea, money, names), and XML's. */
const OUTPUT_SETTINGS = `concat_ws(E'\\n', ${currentSettings([...VALUE_TEXT_SETTINGS, ...NAME_TEXT_SETTINGS, 'xmlbinary', 'xmloption'])})`;

/** What the row versions' shortcut needs to know the "before" from the "after": see HORIZON. */
interface Versions {
  horizon: number;
  catalogWrites: string;
  output: string;
}

/** A relation whose rows a tier writes, resolved before the tier runs. */
interface Watched {
  /** schema.table as the catalog names it */
  name: string;
  oid: number;
  /** the temp table holding (key, hash) of every row before the tier */
  snapshot: string;
  /** primary-key columns (quoted), empty: compare row hashes as a multiset */
  key: string[];
  /** schema.table quoted, as it was named before the tier */
  qualified: string;
}

/**
 * Row-level before/after for the relations a tier writes. The relations come
 * from the parser (so the cost follows what the tier touches, not the size of
 * the database); snapshots are temp tables dropped at commit. Each step is
 * one round trip whatever the number of relations (the names resolved at
 * once, the snapshots created by one script, the differences counted by one
 * query): a tier of the bundled plan watches up to four relations, and a
 * round trip costs as much as a small query on a busy machine.
 */
export class RowWatch {
  private constructor(
    private readonly watched: Watched[],
    /** relations that did not exist before the tier: counted after */
    private readonly missing: string[],
    /** relations the tier drops: their row counts before */
    private readonly dropCounts: Map<string, number>,
    /** null: every row is hashed again after the tier */
    private readonly versions: Versions | null,
  ) {}

  /** Relations whose last finish() hashed only the row versions the tier wrote (HORIZON): the others were hashed whole. */
  byVersions: string[] = [];

  /**
   * @param writes relation names as written in the SQL (`axis.ownership`, `ownership`), resolved with the search_path
   * @param drops relations the tier drops
   * @param options.versions the server has `pg_current_snapshot` (PostgreSQL 13 and later): rows the tier did not write are not hashed again (HORIZON)
   */
  static async start(tx: Queryable, writes: string[], drops: string[], options: { versions?: boolean } = {}): Promise<RowWatch> {
    const watched: Watched[] = [];
    const missing: string[] = [];
    const wanted = unique(writes);
    const { infos: found, horizon } = await resolveWithHorizon(tx, wanted, options.versions === true);
    for (const [i, rel] of wanted.entries()) {
      const info = found[i];
      if (!info) {
        missing.push(rel);
        continue;
      }
      if (watched.some((w) => w.oid === info.oid)) continue;
      watched.push({ name: info.name, oid: info.oid, snapshot: `tiergate_rows_${watched.length}`, key: info.key, qualified: info.qualified });
    }
    if (watched.length) {
      await tx.exec(
        watched
          .map((w) => `create temp table ${w.snapshot} on commit drop as select ${w.key.length ? w.key.join(', ') + ', ' : ''}${ROW_HASH} as tiergate_hash from ${w.qualified} t`)
          .join(';\n'),
      );
    }
    let versions: Versions | null = null;
    if (horizon !== null && watched.some((w) => w.key.length)) {
      const r = await tx.query<{ writes: string; output: string; counts: boolean }>(
        `select ${CATALOG_WRITES} as writes, ${OUTPUT_SETTINGS} as output, current_setting('track_counts')::bool as counts`,
      );
      const row = r.rows[0];
      // without track_counts the counters never move: nothing would tell a catalog change
      if (row?.counts) versions = { horizon, catalogWrites: String(row.writes), output: row.output };
    }
    const dropped = (await resolve(tx, unique(drops))).filter((d): d is RelationInfo => d !== null);
    const counts = await countRows(tx, dropped.map((d) => d.qualified));
    const dropCounts = new Map<string, number>();
    for (const [i, d] of dropped.entries()) if (!dropCounts.has(d.name)) dropCounts.set(d.name, counts[i]!);
    return new RowWatch(watched, missing, dropCounts, versions);
  }

  /** Rows added / removed / changed per relation, after the tier ran (same transaction). */
  async finish(tx: Queryable): Promise<Record<string, RowChanges>> {
    const out: Record<string, RowChanges> = {};
    // where each watched relation is now (the tier may have renamed or dropped it)
    const now = new Map<number, string>();
    // the row versions' shortcut holds when no catalog row and no output setting changed since the "before"
    let horizon: number | null = null;
    if (this.watched.length) {
      const v = this.versions;
      const r = await tx.query<{ oid: number; q: string; same: boolean | null }>(
        `select c.oid::int as oid, quote_ident(n.nspname) || '.' || quote_ident(c.relname) as q,
                ${v ? `(${CATALOG_WRITES} = $2::int8 and ${OUTPUT_SETTINGS} = $3)` : 'null::bool'} as same
           from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid = any($1::oid[])`,
        [this.watched.map((w) => w.oid), ...(v ? [v.catalogWrites, v.output] : [])],
      );
      for (const row of r.rows) now.set(row.oid, row.q);
      if (v && r.rows[0]?.same === true) horizon = v.horizon;
    }
    this.byVersions = [];
    const diffs = this.watched.map((w) => {
      const rel = now.get(w.oid);
      // dropped by the tier: every row it had is removed
      if (rel === undefined) return `select 0::int as added, count(*)::int as removed, 0::int as changed from ${w.snapshot}`;
      if (!w.key.length) return diffByHash(rel, w);
      if (horizon !== null) this.byVersions.push(w.name);
      return diffByKey(rel, w, horizon);
    });
    if (diffs.length) {
      const r = await tx.query<RowChanges & { i: number }>(diffs.map((d, i) => `select ${i}::int as i, d.added, d.removed, d.changed from (${d}) d`).join('\nunion all\n'));
      const byIndex = new Map(r.rows.map((row) => [row.i, row]));
      for (const [i, w] of this.watched.entries()) {
        const c = byIndex.get(i) ?? { added: 0, removed: 0, changed: 0 };
        const changes: RowChanges = { added: c.added, removed: c.removed, changed: c.changed };
        if (!now.has(w.oid) || changes.added || changes.removed || changes.changed) out[w.name] = changes;
      }
    }
    // created by the tier (or never there): every row is added; created and dropped, or never created: nothing to count
    const created = (await resolve(tx, this.missing)).filter((c): c is RelationInfo => c !== null);
    const counts = await countRows(tx, created.map((c) => c.qualified));
    for (const [i, c] of created.entries()) if (counts[i]) out[c.name] = { added: counts[i]!, removed: 0, changed: 0 };
    for (const [name, removed] of this.dropCounts) {
      if (!(name in out) && removed) out[name] = { added: 0, removed, changed: 0 };
    }
    return out;
  }
}

/**
 * The difference, by primary key: rows added, removed, and changed (same
 * key, another hash). With `horizon` (HORIZON), a row version older than
 * the "before" is not hashed (null): it is the version the "before" hashed
 * under the same key — two live rows never share a key — so it is neither
 * changed, nor added or removed (the join still counts those).
 */
function diffByKey(rel: string, w: Watched, horizon: number | null = null): string {
  const on = w.key.map((k) => `b.${k} = a.${k}`).join(' and ');
  const firstKey = w.key[0]!;
  const hash = horizon === null ? ROW_HASH : `case when age(t.xmin) > ${Math.trunc(horizon)} then null else ${ROW_HASH} end`;
  return `select count(*) filter (where b.${firstKey} is null)::int as added,
            count(*) filter (where a.${firstKey} is null)::int as removed,
            count(*) filter (where a.${firstKey} is not null and b.${firstKey} is not null and a.tiergate_hash <> b.tiergate_hash)::int as changed
       from (select ${w.key.join(', ')}, ${hash} as tiergate_hash from ${rel} t) a
       full join ${w.snapshot} b on ${on}`;
}

/** Without a key, a changed row is one removed and one added: multiset difference of row hashes. */
function diffByHash(rel: string, w: Watched): string {
  return `with a as (select ${ROW_HASH} h, count(*) n from ${rel} t group by 1),
          b as (select tiergate_hash h, count(*) n from ${w.snapshot} group by 1)
     select coalesce(sum(greatest(coalesce(a.n, 0) - coalesce(b.n, 0), 0)), 0)::int as added,
            coalesce(sum(greatest(coalesce(b.n, 0) - coalesce(a.n, 0), 0)), 0)::int as removed,
            0::int as changed
       from a full join b on a.h = b.h`;
}

/** The row count of each relation (quoted, schema-qualified), in one query. */
async function countRows(tx: Queryable, qualified: string[]): Promise<number[]> {
  if (!qualified.length) return [];
  const r = await tx.query<Record<string, number>>(`select ${qualified.map((q, i) => `(select count(*) from ${q})::int as c${i}`).join(', ')}`);
  return qualified.map((_, i) => r.rows[0]?.[`c${i}`] ?? 0);
}

interface RelationInfo {
  oid: number;
  name: string;
  qualified: string;
  key: string[];
}

/** Each name (as the SQL wrote it) resolved with the search_path to an ordinary or partitioned table, or null; one query. */
async function resolve(tx: Queryable, rels: string[]): Promise<(RelationInfo | null)[]> {
  return (await resolveWithHorizon(tx, rels, false)).infos;
}

/** resolve(), and with `horizon` in the same query HORIZON (null when no relation resolved). */
async function resolveWithHorizon(tx: Queryable, rels: string[], horizon: boolean): Promise<{ infos: (RelationInfo | null)[]; horizon: number | null }> {
  if (!rels.length) return { infos: [], horizon: null };
  const r = await tx.query<{ ord: number; oid: number; name: string; qualified: string; key: string[] | null; horizon: string | null }>(
    `select w.ord::int as ord, c.oid::int as oid, n.nspname || '.' || c.relname as name, ${horizon ? HORIZON : 'null::int8'} as horizon,
            quote_ident(n.nspname) || '.' || quote_ident(c.relname) as qualified,
            (select array_agg(quote_ident(a.attname) order by k.ord)
               from pg_index i
               cross join lateral unnest(i.indkey) with ordinality as k(attnum, ord)
               join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
              where i.indrelid = c.oid and i.indisprimary) as key
       from unnest($1::text[]) with ordinality as w(rel, ord)
       join pg_class c on c.oid = to_regclass(w.rel)
       join pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r', 'p')`,
    [rels.map(quoteRelation)],
  );
  const byOrd = new Map(r.rows.map((row) => [row.ord, row]));
  const infos = rels.map((_, i) => {
    const row = byOrd.get(i + 1);
    return row ? { oid: row.oid, name: row.name, qualified: row.qualified, key: row.key ?? [] } : null;
  });
  const h = r.rows[0]?.horizon;
  return { infos, horizon: h === null || h === undefined ? null : Number(h) };
}

/** `axis.ownership` (names as the parser gives them, case kept) → `"axis"."ownership"` for to_regclass. */
function quoteRelation(rel: string): string {
  const dot = rel.indexOf('.');
  const parts = dot < 0 ? [rel] : [rel.slice(0, dot), rel.slice(dot + 1)];
  return parts.map((p) => '"' + p.replace(/"/g, '""') + '"').join('.');
}

/**
 * Whether a script calls a function or procedure that is not PostgreSQL's
 * own: one the parser cannot see into, which may write any table (or change
 * the session's settings). `calls` as the parser names them (`app.bump`,
 * `app."odd.name"`), matched by name then schema through pg_proc's name index.
 */
export async function callsUserFunction(q: Queryable, calls: string[]): Promise<boolean> {
  if (!calls.length) return false;
  // a third part (`db.schema.name`) leaves the database out
  const names = calls.map(identifierParts).map((p) => ({ schema: p.length > 1 ? p[p.length - 2]! : null, name: p[p.length - 1]! }));
  const r = await q.query<{ user: boolean }>(
    `select exists (select 1 from unnest($1::text[], $2::text[]) as c(schema, name)
                      join pg_proc p on p.proname = c.name
                      join pg_namespace n on n.oid = p.pronamespace
                     where n.nspname not in ('pg_catalog', 'information_schema')
                       and (c.schema is null or n.nspname = c.schema)) as user`,
    [names.map((x) => x.schema), names.map((x) => x.name)],
  );
  return Boolean(r.rows[0]?.user);
}

/**
 * The relations whose rows a script may change: what the parser saw it write
 * or alter, widened to every table of the plan's schemas when the parser
 * cannot be exact (EXECUTE of a built string) or the script calls a
 * user-defined function (`callsUser`: callsUserFunction), which may write anything.
 */
export async function relationsToWatch(
  q: Queryable,
  touched: { writes: string[]; alters: string[]; incomplete: string[] } | null,
  schemas: string[],
  callsUser: boolean,
): Promise<string[]> {
  const exact = touched ? [...touched.writes, ...touched.alters] : [];
  if (touched && touched.incomplete.length === 0 && !callsUser) return exact;
  const all = await q.query<{ name: string }>(
    `select n.nspname || '.' || c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = any($1::text[]) and c.relkind in ('r', 'p') order by 1`,
    [schemas],
  );
  return [...exact, ...all.rows.map((r) => r.name)];
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}
