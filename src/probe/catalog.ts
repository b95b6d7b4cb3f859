import type { QueryResult, Queryable } from '../db/port.js';
import { statementName, textLiteral } from './identifiers.js';
import { withoutJit } from './jit.js';
import type { ObjectChanges } from '../evidence/types.js';
import type { ObjectKind } from '../plan/schema.js';

/**
 * The one catalog reader: every object of a set of schemas with the md5 of
 * its definition as PostgreSQL itself prints it (pg_get_viewdef,
 * pg_get_functiondef, pg_get_triggerdef, …). Tier deltas read it over the
 * plan's schemas, fingerprints over every user schema: both see the same
 * objects, triggers, rules and row-level-security policies included.
 *
 * Owners and privileges are left out (a clone restored with --no-owner
 * --no-privileges must read like its source), and so are NOT NULL
 * constraints: PostgreSQL 18 (PGlite) lists them in pg_constraint, 15 does
 * not, and a column's NOT NULL is already part of its table's definition.
 */

/** One object: `kind` singular (`table`, `view`, `policy` …), `name` schema-qualified. */
export interface CatalogObject {
  kind: CatalogKind;
  name: string;
  /** md5 of the normalised definition */
  def: string;
  /**
   * The relation whose catalog rows it is read from (a table's own
   * constraints, triggers, rules and policies are its table's; an index or
   * a view is its own), 0 for the rest: schemas, functions, types, domain
   * constraints, extensions. An incremental read (src/probe/fingerprint.ts)
   * reads again the objects of the relations that changed, and the rest.
   */
  owner: number;
}

export type CatalogKind =
  | 'schema'
  | 'table'
  | 'view'
  | 'matview'
  | 'sequence'
  | 'index'
  | 'function'
  | 'procedure'
  | 'aggregate'
  | 'constraint'
  | 'trigger'
  | 'rule'
  | 'policy'
  | 'type'
  | 'extension';

/** The delta kind (plural, as a plan's `expect.objects` names it) of each catalog kind. */
export const DELTA_KIND: Record<CatalogKind, ObjectKind> = {
  schema: 'schemas',
  table: 'tables',
  view: 'views',
  matview: 'views',
  sequence: 'sequences',
  index: 'indexes',
  function: 'functions',
  procedure: 'functions',
  aggregate: 'functions',
  constraint: 'constraints',
  trigger: 'triggers',
  rule: 'rules',
  policy: 'policies',
  type: 'types',
  extension: 'extensions',
};

/** Every object kind of a delta, in the order a reader expects them. */
export const OBJECT_KINDS: readonly ObjectKind[] = [
  'schemas', 'tables', 'views', 'functions', 'sequences', 'indexes', 'constraints', 'triggers', 'policies', 'rules', 'types', 'extensions',
];

/**
 * Which schemas: `$1` is the list and `$2` says whether it is the list to
 * read (`true`) or the list to leave out besides the system schemas (`false`).
 */
const SCHEMAS = `select oid, nspname from pg_namespace
  where nspname not in ('pg_catalog', 'information_schema') and nspname !~ '^pg_(toast|temp)'
    and (nspname = any($1::text[])) = $2`;

/**
 * `select … where …` over the rows of `catalog` (`alias`) that belong to a
 * relation of `rel` (as `r`), joined on its column `column`. A few relations
 * (a plan's schemas) look each one up by the catalog's index on that column;
 * many (a fingerprint's whole database) read the catalog once and join it
 * by hashing. Both are planned; which runs is decided when the statement
 * runs, by how many relations `rel` holds (a one-time filter): the planner
 * cannot tell from a schema's name how many relations it has. A read of
 * the plan's two schemas beside 6,500 Directus tables 14.3 → 7.4 ms
 * (medians of 21; constraints and triggers were read by scanning
 * pg_constraint, pg_class again and pg_trigger whole), 5.0 → 4.5 ms at 650.
 */
function perRelation(select: string, catalog: string, column: string, alias: string, where: string): string {
  return `select ${select} from rel r cross join lateral (select x.* from ${catalog} x where x.${column} = r.oid offset 0) ${alias}
  where ${where} and (select yes from few)
union all
select ${select} from rel r join ${catalog} ${alias} on ${alias}.${column} = r.oid
  where ${where} and not (select yes from few)`;
}

/** Up to this many relations, their constraints and triggers are looked up one relation at a time (perRelation). */
const FEW_RELATIONS = 2000;

/**
 * One row per object. pg_class has no index on the namespace alone: it is
 * scanned once (`rel`, materialized), not once per kind — at 6,500 Directus
 * tables that halves a snapshot, which runs twice a tier. The tables'
 * columns are printed in one pass over their pg_attribute rows (`cols`),
 * not by a subquery per table: a full read at 6,520 tables 636 → 530 ms on
 * a freshly restored clone, the same rows (the plan's schemas alone: no
 * change).
 */
const CATALOG_SQL = `
with ns as materialized (${SCHEMAS}),
rel as materialized (select c.oid, c.relname, c.relkind, ns.nspname from pg_class c join ns on ns.oid = c.relnamespace
                      where $3::int8[] is null or c.oid = any($3::int8[]::oid[])),
-- whether rel holds few relations (perRelation), counted once
few as materialized (select count(*) <= ${FEW_RELATIONS} as yes from rel),
cols as (
  select a.attrelid,
         string_agg(concat_ws(' ', quote_ident(a.attname), format_type(a.atttypid, a.atttypmod),
           case when a.attnotnull then 'not null' end,
           'default ' || pg_get_expr(d.adbin, d.adrelid),
           case when a.attidentity <> '' then 'identity ' || a.attidentity::text end,
           case when a.attgenerated <> '' then 'generated ' || a.attgenerated::text end,
           case when a.attcollation <> t.typcollation then 'collate ' || a.attcollation::regcollation::text end), E'\\n' order by a.attnum) as columns
    from pg_attribute a join pg_type t on t.oid = a.atttypid
    left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
   where a.attrelid in (select oid from rel where relkind in ('r', 'p', 'f')) and a.attnum > 0 and not a.attisdropped
   group by a.attrelid)
select 'schema'::text as kind, nspname::text as name, md5(nspname) as def, 0::int8 as owner from ns
union all
select 'table', r.nspname || '.' || r.relname,
       md5(concat_ws(E'\\n', c.relkind, c.relpersistence, c.relrowsecurity, c.relforcerowsecurity,
         case when c.relkind = 'p' then pg_get_partkeydef(c.oid) end,
         pg_get_expr(c.relpartbound, c.oid),
         (select string_agg(i.inhparent::regclass::text, ',' order by i.inhseqno) from pg_inherits i where i.inhrelid = c.oid),
         cols.columns)), r.oid::int8
  from rel r join pg_class c on c.oid = r.oid left join cols on cols.attrelid = r.oid where r.relkind in ('r', 'p', 'f')
union all
select case r.relkind when 'v' then 'view' else 'matview' end, r.nspname || '.' || r.relname,
       md5(concat_ws(E'\\n', pg_get_viewdef(r.oid), array_to_string(c.reloptions, ','))), r.oid::int8
  from rel r join pg_class c on c.oid = r.oid where r.relkind in ('v', 'm')
union all
select 'sequence', r.nspname || '.' || r.relname,
       md5(concat_ws(' ', format_type(s.seqtypid, null), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle)), r.oid::int8
  from rel r join pg_sequence s on s.seqrelid = r.oid where r.relkind = 'S'
union all
select 'index', r.nspname || '.' || r.relname, md5(pg_get_indexdef(r.oid)), r.oid::int8
  from rel r where r.relkind in ('i', 'I')
union all
select case p.prokind when 'p' then 'procedure' when 'a' then 'aggregate' else 'function' end,
       ns.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       md5(case when p.prokind = 'a'
             then (select concat_ws(' ', a.aggkind, a.aggtransfn, a.aggfinalfn, a.aggcombinefn, format_type(a.aggtranstype, null), a.agginitval, a.aggsortop)
                     from pg_aggregate a where a.aggfnoid = p.oid)
             else pg_get_functiondef(p.oid) end), 0::int8
  from pg_proc p join ns on ns.oid = p.pronamespace
union all
${perRelation(
  `'constraint', r.nspname || '.' || r.relname || '.' || co.conname, md5(co.contype::text || ' ' || pg_get_constraintdef(co.oid)), r.oid::int8`,
  'pg_constraint', 'conrelid', 'co', `co.contype <> 'n'`,
)}
union all
select 'constraint', ns.nspname || '.' || ty.typname || '.' || co.conname, md5(co.contype::text || ' ' || pg_get_constraintdef(co.oid)), 0::int8
  from pg_constraint co join ns on ns.oid = co.connamespace join pg_type ty on ty.oid = co.contypid
  -- a domain's constraints: conrelid 0 (the first column of an index of pg_constraint)
  where co.conrelid = 0 and co.contypid <> 0 and co.contype <> 'n'
union all
${perRelation(
  `'trigger', r.nspname || '.' || r.relname || '.' || tg.tgname, md5(tg.tgenabled::text || ' ' || pg_get_triggerdef(tg.oid)), r.oid::int8`,
  'pg_trigger', 'tgrelid', 'tg',
  // tiergate's change log on a clone (src/probe/change-log.ts) is not part of the database
  `not tg.tgisinternal and not (tg.tgname = 'tiergate_touched' and tg.tgfoid = coalesce(to_regprocedure('tiergate.note_touched()'), 0))`,
)}
union all
select 'rule', r.nspname || '.' || r.relname || '.' || ru.rulename, md5(ru.ev_enabled::text || ' ' || pg_get_ruledef(ru.oid)), r.oid::int8
  from pg_rewrite ru join rel r on r.oid = ru.ev_class where ru.rulename <> '_RETURN'
union all
select 'policy', r.nspname || '.' || r.relname || '.' || po.polname,
       md5(concat_ws(E'\\n', po.polcmd, po.polpermissive,
         (select string_agg(case when x = 0 then 'public' else x::regrole::text end, ',' order by 1) from unnest(po.polroles) x),
         pg_get_expr(po.polqual, po.polrelid), pg_get_expr(po.polwithcheck, po.polrelid))), r.oid::int8
  from pg_policy po join rel r on r.oid = po.polrelid
union all
select 'type', ns.nspname || '.' || t.typname,
       md5(case t.typtype
         when 'e' then 'enum ' || (select string_agg(e.enumlabel, ',' order by e.enumsortorder) from pg_enum e where e.enumtypid = t.oid)
         when 'd' then concat_ws(' ', 'domain', format_type(t.typbasetype, t.typtypmod), t.typnotnull, t.typdefault)
         when 'r' then 'range ' || (select format_type(g.rngsubtype, null) from pg_range g where g.rngtypid = t.oid)
         when 'c' then 'composite ' || (select string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ',' order by a.attnum)
                                          from pg_attribute a where a.attrelid = t.typrelid and a.attnum > 0 and not a.attisdropped)
         else t.typtype::text end), 0::int8
  from pg_type t join ns on ns.oid = t.typnamespace
  where t.typtype in ('e', 'd', 'r', 'c')
    and (t.typtype <> 'c' or (select c.relkind from pg_class c where c.oid = t.typrelid) = 'c')
union all
select 'extension', x.extname, md5(x.extversion || ' ' || ns.nspname), 0::int8
  from pg_extension x join ns on ns.oid = x.extnamespace
`;

/**
 * Which reading of the catalog a recorded snapshot comes from: the ledger
 * keeps the plan's objects as its tiers left them (src/engine/hand-edits.ts),
 * and a snapshot another version of this read took is not compared with one
 * of this version (a definition may print otherwise).
 */
export const CATALOG_VERSION = statementName('catalog_', CATALOG_SQL);

/** Which schemas a catalog read covers. */
export type SchemaScope = { only: string[] } | { except: string[] };

/**
 * Every object of the schemas in `scope`, read-only; cost follows the number
 * of objects, never row counts. With `relations`, only the objects of those
 * relations (by oid) and the rest (owner 0).
 */
export async function readCatalog(q: Queryable, scope: SchemaScope, relations: number[] | null = null): Promise<CatalogObject[]> {
  const [list, include] = 'only' in scope ? [scope.only, true] : [scope.except, false];
  return withoutJit(q, async () => {
    const rows = (await executeCatalog<CatalogObject & { owner: string | number }>(q, list, include, relations)).rows;
    return rows.map((r) => ({ kind: r.kind, name: r.name, def: r.def, owner: Number(r.owner) }));
  });
}

/**
 * A read of whole schemas (`relations` null: every tier's snapshot, a
 * fingerprint's full read) is a statement prepared once per session, its
 * arguments written into it: parsing and planning it cost more than
 * running it (at 650 tables 12.1 → 7.3 ms a read, medians of 15), and an
 * apply reads the plan's schemas nine times on one session. Without
 * parameters PostgreSQL plans it once and keeps the plan (the rows it
 * reads are read afresh each time). A tier file may throw it away
 * (DEALLOCATE ALL), and an EXECUTE of a statement that is gone would abort
 * the tier's transaction: so each read first asks pg_prepared_statements
 * (one short round trip) and prepares it again when it is not there. A
 * read of some relations (an incremental fingerprint read: other oids each
 * time) is sent as it is.
 */
async function executeCatalog<R>(q: Queryable, schemas: string[], include: boolean, relations: number[] | null): Promise<QueryResult<R>> {
  if (relations !== null) return q.query<R>(CATALOG_SQL, [schemas, include, relations]);
  const { name, sql } = wholeSchemasStatement(schemas, include);
  const present = await q.query<{ ok: boolean }>(`select exists (select 1 from pg_prepared_statements where name = $1) as ok`, [name]);
  if (present.rows[0]?.ok !== true) await q.exec(`prepare ${name} as ${sql}`);
  return q.query<R>(`execute ${name}`);
}

/** The statement of a read of whole schemas, its arguments written in, and its name: made once per list of schemas (a dozen reads a rollout). */
const wholeSchemas = new Map<string, { name: string; sql: string }>();

function wholeSchemasStatement(schemas: string[], include: boolean): { name: string; sql: string } {
  const key = JSON.stringify([schemas, include]);
  let made = wholeSchemas.get(key);
  if (!made) {
    const args: Record<string, string> = { 1: `(array[${schemas.map(textLiteral).join(', ')}]::text[])`, 2: String(include), 3: '(null::int8[])' };
    const sql = CATALOG_SQL.replace(/\$([123])\b/g, (_, n: string) => args[n]!);
    made = { name: statementName('tiergate_catalog_', sql), sql };
    wholeSchemas.set(key, made);
  }
  return made;
}

/** kind → object name → hash of its normalised definition */
export type CatalogSnapshot = Record<ObjectKind, Map<string, string>>;

/** The objects of `schemas` grouped by delta kind: what a tier's delta is measured between. */
export async function snapshotCatalog(q: Queryable, schemas: string[]): Promise<CatalogSnapshot> {
  const snap = emptySnapshot();
  for (const o of await readCatalog(q, { only: schemas })) snap[DELTA_KIND[o.kind]].set(o.name, o.def);
  return snap;
}

export function emptySnapshot(): CatalogSnapshot {
  return Object.fromEntries(OBJECT_KINDS.map((k) => [k, new Map<string, string>()])) as CatalogSnapshot;
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
