import type { Queryable } from '../db/port.js';

/**
 * Evaluates each metric (SQL returning one number) inside its own savepoint:
 * an error — typically an object that does not exist yet — gives `null` and
 * does not poison the surrounding transaction. Must be called inside a
 * transaction.
 */
export async function readMetrics(tx: Queryable, metrics: Record<string, string>): Promise<Record<string, number | null>> {
  const out: Record<string, number | null> = {};
  for (const [name, sql] of Object.entries(metrics)) out[name] = await readNumber(tx, sql);
  return out;
}

/** One number from `sql` in a savepoint; null when it fails or returns no row / a non-number. */
export async function readNumber(tx: Queryable, sql: string): Promise<number | null> {
  await tx.exec('savepoint tiergate_metric');
  try {
    const r = await tx.query(sql);
    await tx.exec('release savepoint tiergate_metric');
    return firstNumber(r.rows[0]);
  } catch {
    await tx.exec('rollback to savepoint tiergate_metric');
    await tx.exec('release savepoint tiergate_metric');
    return null;
  }
}

function firstNumber(row: Record<string, unknown> | undefined): number | null {
  if (!row) return null;
  const v = Object.values(row)[0];
  if (v === null || v === undefined) return null;
  const n = typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : typeof v === 'boolean' ? Number(v) : Number(String(v));
  return Number.isFinite(n) ? n : null;
}
