import type { Queryable } from '../db/port.js';
import type { ObjectChanges } from '../engine/result.js';
import type { ObjectKind } from '../plan/schema.js';

/** kind → object name → hash of its normalised definition */
export type CatalogSnapshot = Record<ObjectKind, Map<string, string>>;

export const OBJECT_KINDS: readonly ObjectKind[] = ['tables', 'views', 'functions', 'sequences', 'indexes', 'constraints'];

/**
 * One query lists every object of the given schemas with an md5 of its
 * normalised definition (pg_get_viewdef, pg_get_functiondef, …), so that a
 * replaced view shows as `changed`. Read-only; cost grows with the number of
 * objects in those schemas, never with row counts.
 */
const CATALOG_SQL = `
with ns as (select oid, nspname from pg_namespace where nspname = any($1::text[]))
select 'tables' as kind, ns.nspname || '.' || c.relname as name,
       md5(coalesce((select string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                 || case when a.attnotnull then ' not null' else '' end
                 || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), ''), ', ' order by a.attnum)
          from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
          where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '')) as def
  from pg_class c join ns on ns.oid = c.relnamespace where c.relkind in ('r', 'p', 'f')
union all
select 'views', ns.nspname || '.' || c.relname, md5(c.relkind::text || pg_get_viewdef(c.oid, true))
  from pg_class c join ns on ns.oid = c.relnamespace where c.relkind in ('v', 'm')
union all
select 'sequences', ns.nspname || '.' || c.relname, md5(format_type(s.seqtypid, null) || s.seqincrement || s.seqmin || s.seqmax)
  from pg_class c join ns on ns.oid = c.relnamespace join pg_sequence s on s.seqrelid = c.oid where c.relkind = 'S'
union all
select 'indexes', ns.nspname || '.' || c.relname, md5(pg_get_indexdef(c.oid))
  from pg_class c join ns on ns.oid = c.relnamespace where c.relkind in ('i', 'I')
union all
select 'functions', ns.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       md5(case when p.prokind in ('f', 'p') then pg_get_functiondef(p.oid) else p.prosrc end)
  from pg_proc p join ns on ns.oid = p.pronamespace
union all
select 'constraints', ns.nspname || '.' || cl.relname || '.' || co.conname, md5(pg_get_constraintdef(co.oid))
  from pg_constraint co join pg_class cl on cl.oid = co.conrelid join ns on ns.oid = cl.relnamespace
`;

export async function snapshotCatalog(q: Queryable, schemas: string[]): Promise<CatalogSnapshot> {
  const snap = emptySnapshot();
  const r = await q.query<{ kind: ObjectKind; name: string; def: string }>(CATALOG_SQL, [schemas]);
  for (const row of r.rows) snap[row.kind].set(row.name, row.def);
  return snap;
}

export function emptySnapshot(): CatalogSnapshot {
  return { tables: new Map(), views: new Map(), functions: new Map(), sequences: new Map(), indexes: new Map(), constraints: new Map() };
}

/** Objects added, removed and changed between two snapshots; kinds with no change are left out. */
export function diffCatalog(before: CatalogSnapshot, after: CatalogSnapshot): Partial<Record<ObjectKind, ObjectChanges>> {
  const out: Partial<Record<ObjectKind, ObjectChanges>> = {};
  for (const kind of OBJECT_KINDS) {
    const b = before[kind];
    const a = after[kind];
    const added = [...a.keys()].filter((k) => !b.has(k)).sort();
    const removed = [...b.keys()].filter((k) => !a.has(k)).sort();
    const changed = [...a.keys()].filter((k) => b.has(k) && b.get(k) !== a.get(k)).sort();
    if (added.length || removed.length || changed.length) out[kind] = { added, removed, changed };
  }
  return out;
}
