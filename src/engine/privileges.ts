import type { Db, Queryable } from '../db/port.js';
import { TargetError } from '../errors.js';
import type { Tier } from '../plan/plan.js';
import { privilegesNeeded } from '../plan/privileges-needed.js';
import { quotedUser } from './blockers.js';
import { calledFunctionSql } from './called-functions.js';

/** SQL a run will send, and how to name it: a tier file (`tier 7 'Approval rules'`), the gate's lock. */
export interface PrivilegedSql {
  label: string;
  sql: string;
}

/** What this session's user lacks for one piece of SQL: the privileges on one relation that exists now. */
export interface PrivilegeLack {
  of: PrivilegedSql;
  /** as the server prints it (schema-qualified when not on the search_path) */
  relation: string;
  /** a sequence (GRANT … ON SEQUENCE) */
  sequence: boolean;
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

/**
 * The privileges `tiers` surely need (`privilegesNeeded`) that this
 * session's user lacks on relations that exist now — one read. A relation
 * an earlier tier creates does not exist yet, and its creator owns it: not
 * asked. INSERT, UPDATE and REFERENCES count when granted on any column
 * (a grant of some columns may be all a statement needs).
 */
export async function lackedPrivileges(q: Queryable, tiers: PrivilegedSql[]): Promise<PrivilegeLack[]> {
  const needs = (await Promise.all(tiers.map(async (t, i) => (await privilegesNeeded(t.sql)).map((n) => ({ ...n, i }))))).flat();
  if (!needs.length) return [];
  const r = await q.query<{ i: number; rel: string; sequence: boolean; privileges: string[] }>(
    `with n as (select * from unnest($1::int[], $2::text[], $3::text[], $4::text[]) with ordinality as n(i, r, p, cols, o)),
     rel as (select n.*, c.oid as rel from n join pg_class c on c.oid = to_regclass(n.r)),
     lack as (
       select i, rel as oid, p, o from rel
        where not case when p in ('INSERT', 'UPDATE', 'REFERENCES') then has_any_column_privilege(rel, p) else has_table_privilege(rel, p) end
       union
       -- an INSERT naming its columns leaves the others to their defaults: a serial one draws from its sequence (USAGE)
       select rel.i, s.oid, 'USAGE', rel.o from rel
         join pg_attribute a on a.attrelid = rel.rel and a.attnum > 0 and not a.attisdropped
         join pg_attrdef ad on ad.adrelid = a.attrelid and ad.adnum = a.attnum
         join pg_depend d on d.classid = 'pg_attrdef'::regclass and d.objid = ad.oid and d.refclassid = 'pg_class'::regclass
         join pg_class s on s.oid = d.refobjid and s.relkind = 'S'
        where rel.p = 'INSERT' and rel.cols is not null and not a.attname::text = any (string_to_array(rel.cols, E'\\t'))
          -- (has_sequence_privilege refuses any other relation: asked only of the sequence, whatever order the planner picks)
          and case when s.relkind = 'S' then not (has_sequence_privilege(s.oid, 'USAGE') or has_sequence_privilege(s.oid, 'UPDATE')) else false end)
     select i, oid::regclass::text as rel, (select relkind = 'S' from pg_class where oid = lack.oid) as sequence, array_agg(distinct p) as privileges
       from lack group by i, oid order by i, min(o)`,
    [needs.map((n) => n.i), needs.map((n) => n.relation), needs.map((n) => n.privilege), needs.map((n) => n.columns?.join('\t') ?? null)],
  );
  return r.rows.map((row) => ({ of: tiers[row.i]!, relation: row.rel, sequence: row.sequence, privileges: row.privileges }));
}

/** The lacks in words, and the GRANTs that end them (relations that lack the same privileges named together). */
export function describeLacks(lacks: PrivilegeLack[], user: string): { what: string; grants: string } {
  // relations of one kind lacking the same privileges: one phrase, one GRANT
  const grouped = (ls: Pick<PrivilegeLack, 'relation' | 'sequence' | 'privileges'>[]) => {
    const byKey = new Map<string, { privileges: string; sequence: boolean; relations: string[] }>();
    for (const l of ls) {
      const key = `${l.sequence}|${l.privileges.join(', ')}`;
      const group = byKey.get(key) ?? { privileges: l.privileges.join(', '), sequence: l.sequence, relations: [] };
      group.relations.push(l.relation);
      byKey.set(key, group);
    }
    return [...byKey.values()];
  };
  const bySql = new Map<PrivilegedSql, PrivilegeLack[]>();
  for (const l of lacks) bySql.set(l.of, [...(bySql.get(l.of) ?? []), l]);
  const what = [...bySql.entries()]
    .map(([t, ls]) => `${t.label} needs ${grouped(ls).map((g) => `${g.privileges} on ${g.sequence ? (g.relations.length > 1 ? 'sequences ' : 'sequence ') : ''}${g.relations.join(', ')}`).join('; ')}`)
    .join('; ');
  // one privilege set per relation across tiers, then relations with the same set in one GRANT
  const perRelation = new Map<string, { sequence: boolean; privileges: Set<string> }>();
  for (const l of lacks) {
    const entry = perRelation.get(l.relation) ?? { sequence: l.sequence, privileges: new Set<string>() };
    for (const p of l.privileges) entry.privileges.add(p);
    perRelation.set(l.relation, entry);
  }
  const merged = [...perRelation.entries()].map(([relation, e]) => ({ relation, sequence: e.sequence, privileges: [...e.privileges] }));
  const grants = grouped(merged)
    .map((g) => `GRANT ${g.privileges} ON ${g.sequence ? 'SEQUENCE ' : ''}${g.relations.join(', ')} TO ${user}`)
    .join('; ');
  return { what, grants };
}

/**
 * Refuses — a TargetError, nothing run — when this session's user lacks a
 * privilege `sql` surely needs: what its own statements write, and what
 * the functions it calls write (`calledFunctionSql`: a plan's scanner is a
 * function call). Every lack is named at once, with its GRANTs: a user
 * once learnt them one table a run. A check that cannot be read refuses
 * nothing (the server still refuses what it refuses).
 */
export async function refuseLacking(db: Db, action: string, label: string, sql: string): Promise<void> {
  const body = await calledFunctionSql(db, sql).catch(() => []);
  const lacks = await lackedPrivileges(db, [{ label, sql: [sql, ...body].join('\n;\n') }]).catch(() => []);
  if (!lacks.length) return;
  const user = await quotedUser(db);
  const { what, grants } = describeLacks(lacks, user);
  throw new TargetError(`cannot ${action} on ${db.displayUrl}: user ${user} lacks what it writes: ${what}; nothing was changed — ${grants}`);
}
