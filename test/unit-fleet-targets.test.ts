/**
 * A fleet's targets file (src/fleet/targets.ts): validation with a path in
 * every message, waves by count, percent and labels, the per-server key, and
 * passwords kept out of everything shown or stored. No database.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assignWaves, databaseOf, fleetPasswordMessage, readFleetFile, resolveFleet, serverOf, withoutPassword, type FleetTarget } from '../src/fleet/targets.js';
import { scrub } from '../src/secrets.js';

const dir = mkdtempSync(join(tmpdir(), 'tiergate-fleet-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
async function fleetOf(yaml: string) {
  const file = join(dir, `f${n++}.yaml`);
  writeFileSync(file, yaml);
  return resolveFleet(await readFleetFile(file));
}
async function problems(yaml: string): Promise<string> {
  try {
    await fleetOf(yaml);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected the targets file to be refused');
}

const target = (name: string, labels: Record<string, string> = {}): FleetTarget => ({ name, url: `postgres://h/${name}`, shown: `postgres://h/${name}`, server: 'h:5432', passwordEnv: null, labels });

describe('waves', () => {
  const ten = Array.from({ length: 10 }, (_, i) => target(`t${i}`, { region: i < 3 ? 'eu' : 'us' }));

  it('take a count, a percent of the whole fleet (rounded up, at least one), labels, then the rest, in file order', () => {
    const waves = assignWaves([{ name: 'canary', count: 1 }, { name: 'ten', percent: 10 }, { name: 'eu', labels: { region: 'eu' } }, { name: 'rest' }], ten);
    expect(waves.map((w) => [w.name, w.targets.map((t) => t.name)])).toEqual([
      ['canary', ['t0']],
      ['ten', ['t1']],
      ['eu', ['t2']],
      ['rest', ['t3', 't4', 't5', 't6', 't7', 't8', 't9']],
    ]);
    expect(assignWaves([{ name: 'a', percent: 25 }, { name: 'b' }], ten)[0]!.targets).toHaveLength(3);
    expect(assignWaves([{ name: 'a', percent: 0.5 }, { name: 'b' }], ten)[0]!.targets).toHaveLength(1);
  });

  it('default to no failure allowed, stop on error, NO-GO reported', () => {
    expect(assignWaves([{ name: 'all' }], ten)[0]).toMatchObject({ failureBudget: 0, onError: 'stop', noGo: 'report' });
    expect(assignWaves([{ name: 'all', failure_budget: 2, on_error: 'continue', no_go: 'fail' }], ten)[0]).toMatchObject({ failureBudget: 2, onError: 'continue', noGo: 'fail' });
  });
});

describe('the targets file', () => {
  it('lists targets with url or connection, labels, waves, limits and the scratch server', async () => {
    process.env.TIERGATE_UNIT_FLEET_PW = 'env-secret-1';
    const f = await fleetOf(`
plan_database: from_targets
concurrency: { total: 8, per_server: 3 }
scratch: postgres://deploy@scratch:5432/postgres
targets:
  - { name: a, url: "postgres://deploy:inline-secret-2@db1:5433/tenant_a", labels: { region: eu, tier: 1 } }
  - { name: b, connection: { host: db2, user: deploy, database: tenant_b }, password_env: TIERGATE_UNIT_FLEET_PW }
  - { name: c, url: "postgres://deploy@/tenant_c?host=/run/postgresql&port=5434" }
waves:
  - { name: canary, count: 1 }
  - { name: rest, failure_budget: 1 }
`);
    expect(f.concurrency).toEqual({ total: 8, perServer: 3 });
    expect(f.planDatabase).toBe('from_targets');
    expect(f.targets.map((t) => [t.name, t.server, t.shown, t.labels])).toEqual([
      ['a', 'db1:5433', 'postgres://deploy@db1:5433/tenant_a', { region: 'eu', tier: '1' }],
      ['b', 'db2:5432', 'postgres://deploy@db2:5432/tenant_b', {}],
      ['c', '/run/postgresql:5434', 'postgres://deploy@/tenant_c?host=%2Frun%2Fpostgresql&port=5434', {}],
    ]);
    // the connection keeps the password; nothing shown does, and both are registered secrets
    expect(f.targets[0]!.url).toContain('inline-secret-2');
    expect(f.targets[1]!.url).toContain('env-secret-1');
    expect(scrub('inline-secret-2 env-secret-1')).toBe('*** ***');
    expect(f.waves.map((w) => [w.name, w.targets.length, w.failureBudget])).toEqual([
      ['canary', 1, 0],
      ['rest', 2, 1],
    ]);
    // the same file is the same fleet; another wave rule is another
    const again = await fleetOf(`plan_database: from_targets\nconcurrency: { total: 8, per_server: 3 }\ntargets:\n  - { name: a, url: "postgres://deploy:other@db1:5433/tenant_a", labels: { region: eu, tier: 1 } }\n  - { name: b, connection: { host: db2, user: deploy, database: tenant_b } }\n  - { name: c, url: "postgres://deploy@/tenant_c?host=/run/postgresql&port=5434" }\nwaves:\n  - { name: canary, count: 1 }\n  - { name: rest, failure_budget: 1 }\n`);
    expect(again.sha256).toBe(f.sha256);
    const other = await fleetOf(`plan_database: from_targets\ntargets:\n  - { name: a, url: "postgres://deploy@db1:5433/tenant_a", labels: { region: eu, tier: 1 } }\n  - { name: b, connection: { host: db2, user: deploy, database: tenant_b } }\n  - { name: c, url: "postgres://deploy@/tenant_c?host=/run/postgresql&port=5434" }\nwaves:\n  - { name: canary, count: 1 }\n  - { name: rest, failure_budget: 2 }\n`);
    expect(other.sha256).not.toBe(f.sha256);
  });

  it('is refused with every problem and its path, and no password in the message', async () => {
    const message = await problems(`
target: x
concurrency: { total: 0, per_server: 2.5 }
targets:
  - { name: "bad name", url: "postgres://u:hidden-secret-3@h/db" }
  - { name: ok, url: "postgres://u:hidden-secret-3@h:notaport/db" }
  - { name: ok, url: "pglite:memory" }
  - { name: nourl }
  - { name: both, url: "postgres://h/a", connection: { database: a } }
waves:
  - { name: canary, count: 1, percent: 10 }
  - { name: eu, labels: { region: eu } }
  - { name: x, on_error: maybe, no_go: sometimes }
`);
    expect(message).toContain("targets file '");
    for (const path of [
      'target: unknown key',
      'concurrency.total: must be a whole number from 1 to 256 (got 0)',
      'concurrency.per_server: must be a whole number from 1 to 64 (got 2.5)',
      'targets[0].name: must be a name',
      'targets[1].url:',
      'targets[2].url: an in-memory PGlite database cannot be a fleet target',
      'targets[3].url: missing',
      'targets[4]: give either url or connection, not both',
    ]) {
      expect(message).toContain(path);
    }
    expect(message).not.toContain('hidden-secret-3');
    // an entry's problems are all said, whatever else is wrong with it; two entries of one database are one too many
    const all = await problems(`
targets:
  - { name: acme, url: "postgres://h/acme", labels: { region: eu } }
  - { name: acme, url: "postgres://h:notaport/x" }
  - { name: "bad name", connection: { host: h } }
  - { name: again, url: "postgres://h/acme" }
waves:
  - { name: first, count: 1 }
  - { name: mars, labels: { region: mars } }
  - { name: rest }
`);
    for (const path of [
      "targets[1].name: 'acme' is named twice",
      'targets[1].url:',
      'targets[2].name: must be a name',
      'targets[2].connection.database: missing',
      "targets[3].url: the same database as target 'acme' (h:5432/acme): a database is one target",
      "waves[1]: wave 'mars' selects no target (no remaining target has the labels region=mars)",
    ]) {
      expect(all).toContain(path);
    }
    const waves = await problems(`
targets:
  - { name: a, url: "postgres://h/a" }
  - { name: a, url: "postgres://h/b" }
waves:
  - { name: canary, count: 1, percent: 10 }
  - { name: eu, labels: { region: eu } }
  - { name: x, count: 0, on_error: maybe, no_go: sometimes }
`);
    for (const path of [
      "targets[1].name: 'a' is named twice",
      'waves[0]: give count or percent, not both',
      "waves[1]: wave 'eu' selects no target",
      'waves[2].count: must be a whole number',
      'waves[2].on_error: must be stop or continue',
      'waves[2].no_go: must be report or fail',
    ]) {
      expect(waves).toContain(path);
    }
    // a wave whose only target is refused for a problem of its own: that problem, not an empty wave besides
    const refused = await problems(`
targets:
  - { name: a, url: "postgres://h/a" }
  - { name: b, url: "b:pw@h/b", labels: { region: us } }
waves:
  - { name: canary, count: 1 }
  - { name: us, labels: { region: us } }
  - { name: rest }
`);
    expect(refused).toContain('targets[1].url:');
    expect(refused).not.toContain('selects no target');
    expect(refused).not.toContain(':pw@');
    expect(await problems('targets:\n  - { name: a, url: "postgres://h/a" }\n  - { name: b, url: "postgres://h/b" }\nwaves:\n  - { name: one, count: 1 }\n')).toContain('1 target is in no wave (b): end with a wave without count, percent or labels to take the rest');
    expect(await problems('just text')).toContain('(file): must be a mapping');
    expect(await problems('targets: [\n')).toContain('is not valid YAML');
    expect(await problems('inventory: { url: postgres://h/inv }')).toContain('inventory: must be {url: postgres://…, query: select name, url, … from …}');
  });

  it('that does not exist, or is not a file, is named as such', async () => {
    await expect(readFleetFile(join(dir, 'nope.yaml'))).rejects.toThrow(/targets file '.*nope.yaml' does not exist/);
    await expect(readFleetFile(dir)).rejects.toThrow(/is a folder, not a regular file/);
  });
});

describe('servers and passwords', () => {
  it('key a target by host and port, a socket folder and port, or a PGlite folder', () => {
    expect(serverOf('postgres://u@db.internal/x')).toBe('db.internal:5432');
    expect(serverOf('postgres://u@db.internal:6543/x')).toBe('db.internal:6543');
    expect(serverOf('postgres://u@/x?host=/run/pg&port=5499')).toBe('/run/pg:5499');
    expect(serverOf('pglite:///tmp/t1')).toBe('pglite:/tmp/t1');
    // this machine's loopback, by any of its names, is one server
    for (const url of ['postgres://u@127.0.0.1:5521/x', 'postgres://u@LOCALHOST:5521/x', 'postgres://u@[::1]:5521/x', 'postgres://u@127.0.0.2:5521/x']) expect(serverOf(url), url).toBe('localhost:5521');
  });

  it('key a database by its server and name, whoever connects to it', () => {
    const key = 'localhost:5521/ten2';
    for (const url of ['postgres://postgres@127.0.0.1:5521/ten2', 'postgres://deploy:pw-x@localhost:5521/ten2', 'postgres://ten2@localhost:5521']) expect(databaseOf(url), url).toBe(key);
    expect(databaseOf('postgres://u@localhost:5521/ten3')).not.toBe(key);
    expect(databaseOf('postgres://u@localhost:5522/ten2')).not.toBe(key);
  });

  it('refuse one database listed under two URLs (another host name for this machine, another user)', async () => {
    const message = await problems(`
targets:
  - { name: a, url: "postgres://postgres@127.0.0.1:5521/ten2" }
  - { name: b, url: "postgres://postgres@localhost:5521/ten2" }
  - { name: c, url: "postgres://deploy@127.0.0.1:5521/ten2" }
  - { name: d, url: "postgres://postgres@127.0.0.1:5521/ten3" }
`);
    expect(message).toContain("targets[1].url: the same database as target 'a' (localhost:5521/ten2, under another URL: postgres://postgres@localhost:5521/ten2)");
    expect(message).toContain("targets[2].url: the same database as target 'a' (localhost:5521/ten2, under another URL: postgres://deploy@127.0.0.1:5521/ten2)");
    expect(message).not.toContain('targets[3]');
  });

  it('never keep a password in what is shown', () => {
    expect(withoutPassword('postgres://u:p4ss-secret-4@h:5/x?sslmode=require')).toBe('postgres://u@h:5/x?sslmode=require');
    expect(withoutPassword('postgres://u@h/x?password=p4ss-secret-5')).toBe('postgres://u@h/x');
    expect(scrub('p4ss-secret-4')).toBe('***');
  });
});

describe("a fleet step's failure in one line", () => {
  it("names the tier, its place, the SQLSTATE, the message and the server's detail: a lock timeout names who held the lock", async () => {
    const { runError } = await import('../src/fleet/run-target.js');
    const failed = {
      id: 8,
      name: 'Approvals in Directus',
      status: 'Failed',
      error: {
        message: 'canceling statement due to lock timeout',
        sqlstate: '55P03',
        detail: "blocked by pid 31435 'psql' (user postgres) holding ShareLock on directus_fields, idle in transaction",
        hint: null,
        file: 'tiers/08_approvals_in_directus.sql',
        line: 12,
      },
    };
    const r = { outcome: 'failed', tiers: [failed] } as unknown as Parameters<typeof runError>[0];
    expect(runError(r)).toBe(
      "tier 8 'Approvals in Directus' at tiers/08_approvals_in_directus.sql:12: 55P03 canceling statement due to lock timeout (blocked by pid 31435 'psql' (user postgres) holding ShareLock on directus_fields, idle in transaction)",
    );
  });
});

describe('a target refused for want of a password', () => {
  const refused =
    'cannot connect to postgres://deploy@db1:5432/acme: the server asks for a password and none was given; put it in the URL (postgres://user:PASSWORD@host/db, percent-encoded), in PGPASSWORD or in ~/.pgpass (a fleet target: the variable its password_env names)';
  it('says which worker had none, and where a password reaches it from', () => {
    expect(fleetPasswordMessage(refused, { name: 'acme', passwordEnv: null }, 'worker vm:123', false)).toBe(
      "cannot connect to postgres://deploy@db1:5432/acme: the server asks for a password and worker vm:123 has none for target acme: a password in the targets file's URL reaches only the processes that read the file (fleet plan, the coordinator's own workers): give the target password_env and set it for every worker, or use PGPASSWORD or ~/.pgpass on worker vm:123's machine",
    );
    delete process.env.TIERGATE_UNIT_UNSET_PW;
    expect(fleetPasswordMessage(refused, { name: 'acme', passwordEnv: 'TIERGATE_UNIT_UNSET_PW' }, 'fleet plan', true)).toMatch(
      /and fleet plan has none for target acme: its password_env names TIERGATE_UNIT_UNSET_PW, which is not set \(or empty\) in fleet plan's environment: set it there$/,
    );
    expect(fleetPasswordMessage(refused, { name: 'acme', passwordEnv: null }, 'fleet plan', true)).toMatch(/the targets file gives it no password: add one to its URL, or give it password_env$/);
    // any other refusal is left as it is
    expect(fleetPasswordMessage('cannot connect to …: password authentication failed for user "deploy"', { name: 'acme', passwordEnv: null }, 'fleet plan', true)).toBe(
      'cannot connect to …: password authentication failed for user "deploy"',
    );
  });
});
