import type { Db, Queryable } from '../db/port.js';

/**
 * Whether the server has `pg_current_snapshot`, `pg_xact_status` and
 * `xid(xid8)` (PostgreSQL 13 and later, PGlite): what a transaction mark
 * and a row delta's row versions (src/probe/rows.ts) read.
 */
export function hasXid8Snapshots(db: Db): boolean {
  return db.capabilities.serverVersion >= 130000;
}

/**
 * A point in a server's transaction history: pg_current_snapshot's `xmax`
 * (one past the latest transaction id completed) and its running ids below
 * it. Every transaction that completes after the mark has an id at or
 * above `xmax` or among those running (an id below `xmax` and not running
 * had completed already), and below the `xmax` of a later snapshot. What a
 * database shows can change only by a transaction that commits — every
 * catalog row and every table row written carries its writer's id — so
 * when every id of that range, and every id running at the mark, belongs
 * to a transaction that aborted, nothing any snapshot reads has changed
 * since: on any database of that server. (One still running, above the
 * later `xmax`, has changed nothing yet; it is in the next range.) Stage A
 * of a rehearsal proves a blocked tier changed nothing this way
 * (src/rehearsal/rehearse.ts): one query instead of a seal, whose catalog
 * version reads every catalog row (52 ms at 6,500 tables).
 *
 * It says "nothing committed", never "something changed": a transaction of
 * another database, an ANALYZE of autovacuum, a second clone applying its
 * tiers, a tier's own dblink — any commit at all on the server — makes it
 * inconclusive, and the caller compares seals as before. Changes made
 * without a transaction id (a sequence's nextval, VACUUM's in-place
 * updates of pg_class) are none of what a seal or a fingerprint reads.
 */
export interface XactMark {
  /** one past the latest transaction id completed (xid8, as text) */
  xmax: string;
  /** the transactions below it running at the mark (xid8, as text) */
  running: string[];
}

/** Transaction ids checked at most: beyond, the server was busy, and a seal is read instead. */
const MAX_CHECKED = 10_000;

export async function readXactMark(q: Queryable): Promise<XactMark> {
  const r = await q.query<XactMark>(
    `select pg_snapshot_xmax(s)::text as xmax, array(select x::text from pg_snapshot_xip(s) x order by 1) as running from pg_current_snapshot() s`,
  );
  return r.rows[0]!;
}

/**
 * Whether every transaction running at `mark`, or completed since with an
 * id at or above its `xmax`, aborted (so nothing on the server changed
 * since the mark), and the mark now — in one query. Read outside a
 * transaction, or in one that has written nothing: what a transaction of
 * the caller's own wrote is not committed.
 */
export async function nothingCommittedSince(q: Queryable, mark: XactMark): Promise<{ clean: boolean; mark: XactMark }> {
  const r = await q.query<XactMark & { clean: boolean }>(
    `with s as (select pg_current_snapshot() as s),
     ids as (select x from unnest($2::text[]::xid8[]) x
             union all
             select ($1::text::int8 + g)::text::xid8 from s, generate_series(0, least(pg_snapshot_xmax(s)::text::int8 - $1::text::int8, $3::int8 + 1) - 1) g)
     select pg_snapshot_xmax(s)::text as xmax, array(select x::text from pg_snapshot_xip(s) x order by 1) as running,
            (select count(*) from ids) <= $3::int8 and coalesce((select bool_and(pg_xact_status(x) is not distinct from 'aborted') from ids), true) as clean
       from s`,
    [mark.xmax, mark.running, MAX_CHECKED],
  );
  const row = r.rows[0]!;
  return { clean: row.clean === true, mark: { xmax: row.xmax, running: row.running } };
}
