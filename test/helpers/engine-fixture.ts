import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Db } from '../../src/db/port.js';
import { snapshotCatalog } from '../../src/probe/catalog.js';

export const ENGINE_PLAN = join(import.meta.dirname, '..', 'fixtures', 'engine');

/** A writable copy of the engine test plan, to edit in a test. */
export function copyEnginePlan(): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'tiergate-plan-')), 'plan');
  cpSync(ENGINE_PLAN, dir, { recursive: true });
  return dir;
}

export async function prepareGate(db: Db, open = false): Promise<void> {
  await db.exec('create schema gate; create table gate.approval (id serial primary key, valid boolean not null default true);');
  if (open) await db.exec('insert into gate.approval (valid) values (true)');
}

/** Everything a tier could leave behind: the app schema's catalog and rows, the ledger. */
export async function stateOf(db: Db): Promise<unknown> {
  const cat = await snapshotCatalog(db, ['app']);
  const catalog = Object.fromEntries(Object.entries(cat).map(([k, m]) => [k, [...m.entries()].sort()]));
  const hasItem = (await db.query<{ ok: boolean }>(`select to_regclass('app.item') is not null as ok`)).rows[0]?.ok;
  const items = hasItem ? (await db.query('select * from app.item order by id')).rows : null;
  const hasLedger = (await db.query<{ ok: boolean }>(`select to_regclass('tiergate.ledger') is not null as ok`)).rows[0]?.ok;
  const ledger = hasLedger
    ? (await db.query('select tier_id, status, sha256 from tiergate.ledger order by id')).rows
    : [];
  return { catalog, items, ledger };
}
