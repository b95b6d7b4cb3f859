/**
 * Vitest global setup: gives the suite a real PostgreSQL server and a PGlite
 * template directory.
 *
 * - TIERGATE_TEST_DATABASE_URL set: that server is used (it must allow CREATE DATABASE).
 * - otherwise a throwaway cluster is started from the installed PostgreSQL
 *   binaries (as the `postgres` user when run as root), in a temporary
 *   directory, listening on a Unix socket only, and stopped afterwards.
 * - TIERGATE_TEST_PGLITE_TEMPLATE set to an existing directory: that PGlite
 *   template is copied for each PGlite test database; otherwise one is built.
 * - no binaries: the PostgreSQL suites cannot run. Locally that is a loud
 *   warning; with CI=true it is a failure.
 */
import { cpSync, chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { findBinDir, startCluster } from '../../scripts/pg-cluster.js';

export const PG_URL_KEY = 'TIERGATE_TEST_DATABASE_URL';
export const PGLITE_TEMPLATE_KEY = 'TIERGATE_TEST_PGLITE_TEMPLATE';

export async function buildPgliteTemplate(dir: string): Promise<void> {
  const { PGlite } = await import('@electric-sql/pglite');
  const db = new PGlite(dir);
  await db.waitReady;
  await db.exec('create database directus');
  await db.close();
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cleanups: (() => void)[] = [];
  const root = mkdtempSync(join(tmpdir(), 'tiergate-test-'));
  chmodSync(root, 0o755);
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  // every temporary directory of the run (tests, the CLIs they start, the
  // server's cluster) goes under the run's own folder, removed at the end
  const temp = join(root, 'tmp');
  mkdirSync(temp, { mode: 0o755 });
  process.env.TMPDIR = temp;

  // a template given by the caller (npm run test:guarantees builds one for all its runs) is used as it is
  const given = process.env[PGLITE_TEMPLATE_KEY];
  if (!given || !existsSync(given)) {
    const template = join(root, 'pglite-template');
    await buildPgliteTemplate(template);
    process.env[PGLITE_TEMPLATE_KEY] = template;
  }

  if (!process.env[PG_URL_KEY]) {
    if (!findBinDir()) {
      const msg =
        'tiergate tests: no PostgreSQL server binaries found (pg_config --bindir, /usr/lib/postgresql/*/bin) and ' +
        `${PG_URL_KEY} is not set. The real-PostgreSQL suites CANNOT RUN; only PGlite suites will. ` +
        'Install them (apt-get install -y postgresql) or set the variable.';
      if (process.env.CI === 'true') throw new Error(msg + ' With CI=true this is a failure.');
      console.warn('\n' + '!'.repeat(100) + '\n' + msg + '\n' + '!'.repeat(100) + '\n');
    } else {
      const cluster = startCluster({
        label: 'test-pg',
        settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', max_connections: '200' },
      });
      cleanups.unshift(() => cluster.destroy());
      process.env[PG_URL_KEY] = cluster.url('postgres');
      process.env.TIERGATE_TEST_PG_BINDIR = cluster.bin;
      process.env.TIERGATE_TEST_PG_SOCKET = cluster.socket;
      process.env.TIERGATE_TEST_PG_PORT = String(cluster.port);
      writeFileSync(join(root, 'server.url'), process.env[PG_URL_KEY]!);
    }
  }
  project.provide?.('tiergateRoot' as never, root as never);
  return async () => {
    for (const c of cleanups) c();
  };
}

export function copyPgliteTemplate(into: string): void {
  const template = process.env[PGLITE_TEMPLATE_KEY];
  if (!template) throw new Error('the PGlite template is missing: run the tests through vitest (test/setup/postgres.ts)');
  cpSync(template, into, { recursive: true });
}
