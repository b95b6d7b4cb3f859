/**
 * The tier files are the deliverable: run by hand with the real
 * `psql -1 -v ON_ERROR_STOP=1 -f FILE` in plan order on a fresh sample, they
 * give the same schema axis (catalog and rows) as run through the driver.
 * Real PostgreSQL only (psql needs a server).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Db } from '../src/db/port.js';
import { testTargets } from './helpers/targets.js';
import { applyTier, catalog, content, gate, openGate, plan, sampleDatabase } from './fixtures/axis-harness/harness.js';

const PSQL = process.env.TIERGATE_TEST_PG_BINDIR && existsSync(join(process.env.TIERGATE_TEST_PG_BINDIR, 'psql'))
  ? join(process.env.TIERGATE_TEST_PG_BINDIR, 'psql')
  : 'psql';

function psql(url: string, args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(PSQL, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', ...args, url], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

const file = (id: number) => plan.tiers.find((t) => t.id === id)!.path;
const STAGE_A = [0, 1, 5, 6];
const STAGE_B = [2, 3, 4, 90];

async function state(db: Db) {
  const c = await catalog(db);
  return { catalog: Object.fromEntries(Object.entries(c).map(([k, m]) => [k, [...m.entries()].sort()])), content: await content(db) };
}

describe.each(testTargets().filter((k) => k === 'postgres'))('tier files run by hand with psql (%s)', (kind) => {
  it('psql -1 -f in plan order gives the same state as the driver; a closed gate stops psql with nothing written', async () => {
    const byDriver = await sampleDatabase(kind);
    const byPsql = await sampleDatabase(kind);
    try {
      for (const id of STAGE_A) await applyTier(byDriver.db, id);
      await openGate(byDriver.db);
      for (const id of STAGE_B) await applyTier(byDriver.db, id);

      for (const id of STAGE_A) expect(psql(byPsql.t.url, ['-1', '-f', file(id)])).toMatchObject({ status: 0 });
      const closed = await state(byPsql.db);
      const refused = psql(byPsql.t.url, ['-1', '-f', file(2)]);
      expect(refused.status).toBe(3); // psql: the script stopped on an error (ON_ERROR_STOP)
      expect(refused.stderr).toContain('ERROR:  tiergate gate ospa is closed (0 < 1): tier 2 refused');
      expect(await state(byPsql.db)).toEqual(closed);

      expect(psql(byPsql.t.url, ['-c', plan.rehearsal!.open_gate!])).toMatchObject({ status: 0 });
      expect(await gate(byPsql.db)).toBe(1);
      for (const id of STAGE_B) expect(psql(byPsql.t.url, ['-1', '-f', file(id)])).toMatchObject({ status: 0 });

      expect(await state(byPsql.db)).toEqual(await state(byDriver.db));

      // and the rollback too
      await applyTier(byDriver.db, 99);
      expect(psql(byPsql.t.url, ['-1', '-f', file(99)])).toMatchObject({ status: 0 });
      expect(await state(byPsql.db)).toEqual(await state(byDriver.db));
    } finally {
      await byDriver.close();
      await byPsql.close();
    }
  });
});
