import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCache, writeCache } from '../src/cache.js';
import { PlanError } from '../src/errors.js';
import { forgetScripts, splitStatements, touchedRelations } from '../src/plan/lint.js';
import { loadPlan } from '../src/plan/load-plan.js';
import { openPlan } from '../src/plan/open-plan.js';
import { bundledPlanDir } from '../src/plan/plan.js';
import { runCli } from './helpers/cli.js';

/**
 * tiergate's cache keeps the validated plan of a tiergate.yaml and the parse
 * of a tier file between runs. It must give the same values as no cache, miss
 * on any change, and never be trusted for what is sent to the server.
 */
let cacheDir: string;
let work: string;
const saved = { dir: process.env.TIERGATE_CACHE_DIR, off: process.env.TIERGATE_CACHE };

beforeAll(() => {
  cacheDir = mkdtempSync(join(tmpdir(), 'tiergate-cache-'));
  work = mkdtempSync(join(tmpdir(), 'tiergate-cache-plan-'));
  process.env.TIERGATE_CACHE_DIR = cacheDir;
  delete process.env.TIERGATE_CACHE;
});
afterAll(() => {
  for (const [key, value] of [['TIERGATE_CACHE_DIR', saved.dir], ['TIERGATE_CACHE', saved.off]] as const) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  rmSync(cacheDir, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

const entries = (kind: string) => {
  try {
    return readdirSync(join(cacheDir, kind)).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
};

describe('the plan cache', () => {
  it('gives the plan loadPlan gives, and misses when tiergate.yaml changes', async () => {
    const dir = join(work, 'plan');
    cpSync(bundledPlanDir(), dir, { recursive: true });
    const fresh = loadPlan(dir);
    expect(entries('plan')).toHaveLength(1);
    const cached = await openPlan(dir);
    expect(cached).toEqual(fresh);
    // it is the entry that answers (an entry changed by hand shows through): no YAML parser, no schema
    const [entryFile] = entries('plan');
    const entryPath = join(cacheDir, 'plan', entryFile!);
    const entry = readFileSync(entryPath, 'utf8');
    writeFileSync(entryPath, entry.replace('"plan":"axis-governance"', '"plan":"from-the-cache"'));
    expect((await openPlan(dir)).name).toBe('from-the-cache');
    // an entry someone else could have written is not read (the plan is validated again)
    chmodSync(entryPath, 0o664);
    expect((await openPlan(dir)).name).toBe('axis-governance');
    chmodSync(entryPath, 0o600);
    writeFileSync(entryPath, entry);
    // an entry without the shape of a plan is a miss
    writeFileSync(entryPath, entry.replace(/"tiers":\[.*\]\}\}$/, '"tiers":[]}}'));
    expect(await openPlan(dir)).toEqual(fresh);

    // a changed tiergate.yaml is validated again: its new problem is reported, not the old plan
    const yamlPath = join(dir, 'tiergate.yaml');
    const yaml = readFileSync(yamlPath, 'utf8');
    writeFileSync(yamlPath, yaml.replace('kind: structure', 'kind: structur'));
    const error = await openPlan(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PlanError);
    expect((error as PlanError).message).toMatch(/tiers\[\d+\]\.kind: expected one of/);

    // the tier files are checked on every run: a missing file is reported although tiergate.yaml is cached
    writeFileSync(yamlPath, yaml);
    rmSync(join(dir, 'tiers', '05_scanner.sql'));
    const missing = await openPlan(dir).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(PlanError);
    expect((missing as PlanError).message).toMatch(/file 'tiers\/05_scanner.sql' does not exist/);
  });

  it('is not used with TIERGATE_CACHE=off, and a damaged entry is a miss', async () => {
    const dir = join(work, 'plan-off');
    cpSync(bundledPlanDir(), dir, { recursive: true });
    writeFileSync(join(dir, 'tiergate.yaml'), `${readFileSync(join(dir, 'tiergate.yaml'), 'utf8')}\n# off\n`);
    const before = entries('plan').length;
    process.env.TIERGATE_CACHE = 'off';
    try {
      loadPlan(dir);
      expect(entries('plan')).toHaveLength(before);
    } finally {
      delete process.env.TIERGATE_CACHE;
    }
    loadPlan(dir);
    expect(entries('plan')).toHaveLength(before + 1);
    for (const f of entries('plan')) writeFileSync(join(cacheDir, 'plan', f), '{"key": "');
    expect(await openPlan(dir)).toEqual(loadPlan(dir));
  });
});

describe('the parse cache', () => {
  const sql = `-- a tier
CREATE TABLE t (id int);

/* two statements on one line */ INSERT INTO t VALUES (1);  INSERT INTO t VALUES (2);;
DO $$ BEGIN PERFORM 1; END $$;
`;

  it('gives the statements and relations of a fresh parse', async () => {
    forgetScripts();
    const fresh = { statements: await splitStatements(sql), touched: await touchedRelations(sql) };
    expect(entries('parse').length).toBeGreaterThan(0);
    forgetScripts();
    const cached = { statements: await splitStatements(sql), touched: await touchedRelations(sql) };
    expect(cached).toEqual(fresh);
    expect(cached.statements.map((s) => [s.line, s.sql])).toEqual([
      [2, 'CREATE TABLE t (id int)'],
      [4, 'INSERT INTO t VALUES (1)'],
      [4, 'INSERT INTO t VALUES (2)'],
      [5, 'DO $$ BEGIN PERFORM 1; END $$'],
    ]);
    expect(cached.touched.writes).toEqual(['t']);
  });

  it('an entry that does not cover the whole script is ignored: the file is parsed again', async () => {
    forgetScripts();
    const text = `${sql}\nINSERT INTO t VALUES (3);\n`;
    const fresh = await splitStatements(text);
    let damaged = 0;
    for (const f of entries('parse')) {
      const path = join(cacheDir, 'parse', f);
      const entry = JSON.parse(readFileSync(path, 'utf8')) as { value: { statements: unknown[] } };
      if (entry.value.statements.length !== fresh.length) continue;
      // a statement dropped from the entry (a damaged or doctored cache) would skip part of the file
      entry.value.statements.splice(1, 1);
      writeFileSync(path, JSON.stringify(entry));
      damaged++;
    }
    expect(damaged).toBe(1);
    forgetScripts();
    expect(await splitStatements(text)).toEqual(fresh);
  });

  it('the CLI runs a plan with and without the cache, with the same result', async () => {
    const env = { TIERGATE_CACHE_DIR: cacheDir };
    const on = await runCli(['plan', '--json'], { env });
    const off = await runCli(['plan', '--json'], { env: { ...env, TIERGATE_CACHE: 'off' } });
    expect(on.code).toBe(0);
    expect(off.code).toBe(0);
    expect(JSON.parse(on.stdout)).toEqual(JSON.parse(off.stdout));
  });
});

describe('the cache directory', () => {
  it('keeps at most 256 entries of a kind, the latest written', () => {
    for (let i = 0; i < 300; i++) writeCache('bounded', `key ${i}`, { i });
    expect(entries('bounded').length).toBeLessThanOrEqual(256);
    expect(readCache('bounded', 'key 299')).toEqual({ i: 299 });
    expect(readCache('bounded', 'key 0')).toBeUndefined();
  });
});
