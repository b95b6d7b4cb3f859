/**
 * sslmode as libpq reads it (psql, pg_dump and pg_restore do): a server with
 * a self-signed certificate is reached with `require` (encrypted, the
 * certificate not verified) and refused by `verify-full`; `prefer` encrypts
 * when it can and falls back when the server has no TLS; `PGSSLMODE` counts
 * as the URL's sslmode; over a Unix socket the sslmode is ignored. On a
 * throwaway cluster of its own with TLS on (openssl makes the certificate).
 */
import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb, withDb } from '../src/db/open-db.js';
import { libpqSslUrls } from '../src/db/ssl-mode.js';
import { startCluster, type Cluster } from '../scripts/pg-cluster.js';
import { runCli } from './helpers/cli.js';
import { ENGINE_PLAN } from './helpers/engine-fixture.js';
import { testTargets } from './helpers/targets.js';

describe('sslmode URLs for node-postgres, as libpq reads them', () => {
  it('each mode: the URLs tried in order; none, a socket, or uselibpqcompat given: the URL as it is', () => {
    const tcp = 'postgres://app@db.example:5432/directus';
    expect(libpqSslUrls(`${tcp}?sslmode=require`, {})).toEqual([`${tcp}?sslmode=require&uselibpqcompat=true`]);
    expect(libpqSslUrls(`${tcp}?sslmode=prefer`, {})).toEqual([`${tcp}?sslmode=prefer&uselibpqcompat=true`, `${tcp}?sslmode=disable&uselibpqcompat=true`]);
    expect(libpqSslUrls(`${tcp}?sslmode=allow`, {})).toEqual([`${tcp}?sslmode=disable&uselibpqcompat=true`, `${tcp}?sslmode=require&uselibpqcompat=true`]);
    expect(libpqSslUrls(tcp, { PGSSLMODE: 'verify-full' })).toEqual([`${tcp}?sslmode=verify-full&uselibpqcompat=true`]);
    expect(libpqSslUrls(tcp, {})).toEqual([tcp]);
    expect(libpqSslUrls(`${tcp}?sslmode=require&uselibpqcompat=false`, {})).toEqual([`${tcp}?sslmode=require&uselibpqcompat=false`]);
    // a socket: sslmode ignored
    // (said as disable: node-postgres would read PGSSLMODE itself)
    expect(libpqSslUrls('postgres://app@/directus?host=/run/postgresql&sslmode=require', {})).toEqual(['postgres://app@/directus?host=%2Frun%2Fpostgresql&sslmode=disable']);
    expect(libpqSslUrls('postgres://app@/directus', { PGSSLMODE: 'require' })).toEqual(['postgres://app@/directus?sslmode=disable']);
  });
});

describe.runIf(testTargets().includes('postgres'))('a server with a self-signed certificate', () => {
  let cluster: Cluster;
  beforeAll(() => {
    const dir = mkdtempSync(join(tmpdir(), 'tiergate-tls-'));
    const [cert, key] = [join(dir, 'server.crt'), join(dir, 'server.key')];
    execFileSync('openssl', ['req', '-new', '-x509', '-days', '2', '-nodes', '-subj', '/CN=tiergate-test', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    if (process.getuid?.() === 0) {
      const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
      for (const f of [dir, cert, key]) chownSync(f, id('-u'), id('-g'));
    }
    cluster = startCluster({ label: 'tls', tcp: true, settings: { ssl: 'on', ssl_cert_file: cert, ssl_key_file: key, fsync: 'off' } });
  }, 120_000);
  afterAll(() => cluster?.destroy());

  const encrypted = async (url: string) => {
    const db = await openDb(url);
    try {
      return (await db.query<{ ssl: boolean }>('select ssl from pg_stat_ssl where pid = pg_backend_pid()')).rows[0]?.ssl;
    } finally {
      await db.close();
    }
  };

  it('require and prefer encrypt without verifying; verify-full refuses the certificate; disable does not encrypt; PGSSLMODE counts', async () => {
    const tcp = cluster.url('postgres', 'postgres', undefined, 'tcp');
    expect(await encrypted(`${tcp}?sslmode=require`)).toBe(true);
    expect(await encrypted(`${tcp}?sslmode=prefer`)).toBe(true);
    expect(await encrypted(`${tcp}?sslmode=allow`)).toBe(false);
    expect(await encrypted(`${tcp}?sslmode=disable`)).toBe(false);
    await expect(openDb(`${tcp}?sslmode=verify-full`)).rejects.toThrow(/self[- ]signed certificate/);
    // the CLI, as a user runs it: no warning about sslmode aliases, exit 0
    const r = await runCli(['status', '--target', `${tcp}?sslmode=require`, '--plan', ENGINE_PLAN]);
    expect(r.stderr).not.toMatch(/SECURITY WARNING|treated as aliases/);
    expect(r.stderr).not.toMatch(/self[- ]signed|cannot connect/);
    const env = await runCli(['status', '--target', tcp, '--plan', ENGINE_PLAN], { env: { PGSSLMODE: 'require' } });
    expect(env.stderr).not.toMatch(/self[- ]signed|SECURITY WARNING|cannot connect/);
  });

  it('a server that takes this user over TCP only with TLS (hostnossl … reject): the refusal says to add sslmode, not to check the password', async () => {
    const hba = join(cluster.data, 'pg_hba.conf');
    const before = readFileSync(hba, 'utf8');
    const reload = () => withDb(cluster.url('postgres'), (db) => db.query('select pg_reload_conf()'));
    writeFileSync(hba, `hostnossl all all 127.0.0.1/32 reject\n${before}`);
    await reload();
    try {
      const tcp = cluster.url('postgres', 'postgres', undefined, 'tcp');
      const r = await runCli(['status', '--target', `${tcp}?sslmode=disable`, '--plan', ENGINE_PLAN]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/no encryption .*the server accepts this user from this host only over TLS: add sslmode=require/);
      expect(r.stderr).not.toMatch(/check the user and password/);
    } finally {
      writeFileSync(hba, before);
      await reload();
    }
  });

  it('over the Unix socket the sslmode is ignored, as libpq ignores it', async () => {
    expect(await encrypted(`${cluster.url('postgres')}&sslmode=require`)).toBe(false);
  });

  it('a server without TLS: prefer and allow connect without it, require is refused', async () => {
    const plain = startCluster({ label: 'notls', tcp: true, settings: { fsync: 'off' } });
    try {
      const tcp = plain.url('postgres', 'postgres', undefined, 'tcp');
      expect(await encrypted(`${tcp}?sslmode=prefer`)).toBe(false);
      expect(await encrypted(`${tcp}?sslmode=allow`)).toBe(false);
      await expect(openDb(`${tcp}?sslmode=require`)).rejects.toThrow(/does not support SSL/);
      // PGSSLMODE=require in the environment (for the TCP servers) and this server's Unix socket: ignored there, as libpq does
      const before = process.env.PGSSLMODE;
      process.env.PGSSLMODE = 'require';
      try {
        expect(await encrypted(plain.url('postgres'))).toBe(false);
      } finally {
        if (before === undefined) delete process.env.PGSSLMODE;
        else process.env.PGSSLMODE = before;
      }
    } finally {
      plain.destroy();
    }
  }, 120_000);
});
