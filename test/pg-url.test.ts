import { describe, expect, it } from 'vitest';
import { editPostgresUrl, parsePostgresUrl } from '../src/db/pg-url.js';
import { toolConnection } from '../src/rehearsal/clone-tools.js';
import { redactUrl, scrub } from '../src/secrets.js';

describe('postgres URLs', () => {
  it("read libpq's empty-host form, and keep it when edited", () => {
    const url = 'postgres://app:s3cret@/directus?host=/run/postgresql&port=5433';
    expect(parsePostgresUrl(url)?.username).toBe('app');
    expect(parsePostgresUrl('mysql:nonsense')).toBeNull();
    const edited = editPostgresUrl(url, (u) => {
      u.pathname = '/tiergate_clone_directus_1';
    });
    expect(edited).toBe('postgres://app:s3cret@/tiergate_clone_directus_1?host=/run/postgresql&port=5433');
    // an empty host with a port
    expect(editPostgresUrl('postgres://app@:5433/directus', (u) => void (u.pathname = '/x'))).toBe('postgres://app@:5433/x');
    // a URL with a host is edited as it is
    expect(editPostgresUrl('postgres://app@db:5432/directus', (u) => void (u.pathname = '/x'))).toBe('postgres://app@db:5432/x');
  });

  it('give a child process the URL without its password, and the password in PGPASSWORD', () => {
    const { dbname, env } = toolConnection('postgres://app:s3cret@/directus?host=/run/postgresql');
    // (the query is written again, percent-encoded: libpq decodes it)
    expect(decodeURIComponent(dbname)).toBe('postgres://app@/directus?host=/run/postgresql');
    expect(env.PGPASSWORD).toBe('s3cret');
    const q = toolConnection('postgres://app@db/directus?password=p%40ss&sslmode=require');
    expect(q.dbname).toBe('postgres://app@db/directus?sslmode=require');
    expect(q.env.PGPASSWORD).toBe('p@ss');
  });

  it('redact the password of the empty-host form, in the URL and in its query', () => {
    expect(redactUrl('postgres://app:pw-in-userinfo@/directus?host=/run/pg')).toBe('postgres://app:***@/directus?host=/run/pg');
    const shown = redactUrl('postgres://app@/directus?host=/run/pg&password=pw-in-query&port=5433');
    expect(shown).not.toContain('pw-in-query');
    expect(scrub('connect failed for pw-in-query and pw-in-userinfo')).toBe('connect failed for *** and ***');
  });
});
