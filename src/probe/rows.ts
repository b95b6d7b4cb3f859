import type { Queryable } from '../db/port.js';
import type { RowChanges } from '../evidence/types.js';

/** A relation whose rows a tier writes, resolved before the tier runs. */
interface Watched {
  /** schema.table as the catalog names it */
  name: string;
  oid: number;
  /** the temp table holding (key, hash) of every row before the tier */
  snapshot: string;
  /** primary-key columns (quoted), empty: compare row hashes as a multiset */
  key: string[];
}

/**
 * Row-level before/after for the relations a tier writes. The relations come
 * from the parser (so the cost follows what the tier touches, not the size of
 * the database); snapshots are temp tables dropped at commit.
 */
export class RowWatch {
  private constructor(
    private readonly watched: Watched[],
    /** relations that did not exist before the tier: counted after */
    private readonly missing: string[],
    /** relations the tier drops: their row counts before */
    private readonly dropCounts: Map<string, number>,
  ) {}

  /**
   * @param writes relation names as written in the SQL (`axis.ownership`, `ownership`), resolved with the search_path
   * @param drops relations the tier drops
   */
  static async start(tx: Queryable, writes: string[], drops: string[]): Promise<RowWatch> {
    const watched: Watched[] = [];
    const missing: string[] = [];
    let n = 0;
    for (const rel of unique(writes)) {
      const info = await resolve(tx, rel);
      if (!info) {
        missing.push(rel);
        continue;
      }
      if (watched.some((w) => w.oid === info.oid)) continue;
      const snapshot = `tiergate_rows_${n++}`;
      const keyList = info.key.length ? info.key.join(', ') + ', ' : '';
      await tx.exec(
        `create temp table ${snapshot} on commit drop as select ${keyList}md5(t::text) as tiergate_hash from ${info.qualified} t`,
      );
      watched.push({ name: info.name, oid: info.oid, snapshot, key: info.key });
    }
    const dropCounts = new Map<string, number>();
    for (const rel of unique(drops)) {
      const info = await resolve(tx, rel);
      if (!info) continue;
      const r = await tx.query<{ n: number }>(`select count(*)::int as n from ${info.qualified}`);
      dropCounts.set(info.name, r.rows[0]?.n ?? 0);
    }
    return new RowWatch(watched, missing, dropCounts);
  }

  /** Rows added / removed / changed per relation, after the tier ran (same transaction). */
  async finish(tx: Queryable): Promise<Record<string, RowChanges>> {
    const out: Record<string, RowChanges> = {};
    for (const w of this.watched) {
      const exists = await tx.query<{ q: string | null }>('select $1::oid::regclass::text as q from pg_class where oid = $1', [w.oid]);
      if (!exists.rows.length) {
        const r = await tx.query<{ n: number }>(`select count(*)::int as n from ${w.snapshot}`);
        out[w.name] = { added: 0, removed: r.rows[0]?.n ?? 0, changed: 0 };
        continue;
      }
      const rel = await qualifiedByOid(tx, w.oid);
      const changes = w.key.length ? await diffByKey(tx, rel, w) : await diffByHash(tx, rel, w);
      if (changes.added || changes.removed || changes.changed) out[w.name] = changes;
    }
    for (const rel of this.missing) {
      const info = await resolve(tx, rel);
      if (!info) continue; // created and dropped, or never created: nothing to count
      const r = await tx.query<{ n: number }>(`select count(*)::int as n from ${info.qualified}`);
      const added = r.rows[0]?.n ?? 0;
      if (added) out[info.name] = { added, removed: 0, changed: 0 };
    }
    for (const [name, removed] of this.dropCounts) {
      if (!(name in out) && removed) out[name] = { added: 0, removed, changed: 0 };
    }
    return out;
  }
}

async function diffByKey(tx: Queryable, rel: string, w: Watched): Promise<RowChanges> {
  const on = w.key.map((k) => `b.${k} = a.${k}`).join(' and ');
  const firstKey = w.key[0]!;
  const r = await tx.query<RowChanges>(
    `select count(*) filter (where b.${firstKey} is null)::int as added,
            count(*) filter (where a.${firstKey} is null)::int as removed,
            count(*) filter (where a.${firstKey} is not null and b.${firstKey} is not null and a.tiergate_hash <> b.tiergate_hash)::int as changed
       from (select ${w.key.join(', ')}, md5(t::text) as tiergate_hash from ${rel} t) a
       full join ${w.snapshot} b on ${on}`,
  );
  return r.rows[0] ?? { added: 0, removed: 0, changed: 0 };
}

/** Without a key, a changed row is one removed and one added: multiset difference of row hashes. */
async function diffByHash(tx: Queryable, rel: string, w: Watched): Promise<RowChanges> {
  const r = await tx.query<{ added: number; removed: number }>(
    `with a as (select md5(t::text) h, count(*) n from ${rel} t group by 1),
          b as (select tiergate_hash h, count(*) n from ${w.snapshot} group by 1)
     select coalesce(sum(greatest(coalesce(a.n, 0) - coalesce(b.n, 0), 0)), 0)::int as added,
            coalesce(sum(greatest(coalesce(b.n, 0) - coalesce(a.n, 0), 0)), 0)::int as removed
       from a full join b on a.h = b.h`,
  );
  const row = r.rows[0] ?? { added: 0, removed: 0 };
  return { added: row.added, removed: row.removed, changed: 0 };
}

interface RelationInfo {
  oid: number;
  name: string;
  qualified: string;
  key: string[];
}

async function resolve(tx: Queryable, rel: string): Promise<RelationInfo | null> {
  const r = await tx.query<{ oid: number; name: string; qualified: string; key: string[] | null }>(
    `select c.oid::int as oid, n.nspname || '.' || c.relname as name,
            quote_ident(n.nspname) || '.' || quote_ident(c.relname) as qualified,
            (select array_agg(quote_ident(a.attname) order by k.ord)
               from pg_index i
               cross join lateral unnest(i.indkey) with ordinality as k(attnum, ord)
               join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
              where i.indrelid = c.oid and i.indisprimary) as key
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.oid = to_regclass($1) and c.relkind in ('r', 'p')`,
    [quoteRelation(rel)],
  );
  const row = r.rows[0];
  return row ? { oid: row.oid, name: row.name, qualified: row.qualified, key: row.key ?? [] } : null;
}

async function qualifiedByOid(tx: Queryable, oid: number): Promise<string> {
  const r = await tx.query<{ q: string }>(
    `select quote_ident(n.nspname) || '.' || quote_ident(c.relname) as q from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid = $1`,
    [oid],
  );
  return r.rows[0]!.q;
}

/** `axis.ownership` (names as the parser gives them, case kept) → `"axis"."ownership"` for to_regclass. */
function quoteRelation(rel: string): string {
  const dot = rel.indexOf('.');
  const parts = dot < 0 ? [rel] : [rel.slice(0, dot), rel.slice(dot + 1)];
  return parts.map((p) => '"' + p.replace(/"/g, '""') + '"').join('.');
}

/**
 * The relations whose rows a script may change: what the parser saw it write
 * or alter, widened to every table of the plan's schemas when the parser
 * cannot be exact (EXECUTE of a built string) or the script calls a
 * user-defined function, which may write anything.
 */
export async function relationsToWatch(
  q: Queryable,
  touched: { writes: string[]; alters: string[]; calls: string[]; incomplete: string[] } | null,
  schemas: string[],
): Promise<string[]> {
  const exact = touched ? [...touched.writes, ...touched.alters] : [];
  let widen = !touched || touched.incomplete.length > 0;
  if (!widen && touched && touched.calls.length) {
    const r = await q.query<{ user: boolean }>(
      `select exists (select 1 from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                       where n.nspname not in ('pg_catalog', 'information_schema')
                         and (p.proname = any($1::text[]) or n.nspname || '.' || p.proname = any($1::text[]))) as user`,
      [touched.calls],
    );
    widen = Boolean(r.rows[0]?.user);
  }
  if (!widen) return exact;
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
