import type { Db } from '../db/port.js';
import type { DatabaseIdentity } from '../evidence/types.js';

/** A database's identity, and the source it was cloned from when tiergate made it (its clone mark). */
export interface TargetIdentity extends DatabaseIdentity {
  /** the source database's name when this is a tiergate clone */
  cloneOf: string | null;
}

/**
 * Which database this is, read-only: the engine, the database's name, the
 * cluster's system identifier (pg_control_system(), readable by any role;
 * null when a server refuses it), the server version, and the storage's own
 * id where the system identifier cannot tell databases apart (a PGlite
 * directory). Evidence is bound to it; apply and status check it.
 *
 * @example const id = await readIdentity(db); id.systemIdentifier // '7715110575457019317'
 */
export async function readIdentity(db: Db): Promise<TargetIdentity> {
  const r = await db.query<{ d: string; marked: boolean }>(
    // from the catalog, not to_regclass: a role without USAGE on a ledger schema another user made must get to the ledger read (which says what to grant)
    `select current_database() as d,
            exists (select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'tiergate' and c.relname = 'clone_mark') as marked`,
  );
  const database = r.rows[0]?.d ?? '';
  let systemIdentifier: string | null = null;
  try {
    const s = await db.query<{ id: string }>('select system_identifier::text as id from pg_control_system()');
    systemIdentifier = s.rows[0]?.id ?? null;
  } catch {
    systemIdentifier = null;
  }
  let cloneOf: string | null = null;
  if (r.rows[0]?.marked) {
    const m = await db.query<{ s: string }>('select source_database as s from tiergate.clone_mark order by created_at desc limit 1');
    cloneOf = m.rows[0]?.s ?? null;
  }
  return {
    engine: db.capabilities.driver === 'pglite' ? 'pglite' : 'postgres',
    database,
    systemIdentifier,
    instance: db.capabilities.instance,
    serverVersion: db.capabilities.serverVersion,
    cloneOf,
  };
}
