/**
 * Vitest global setup: gives the suite a real PostgreSQL server and a PGlite
 * template directory.
 *
 * - TIERGATE_TEST_DATABASE_URL set: that server is used (it must allow CREATE DATABASE).
 * - otherwise a throwaway cluster is started from the installed PostgreSQL
 *   binaries (as the `postgres` user when run as root), in a temporary
 *   directory, listening on a Unix socket only, and stopped afterwards.
 * - no binaries: the PostgreSQL suites cannot run. Locally that is a loud
 *   warning; with CI=true it is a failure.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';

export const PG_URL_KEY = 'TIERGATE_TEST_DATABASE_URL';
export const PGLITE_TEMPLATE_KEY = 'TIERGATE_TEST_PGLITE_TEMPLATE';

function findBinDir(): string | null {
  const candidates: string[] = [];
  const fromConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (fromConfig.status === 0) candidates.push(fromConfig.stdout.trim());
  if (existsSync('/usr/lib/postgresql')) {
    for (const v of readdirSync('/usr/lib/postgresql').sort().reverse()) candidates.push(`/usr/lib/postgresql/${v}/bin`);
  }
  return candidates.find((d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl'))) ?? null;
}

function asPostgresUser(cmd: string, args: string[]): void {
  const isRoot = process.getuid?.() === 0;
  const [file, argv] = isRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  execFileSync(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
}

async function buildPgliteTemplate(dir: string): Promise<void> {
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

  const template = join(root, 'pglite-template');
  await buildPgliteTemplate(template);
  process.env[PGLITE_TEMPLATE_KEY] = template;

  if (!process.env[PG_URL_KEY]) {
    const bin = findBinDir();
    if (!bin) {
      const msg =
        'tiergate tests: no PostgreSQL server binaries found (pg_config --bindir, /usr/lib/postgresql/*/bin) and ' +
        `${PG_URL_KEY} is not set. The real-PostgreSQL suites CANNOT RUN; only PGlite suites will. ` +
        'Install them (apt-get install -y postgresql) or set the variable.';
      if (process.env.CI === 'true') throw new Error(msg + ' With CI=true this is a failure.');
      console.warn('\n' + '!'.repeat(100) + '\n' + msg + '\n' + '!'.repeat(100) + '\n');
    } else {
      const pgdir = join(root, 'pg');
      const data = join(pgdir, 'data');
      const sock = join(pgdir, 'sock');
      execFileSync('mkdir', ['-p', sock]);
      if (process.getuid?.() === 0) {
        const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
        const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
        chownSync(pgdir, uid, gid);
        chownSync(sock, uid, gid);
      }
      asPostgresUser(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync']);
      const port = 20000 + Math.floor(Math.random() * 20000);
      const opts = [`-k ${sock}`, `-p ${port}`, "-c listen_addresses=''", '-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off', '-c max_connections=200'];
      asPostgresUser(join(bin, 'pg_ctl'), ['-D', data, '-o', opts.join(' '), '-l', join(pgdir, 'log'), '-w', '-t', '60', 'start']);
      cleanups.unshift(() => {
        try {
          asPostgresUser(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
        } catch {
          /* already stopped */
        }
      });
      process.env[PG_URL_KEY] = `postgres://postgres@localhost:${port}/postgres?host=${encodeURIComponent(sock)}`;
      process.env.TIERGATE_TEST_PG_BINDIR = bin;
      process.env.TIERGATE_TEST_PG_SOCKET = sock;
      process.env.TIERGATE_TEST_PG_PORT = String(port);
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
