/**
 * Targets and plans for the operator suites (operator.test.ts,
 * operator-tty.test.ts): a fresh target with the engine plan's gate, edited
 * copies of the engine plan, what a test looks at in a target.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withDb, writeDatabaseFile } from '../../src/db/open-db.js';
import type { Db } from '../../src/db/port.js';
import { runCli, type CliRun } from './cli.js';
import { copyEnginePlan, prepareGate } from './engine-fixture.js';
import { freshDatabase, type TargetKind, type TestDatabase } from './targets.js';

/** A copy of the engine plan with each `edit(text)` applied to its file (an edit that changes nothing is an error). */
export function planWith(edits: Record<string, (text: string) => string>): string {
  const dir = copyEnginePlan();
  for (const [file, edit] of Object.entries(edits)) {
    const path = join(dir, file);
    const before = readFileSync(path, 'utf8');
    const after = edit(before);
    if (after === before) throw new Error(`planWith: the edit of ${file} changed nothing`);
    writeFileSync(path, after);
  }
  return dir;
}

/**
 * CLI runs against one target: at once on a server, one after the other on
 * PGlite (a PGlite directory is opened by one process at a time).
 */
export async function cliRuns<R extends string[][]>(kind: string, runs: [...R]): Promise<{ [K in keyof R]: CliRun }> {
  if (kind === 'postgres') return (await Promise.all(runs.map((args) => runCli(args)))) as { [K in keyof R]: CliRun };
  const out: CliRun[] = [];
  for (const args of runs) out.push(await runCli(args));
  return out as { [K in keyof R]: CliRun };
}

export const ids = (r: { tiers: { id: number; status: string }[] }) => Object.fromEntries(r.tiers.map((t) => [t.id, t.status]));

/** What the tests look at in a target, read in one visit (a PGlite open costs seconds): tiergate's and the app's schemas, the ledger, the items. */
export async function inspect(url: string, db?: Db): Promise<{ schemas: string[]; ledger: { tier_id: number; status: string }[]; items: number | null }> {
  const look = async (d: Db) => {
    const schemas = (await d.query<{ n: string }>(`select nspname as n from pg_namespace where nspname in ('app', 'tiergate') order by 1`)).rows.map((r) => r.n);
    const ledger = (await d.query<{ ok: boolean }>(`select to_regclass('tiergate.ledger') is not null as ok`)).rows[0]?.ok
      ? (await d.query<{ tier_id: number; status: string }>('select tier_id, status from tiergate.ledger order by id')).rows
      : [];
    const items = schemas.includes('app') ? Number((await d.query<{ n: number }>('select count(*)::int as n from app.item')).rows[0]?.n) : null;
    return { schemas, ledger, items };
  };
  return db ? look(db) : withDb(url, look);
}

let pgliteTemplate: Promise<TestDatabase> | null = null;

/**
 * A fresh target with the engine plan's gate table, the gate closed. On
 * PGlite a copy of one prepared directory (opening PGlite costs seconds).
 */
export async function gateTarget(kind: TargetKind): Promise<TestDatabase> {
  const prepare = async (t: TestDatabase) => (await withDb(t.url, (db) => prepareGate(db, false)), t);
  if (kind === 'postgres') return prepare(await freshDatabase(kind, 'postgres'));
  pgliteTemplate ??= freshDatabase('pglite', 'postgres').then(prepare);
  const template = await pgliteTemplate;
  const root = mkdtempSync(join(tmpdir(), 'tiergate-pglite-'));
  const dir = join(root, 'data');
  cpSync(template.url.replace(/^pglite:\/\//, ''), dir, { recursive: true });
  writeDatabaseFile(dir, 'postgres');
  return { kind, url: `pglite://${dir}`, database: 'postgres', drop: async () => rmSync(root, { recursive: true, force: true }) };
}

/** Removes the prepared PGlite directory (call in afterAll). */
export async function dropTemplates(): Promise<void> {
  await (await pgliteTemplate)?.drop();
  pgliteTemplate = null;
}

