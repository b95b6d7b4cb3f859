import type { Db, Queryable } from '../db/port.js';
import { TargetError } from '../errors.js';
import type { Plan, Tier } from '../plan/plan.js';
import { privilegesNeeded, readsNeeded } from '../plan/privileges-needed.js';
import { quotedUser } from './blockers.js';
import { calledFunctions } from './called-functions.js';

/** SQL a run will send, and how to name it: a tier file (`tier 7 'Approval rules'`), the gate's lock. */
export interface PrivilegedSql {
  label: string;
  sql: string;
}

/** What this session's user lacks for one piece of SQL: privileges on one object that exists now. */
export interface PrivilegeLack {
  of: PrivilegedSql;
  /** as the server prints it (schema-qualified when not on the search_path; a function with its arguments) */
  relation: string;
  /** what it is, as a GRANT names it: `ON SEQUENCE …`, `ON SCHEMA …`, `ON FUNCTION …`, or a table or view */
  kind: 'table' | 'sequence' | 'schema' | 'function';
  privileges: string[];
}

/**
 * The SQL a run of `tiers` sends that needs privileges: each tier file, and
 * the gate's lock when one of them is gated (it locks the approvals' rows
 * FOR SHARE, which PostgreSQL allows only with UPDATE).
 */
export function runSql(tiers: Tier[], gateLock: string | undefined): PrivilegedSql[] {
  const out: PrivilegedSql[] = tiers.map((t) => ({ label: `tier ${t.id} '${t.name}'`, sql: t.sql }));
  if (gateLock && tiers.some((t) => t.gated)) out.push({ label: "the gate's lock (gate.lock in tiergate.yaml, taken by each gated tier)", sql: gateLock });
  return out;
}

/** What reading a plan's gate runs (`readGate`, without the lock): its count, its subject, its approvals. */
export function gateReads(plan: Plan): PrivilegedSql[] {
  const gate = plan.gate;
  if (!gate) return [];
  return [
    { label: `the gate (gate.sql in tiergate.yaml)`, sql: gate.sql },
    ...(gate.subject ? [{ label: "the gate's subject (gate.subject)", sql: gate.subject }] : []),
    ...(gate.approvals ? [{ label: "the gate's approvals (gate.approvals)", sql: gate.approvals }] : []),
  ];
}

/** The plan's metrics, each a piece of SQL to read. */
export function metricReads(plan: Plan): PrivilegedSql[] {
  return Object.entries(plan.metrics).map(([name, sql]) => ({ label: `metric '${name}'`, sql }));
}

/** Reading tiergate's ledger (every command that says what is applied). */
export const LEDGER_READ: PrivilegedSql = { label: "tiergate's ledger", sql: 'select from tiergate.ledger; select from tiergate.attempt' };

/** A privilege one piece of SQL needs: on a relation (`privilegesNeeded`, `readsNeeded`) or on a function it calls. */
export interface Need {
  schema: string | null;
  name: string;
  privilege: string;
  columns?: string[];
  function?: boolean;
}

/**
 * What one piece of SQL surely needs: what its statements write
 * (`privilegesNeeded`); with `reads`, what they read (`readsNeeded`); with
 * `bodies`, the same of the statements of the functions it calls
 * (`calledFunctions`, read on `q`) and EXECUTE on those functions.
 */
export async function needsOf(q: Queryable, sql: string, options: { reads: boolean; bodies: boolean }): Promise<Need[]> {
  const called = options.bodies ? await calledFunctions(q, sql) : { statements: [], functions: [] };
  const found: Need[] = [];
  for (const script of [sql, ...called.statements]) {
    found.push(...(await privilegesNeeded(script)));
    if (options.reads) found.push(...(await readsNeeded(script)));
  }
  found.push(...called.functions.map((f) => ({ schema: f.schema, name: f.name, privilege: 'EXECUTE', function: true })));
  return found;
}

/**
 * The privileges `pieces` surely need that this session's user lacks on
 * objects that exist now — one read. For tier files (`reads` false): what
 * their statements write (`privilegesNeeded`); a relation an earlier tier
 * creates does not exist yet, and its creator owns it: not asked. With
 * `reads`, also what they read (`readsNeeded`), what the functions they call
 * run (their bodies, `calledFunctions`) and EXECUTE on those functions. Each
 * relation or function in a schema also needs USAGE on the schema: a
 * schema the user may not use is named as such (the server would refuse the
 * first name in it, and only that one). INSERT, UPDATE, REFERENCES and
 * SELECT count when granted on any column (a grant of some columns may be
 * all a statement needs).
 */
export async function lackedPrivileges(q: Queryable, pieces: PrivilegedSql[], options: { reads?: boolean } = {}): Promise<PrivilegeLack[]> {
  // a superuser lacks nothing (PGlite's user is one): no SQL parsed, no function body read
  const su = await q.query<{ su: boolean }>(`select rolsuper as su from pg_roles where rolname = current_user`);
  if (su.rows[0]?.su === true) return [];
  // one piece after another: the function bodies are read on this session, which runs one query at a time
  const needs: (Need & { i: number })[] = [];
  for (const [i, piece] of pieces.entries()) {
    const reads = options.reads === true;
    for (const n of await needsOf(q, piece.sql, { reads, bodies: reads })) needs.push({ ...n, i });
  }
  if (!needs.length) return [];
  const r = await q.query<{ i: number; name: string; kind: PrivilegeLack['kind']; privileges: string[] }>(
    `with n as (select * from unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bool[]) with ordinality as n(i, s, nm, p, cols, fn, o)),
     -- the search_path as configured: the server skips a schema this user may not use, so an unqualified name found
     -- only there would read as missing (Directus in its own schema, DB_SEARCH_PATH, without USAGE on it)
     path as (select o, case when x in ('$user', '"$user"') then current_user::text
                             when x ~ '^".*"$' then replace(substr(x, 2, length(x) - 2), '""', '"') else lower(x) end as nspname
                from unnest(array['pg_catalog'] || string_to_array(current_setting('search_path'), ',')) with ordinality as p(raw, o), btrim(raw) as x),
     rel as (
       select n.*, c.oid as rel from n
         join pg_class c on c.oid = case when n.s is null
                                         then coalesce(to_regclass(quote_ident(n.nm)),
                                                       (select c2.oid from path join pg_namespace ns on ns.nspname = path.nspname
                                                          join pg_class c2 on c2.relnamespace = ns.oid and c2.relname = n.nm order by path.o limit 1))
                                         else (select c2.oid from pg_class c2 join pg_namespace ns on ns.oid = c2.relnamespace where ns.nspname = n.s and c2.relname = n.nm) end
        where not n.fn),
     -- a schema this user may not use (to_regclass would fail on any name in it): one named, or one a relation needed lies in
     unusable as (select n.i, ns.oid, n.o from n join pg_namespace ns on ns.nspname = n.s where not has_schema_privilege(ns.oid, 'USAGE')
                  union
                  select rel.i, c.relnamespace, rel.o from rel join pg_class c on c.oid = rel.rel where not has_schema_privilege(c.relnamespace, 'USAGE')),
     lack as (
       select i, rel as oid, 'r' as k, p, o from rel
        where not case when p in ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES') then has_any_column_privilege(rel, p) else has_table_privilege(rel, p) end
       union
       -- an INSERT naming its columns leaves the others to their defaults: a serial one draws from its sequence (USAGE)
       select rel.i, s.oid, 'r', 'USAGE', rel.o from rel
         join pg_attribute a on a.attrelid = rel.rel and a.attnum > 0 and not a.attisdropped
         join pg_attrdef ad on ad.adrelid = a.attrelid and ad.adnum = a.attnum
         join pg_depend d on d.classid = 'pg_attrdef'::regclass and d.objid = ad.oid and d.refclassid = 'pg_class'::regclass
         join pg_class s on s.oid = d.refobjid and s.relkind = 'S'
        where rel.p = 'INSERT' and rel.cols is not null and not a.attname::text = any (string_to_array(rel.cols, E'\\t'))
          -- (has_sequence_privilege refuses any other relation: asked only of the sequence, whatever order the planner picks)
          and case when s.relkind = 'S' then not (has_sequence_privilege(s.oid, 'USAGE') or has_sequence_privilege(s.oid, 'UPDATE')) else false end
       union
       select i, oid, 's', 'USAGE', o from unusable
       union
       -- a function's name may have overloads: lacking only when it may execute none of them
       select n.i, min(p.oid), 'f', 'EXECUTE', n.o from n
         join pg_proc p on p.proname = n.nm
          and (p.pronamespace = (select oid from pg_namespace where nspname = n.s)
               or (n.s is null and p.pronamespace = any (current_schemas(true)::regnamespace[])))
        where n.fn
        group by n.i, n.o
       having not bool_or(has_function_privilege(p.oid, 'EXECUTE')))
     select i,
            case k when 's' then (select quote_ident(nspname) from pg_namespace where oid = lack.oid)
                   when 'f' then lack.oid::regprocedure::text
                   else lack.oid::regclass::text end as name,
            case k when 's' then 'schema' when 'f' then 'function'
                   else (select case when relkind = 'S' then 'sequence' else 'table' end from pg_class where oid = lack.oid) end as kind,
            array_agg(distinct p) as privileges
       from lack group by i, oid, k order by i, min(o)`,
    [
      needs.map((n) => n.i),
      needs.map((n) => n.schema),
      needs.map((n) => n.name),
      needs.map((n) => n.privilege),
      needs.map((n) => n.columns?.join('\t') ?? null),
      needs.map((n) => n.function === true),
    ],
  );
  return r.rows.map((row) => ({ of: pieces[row.i]!, relation: row.name, kind: row.kind, privileges: row.privileges }));
}

/** The privileges in the order a GRANT is usually written. */
const ORDER = ['USAGE', 'EXECUTE', 'SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'];
/** Schemas first (nothing in them is usable without USAGE), then tables and views, sequences, functions. */
const KINDS: PrivilegeLack['kind'][] = ['schema', 'table', 'sequence', 'function'];
const KIND_WORD: Record<PrivilegeLack['kind'], [string, string]> = { schema: ['schema ', 'schemas '], table: ['', ''], sequence: ['sequence ', 'sequences '], function: ['function ', 'functions '] };
const GRANT_ON: Record<PrivilegeLack['kind'], string> = { schema: 'SCHEMA ', table: '', sequence: 'SEQUENCE ', function: 'FUNCTION ' };

function inOrder(privileges: Iterable<string>): string[] {
  return [...new Set(privileges)].sort((a, b) => (ORDER.indexOf(a) + 1 || 99) - (ORDER.indexOf(b) + 1 || 99) || a.localeCompare(b));
}

/** Objects of one kind lacking the same privileges: one phrase, one GRANT; schemas first. */
function grouped(ls: Pick<PrivilegeLack, 'relation' | 'kind' | 'privileges'>[]): { privileges: string; kind: PrivilegeLack['kind']; relations: string[] }[] {
  const byKey = new Map<string, { privileges: string; kind: PrivilegeLack['kind']; relations: string[] }>();
  for (const l of [...ls].sort((a, b) => KINDS.indexOf(a.kind) - KINDS.indexOf(b.kind))) {
    const privileges = inOrder(l.privileges).join(', ');
    const key = `${l.kind}|${privileges}`;
    const group = byKey.get(key) ?? { privileges, kind: l.kind, relations: [] };
    if (!group.relations.includes(l.relation)) group.relations.push(l.relation);
    byKey.set(key, group);
  }
  return [...byKey.values()];
}

/** The lacks in words, and the GRANTs that end them (objects that lack the same privileges named together). */
export function describeLacks(lacks: PrivilegeLack[], user: string): { what: string; grants: string } {
  const bySql = new Map<PrivilegedSql, PrivilegeLack[]>();
  for (const l of lacks) bySql.set(l.of, [...(bySql.get(l.of) ?? []), l]);
  const what = [...bySql.entries()]
    .map(([t, ls]) => `${t.label} needs ${grouped(ls).map((g) => `${g.privileges} on ${KIND_WORD[g.kind][g.relations.length > 1 ? 1 : 0]}${g.relations.join(', ')}`).join('; ')}`)
    .join('; ');
  // one privilege set per object across the pieces, then objects with the same set in one GRANT
  const perObject = new Map<string, { kind: PrivilegeLack['kind']; privileges: Set<string> }>();
  for (const l of lacks) {
    const key = `${l.kind}|${l.relation}`;
    const entry = perObject.get(key) ?? { kind: l.kind, privileges: new Set<string>() };
    for (const p of l.privileges) entry.privileges.add(p);
    perObject.set(key, entry);
  }
  const merged = [...perObject.entries()].map(([key, e]) => ({ relation: key.slice(e.kind.length + 1), kind: e.kind, privileges: [...e.privileges] }));
  const grants = grouped(merged)
    .map((g) => `GRANT ${g.privileges} ON ${GRANT_ON[g.kind]}${g.relations.join(', ')} TO ${user}`)
    .join('; ');
  return { what, grants };
}

/**
 * Refuses — a TargetError, nothing run — when this session's user lacks a
 * privilege the SQL a command runs surely needs (`pieces`: what it writes,
 * then what it reads): what its statements write and read, what the
 * functions they call run, EXECUTE on those functions and USAGE on every
 * schema in the way (`lackedPrivileges` with reads). Every lack is named
 * at once, with its GRANTs and no more: a user once learnt them one table
 * a run, each time told to grant SELECT and INSERT on what it only reads.
 * A check that cannot be read refuses nothing (the server still refuses
 * what it refuses).
 */
export async function refuseLacking(db: Db, action: string, pieces: PrivilegedSql[]): Promise<void> {
  const lacks = await lackedPrivileges(db, pieces.filter((p) => p.sql.trim() !== ''), { reads: true }).catch(() => []);
  if (!lacks.length) return;
  const user = await quotedUser(db);
  const { what, grants } = describeLacks(lacks, user);
  throw new TargetError(`cannot ${action} on ${db.displayUrl}: user ${user} lacks privileges it needs: ${what}; nothing was changed — ${grants}`);
}
