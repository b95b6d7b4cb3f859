import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { PGLITE_DATABASE_FILE } from './open-db.js';
import { PgliteDb } from './pglite-adapter.js';

/**
 * Creates a PGlite data directory holding an empty database `name`, and
 * records the name so that `pglite:DIR` opens it. Refuses a non-empty folder.
 * Returns the target URL.
 */
export async function createPgliteDatabase(dir: string, name: string): Promise<string> {
  const abs = resolve(dir);
  if (existsSync(abs) && readdirSync(abs).length > 0) {
    throw new UsageError(`'${dir}' is not empty: give a new or empty folder for the PGlite data directory`);
  }
  const admin = await PgliteDb.open({ dir: abs, database: 'postgres' }, `pglite:${abs}`);
  try {
    if (name !== 'postgres') await admin.exec(`create database "${name.replace(/"/g, '""')}"`);
  } finally {
    await admin.close();
  }
  writeFileSync(join(abs, PGLITE_DATABASE_FILE), name);
  return `pglite://${abs}`;
}
