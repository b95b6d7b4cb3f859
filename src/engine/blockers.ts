import type { Db } from '../db/port.js';

/** A lock timeout (55P03) or a statement timeout (57014): someone may hold what the statement waited for. */
export function isWaitTimeout(sqlstate: string | null | undefined): boolean {
  return sqlstate === '55P03' || sqlstate === '57014';
}

/**
 * After a lock or statement timeout: who holds locks on the relations the
 * failing statement uses. Names the backend, its application and what it is
 * doing, so the operator knows whom to ask. Best effort (null when unknown).
 */
export async function describeBlockers(db: Db, statementSql: string): Promise<string | null> {
  if (!db.alive()) return null;
  const relations = await referencedRelations(statementSql);
  try {
    const holders = (names: string[]) =>
      db.query<{ pid: number; app: string | null; usename: string | null; state: string | null; since: Date | null; rel: string; mode: string }>(
        `select a.pid, a.application_name as app, a.usename::text as usename, a.state, a.xact_start as since,
                l.relation::regclass::text as rel, l.mode
           from pg_locks l join pg_stat_activity a on a.pid = l.pid
          -- (a relation lock is held inside a transaction: no filter on xact_start, which another user's session hides from a user without pg_read_all_stats)
          where l.granted and l.locktype = 'relation' and a.pid <> pg_backend_pid()
            -- a lock in another database is on another relation of the same oid (a catalog's toast table, pg_toast_2618, has one oid in every database): never in the way
            and l.database in (0, (select oid from pg_database where datname = current_database()))
            and (cardinality($1::text[]) = 0 or l.relation = any (select to_regclass(x) from unnest($1::text[]) x where to_regclass(x) is not null))
            and l.relation in (select oid from pg_class where relnamespace not in (select oid from pg_namespace where nspname in ('pg_catalog', 'information_schema')))
          order by a.xact_start nulls last limit 5`,
        [names],
      );
    let r = await holders(relations);
    // the statement named only views (a metric) or nothing the locks are on: then every open transaction holding locks, oldest first
    if (!r.rows.length && relations.length) r = await holders([]);
    if (!r.rows.length) return null;
    const named = r.rows
      .map((h) => `pid ${h.pid}${h.app ? ` '${h.app}'` : ''}${h.usename ? ` (user ${h.usename})` : ''} holding ${h.mode} on ${h.rel}${h.state ? `, ${h.state}` : ''}${h.since ? ` since ${new Date(h.since).toISOString()}` : ''}`)
      .join('; ');
    // another user's session shows no state to a user without pg_read_all_stats: said, with the GRANT that shows it
    const hidden = r.rows.some((h) => h.state === null);
    return hidden ? `${named} (what it is doing is hidden from this user: GRANT pg_read_all_stats TO ${await quotedUser(db)} shows it)` : named;
  } catch {
    return null;
  }
}

/** This session's user as a GRANT must write it (quote_ident). */
export async function quotedUser(db: Db): Promise<string> {
  return (await db.query<{ u: string }>('select quote_ident(current_user) as u')).rows[0]?.u ?? 'this user';
}

/** Every relation a statement names (RangeVar nodes of its parse tree), quoted for to_regclass. */
async function referencedRelations(sql: string): Promise<string[]> {
  try {
    const { parse } = await import('libpg-query');
    const tree: unknown = await parse(sql);
    const out = new Set<string>();
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) return node.forEach(walk);
      if (node === null || typeof node !== 'object') return;
      const o = node as Record<string, unknown>;
      if (typeof o.relname === 'string') {
        const q = (s: string) => '"' + s.replace(/"/g, '""') + '"';
        out.add(typeof o.schemaname === 'string' ? `${q(o.schemaname)}.${q(o.relname)}` : q(o.relname));
      }
      Object.values(o).forEach(walk);
    };
    walk(tree);
    return [...out];
  } catch {
    return [];
  }
}
