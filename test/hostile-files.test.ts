/**
 * Hostile files and forged evidence (issue: nothing outside its place is read
 * or written, and evidence cannot be edited into a PASS): evidence is never
 * written through a link; an --out that is a file is refused before any work;
 * a PGlite template another user could write is not used; edited, oversized,
 * polluted or unknown-field evidence is refused, signatures are verified;
 * unusable URLs are exit 2; special files and oversized files are refused for
 * what they are; links out of the plan folder are refused; control characters
 * and bidi overrides never reach the terminal.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, closeSync, cpSync, existsSync, lstatSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withDb } from '../src/db/open-db.js';
import { renderJson } from '../src/evidence/evidence-json.js';
import type { Evidence } from '../src/evidence/types.js';
import { bundledPlanDir } from '../src/plan/plan.js';
import { writeFilesSafely } from '../src/cli/write-file.js';
import { writeSample } from '../fixtures/directus-sample/generate.js';
import { axisGovernanceEvidence } from './fixtures/evidence-sample.js';
import { scalar } from './fixtures/axis-harness/harness.js';
import { runCli } from './helpers/cli.js';
import { ENGINE_PLAN } from './helpers/engine-fixture.js';
import { approveAs, evidenceFile, rehearseSource } from './helpers/rollout.js';
import { freshDatabase, serverUrl, testTargets, type TestDatabase } from './helpers/targets.js';

const tmp = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));
const UNSAFE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

function planCopy(): string {
  const dir = join(tmp('tiergate-plan-'), 'plan');
  cpSync(bundledPlanDir(), dir, { recursive: true });
  return dir;
}

describe('evidence files: never through a link, never over a file', () => {
  it('rehearse --out replaces a link instead of writing through it; an --out that is a file is refused before any work', async () => {
    const out = tmp('tiergate-out-');
    const victim = join(tmp('tiergate-victim-'), 'victim.txt');
    writeFileSync(victim, 'precious\n');
    symlinkSync(victim, join(out, 'evidence.html'));
    const r = await runCli(['rehearse', '--out', out], { timeoutMs: 300_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
    expect(readFileSync(join(out, 'evidence.html'), 'utf8')).toMatch(/^<!doctype html>/i);

    const file = join(tmp('tiergate-out-'), 'not-a-folder');
    writeFileSync(file, 'x');
    const refused = await runCli(['rehearse', '--out', file]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--out .*not-a-folder is not a folder/);
    expect(refused.stdout).not.toMatch(/stage A/);
    expect(readFileSync(file, 'utf8')).toBe('x');

    // a folder that cannot be made (under /proc: Node's recursive mkdir spun there forever) is refused at once
    const proc = await runCli(['rehearse', '--out', '/proc/tiergate-no-such/evidence'], { timeoutMs: 30_000 });
    expect(proc.code).toBe(2);
    expect(proc.stderr).toMatch(/--out \/proc\/tiergate-no-such\/evidence: cannot create the folder \(ENOENT\)/);
  });

  it('two writers to one folder never interleave their files', async () => {
    const dir = tmp('tiergate-out-');
    const set = (tag: string) => ({ 'evidence.json': `${tag}\n`.repeat(50_000), 'evidence.md': `${tag}\n`.repeat(50_000), 'evidence.html': `${tag}\n`.repeat(50_000) });
    for (let i = 0; i < 5; i++) {
      await Promise.all([writeFilesSafely(dir, set('A')), writeFilesSafely(dir, set('B'))]);
      const first = readdirSync(dir).filter((f) => f.startsWith('evidence.')).map((f) => readFileSync(join(dir, f), 'utf8').slice(0, 1));
      expect(new Set(first).size, `round ${i}: ${first.join('')}`).toBe(1);
    }
    expect(readdirSync(dir).filter((f) => f.startsWith('.'))).toEqual([]);
  });
});

describe('the PGlite template is trusted only when it is this user’s alone', () => {
  it('a template others could write is not copied into a sample', async () => {
    const cache = tmp('tiergate-cache-');
    chmodSync(cache, 0o700);
    const env = { TIERGATE_CACHE_DIR: cache };
    // a first sample builds the template in the cache
    const first = await runCli(['sample', '--pglite', join(tmp('tiergate-s-'), 'db')], { env, timeoutMs: 300_000 });
    expect(first.code, first.stderr).toBe(0);
    const template = readdirSync(cache).find((d) => d.startsWith('pglite-') && d.endsWith('-directus'));
    expect(template).toBeDefined();
    // a table added to it: while the template is this user's alone, samples are copies of it (the control: it is in use)
    const { PGlite } = await import('@electric-sql/pglite');
    const pg = new PGlite(join(cache, template!), { database: 'directus' });
    await pg.exec('create table poison (id int)');
    await pg.close();
    const trusted = join(tmp('tiergate-s-'), 'db');
    expect((await runCli(['sample', '--pglite', trusted], { env, timeoutMs: 300_000 })).code).toBe(0);
    expect(await withDb(`pglite://${trusted}`, (db) => scalar(db, `select count(*)::int as v from pg_class where relname = 'poison'`))).toBe(1);
    // poisoned: the folder made writable by everyone
    execFileSync('chmod', ['-R', 'o+w', join(cache, template!)]);
    const dir = join(tmp('tiergate-s-'), 'db');
    const second = await runCli(['sample', '--pglite', dir], { env, timeoutMs: 300_000 });
    expect(second.code, second.stderr).toBe(0);
    expect(await withDb(`pglite://${dir}`, (db) => scalar(db, `select count(*)::int as v from pg_class where relname = 'poison'`))).toBe(0);
  });
});

describe('evidence that was edited, polluted or made too large is refused', () => {
  let source: TestDatabase;
  let evidence: Evidence;
  beforeAll(async () => {
    source = await freshDatabase('pglite', 'directus', { exactName: true });
    await withDb(source.url, (db) => writeSample(db));
    evidence = await rehearseSource('pglite', source.url);
    expect(evidence.verdict.rehearsal).toBe('PASS');
    await withDb(source.url, (db) => approveAs(db, 'admin@northwind.example'));
  }, 300_000);
  afterAll(async () => source?.drop());

  const apply = (file: string, env: Record<string, string> = {}, extra: string[] = []) => runCli(['apply', '--yes', '--target', source.url, '--evidence', file, ...extra], { env, timeoutMs: 300_000 });
  const untouched = async () => expect(await withDb(source.url, (db) => scalar(db, `select count(*)::int as v from pg_namespace where nspname = 'axis'`))).toBe(0);

  it("a tier's delta edited beside its expectation's record (+30 rows to +31, the record still saying 30 ✓): refused by apply, its dry run and report (exit 2), nothing applied", async () => {
    const edited = structuredClone(evidence);
    const t2 = edited.stages.find((x) => x.name === 'B')!.tiers.find((t) => t.id === 2 && t.status === 'Applied')!;
    const record = t2.expectations!.find((e) => e.what === 'rows axis.ownership added')!;
    expect(record).toMatchObject({ ok: true, actual: String(t2.delta!.rows['axis.ownership']!.added) });
    t2.delta!.rows['axis.ownership']!.added += 1;
    const file = evidenceFile(edited);
    const said = `stage B: tier 2: expectation 'rows axis.ownership added' records ${record.actual} measured, but the tier's delta says ${Number(record.actual) + 1}`;
    const applied = await apply(file);
    expect(applied.code, applied.stdout + applied.stderr).toBe(2);
    expect(applied.stderr).toContain(said);
    const dry = await runCli(['apply', '--dry-run', '--target', source.url, '--evidence', file]);
    expect(dry.code, dry.stdout + dry.stderr).toBe(2);
    expect(dry.stdout + dry.stderr).toContain(said);
    const report = await runCli(['report', file, '--format', 'md', '--out', '-']);
    expect(report.code, report.stdout + report.stderr).toBe(2);
    expect(report.stderr).toMatch(/its own records give 'Rehearsal FAIL · Execution NO-GO'.*it was edited/);
    await untouched();
  });

  it('a FAIL edited into a PASS (verdict and failures), entries that match no tier, __proto__ keys, unknown fields', async () => {
    const failed = structuredClone(evidence);
    failed.stages[1]!.checks[0]!.ok = false;
    failed.verdict = { ...failed.verdict, rehearsal: 'PASS', failures: [] };
    const r1 = await apply(evidenceFile(failed));
    expect(r1.code).toBe(2);
    // (naming the check that failed)
    expect(r1.stderr).toMatch(/its own records give 'Rehearsal FAIL · Execution NO-GO' \(B: .*\): it was edited/);

    // a rehearsal of another state (tier 1 recorded after tier 5): the dry run names the tier apply would roll back, exit 1
    const shifted = structuredClone(evidence);
    for (const s of shifted.stages) for (const t of s.tiers) if (t.id === 1 && t.status === 'Applied') t.appliedBefore = [5];
    const dry = await runCli(['apply', '--dry-run', '--target', source.url, '--evidence', evidenceFile(shifted)]);
    expect(dry.code, dry.stdout + dry.stderr).toBe(1);
    expect(dry.stdout).toMatch(/^ +1 +Base axis substrate +structure +would not run +the rehearsal applied tier 1 after \[5\], and here it would run after \[\]: apply/m);

    const extra = structuredClone(evidence);
    extra.stages[1]!.tiers.push({ ...extra.stages[1]!.tiers[0]!, id: 42 });
    const r2 = await apply(evidenceFile(extra));
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/stage B: tier 42 is not a tier of the plan/);

    const many = structuredClone(evidence);
    const t = many.stages[1]!.tiers[0]!;
    many.stages[1]!.tiers.push(...Array.from({ length: 20_000 }, () => t));
    const file = join(tmp('tiergate-evidence-'), 'evidence.json');
    writeFileSync(file, JSON.stringify(many));
    const r3 = await apply(file);
    expect(r3.code).toBe(2);
    expect(r3.stderr).toMatch(/stages\[1\]\.tiers: .*(10000|too big|at most)/i);

    const proto = join(tmp('tiergate-evidence-'), 'evidence.json');
    writeFileSync(proto, renderJson(evidence).replace('"rows": {\n', '"rows": {\n"__proto__": { "polluted": true },\n'));
    const r4 = await apply(proto);
    expect(r4.code).toBe(2);
    expect(r4.stderr).toMatch(/__proto__/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();

    const unknown = JSON.parse(renderJson(evidence)) as Record<string, unknown>;
    (unknown.verdict as Record<string, unknown>).approvedBy = 'the CEO';
    const uf = join(tmp('tiergate-evidence-'), 'evidence.json');
    writeFileSync(uf, JSON.stringify(unknown));
    const r5 = await apply(uf);
    expect(r5.code).toBe(2);
    expect(r5.stderr).toMatch(/verdict.*approvedBy|Unrecognized key.*approvedBy/);
    // report reads what a newer tiergate may add, and says so
    const lenient = await runCli(['report', uf, '--format', 'md']);
    expect(lenient.code).toBe(0);
    expect(lenient.stderr).toMatch(/note: [\s\S]*approvedBy[\s\S]* a newer tiergate's evidence, or an edit: rendered anyway/);
    // a verdict its records do not bear out is not rendered
    const overstated = await runCli(['report', evidenceFile(failed), '--format', 'md']);
    expect(overstated.code, overstated.stdout).toBe(2);
    expect(overstated.stderr).toMatch(/its own records give 'Rehearsal FAIL · Execution NO-GO'.*: it was edited/);
    expect(overstated.stdout).toBe('');
    await untouched();
  });

  it("the source's gate edited — open under a NO-GO, or open against its own value — is refused by report and by apply (exit 2), nothing applied", async () => {
    expect(evidence.verdict).toMatchObject({ rehearsal: 'PASS', execution: 'NO-GO' });
    const opened = structuredClone(evidence);
    opened.source.gate = { ...opened.source.gate!, value: 1, open: true };
    const contradicted = structuredClone(evidence);
    contradicted.source.gate = { ...contradicted.source.gate!, value: 1, open: false };
    // the minimum edited down with the verdict: the records agree with each other, not with the plan (apply has it)
    const lowered = structuredClone(evidence);
    lowered.source.gate = { ...lowered.source.gate!, min: 0, open: true };
    lowered.verdict = { ...lowered.verdict, execution: 'GO', reason: `${lowered.source.gate.name}=${lowered.source.gate.value}` };
    const loweredApply = await apply(evidenceFile(lowered), {}, ['--dry-run']);
    expect(loweredApply.code).toBe(2);
    expect(loweredApply.stdout + loweredApply.stderr).toMatch(/its gate record \(ospa, needs ≥ 0\) is not the plan's gate \(ospa, needs ≥ 1\), in the same tiergate\.yaml: it was edited/);
    for (const [what, edited, said] of [
      ['opened', opened, /it says 'Rehearsal PASS · Execution NO-GO', but its own records give 'Rehearsal PASS · Execution GO'.*: it was edited/],
      ['contradicted', contradicted, /its own records give 'Rehearsal FAIL · Execution NO-GO' \(the source's gate record says closed, but its value 1 and minimum 1 make it open\): it was edited/],
    ] as const) {
      const file = evidenceFile(edited);
      const shown = await runCli(['report', file, '--format', 'md']);
      expect(shown.code, what).toBe(2);
      expect(shown.stderr, what).toMatch(said);
      expect(shown.stdout, what).toBe('');
      const applied = await apply(file, {}, ['--dry-run']);
      expect(applied.code, what).toBe(2);
      expect(applied.stdout + applied.stderr, what).toMatch(/refused: it says 'Rehearsal PASS · Execution NO-GO', but its own records give/);
    }
    await untouched();
  });

  it("a tier's or a verify's record edited to failed while its check still holds: report refuses it naming both, apply refuses it", async () => {
    const edits: [string, (e: Evidence) => void, RegExp][] = [
      ['stage B tier 2 Failed', (e) => void (e.stages[1]!.tiers.find((t) => t.id === 2)!.status = 'Failed'), /stage B: 'B: tier 2 applies as expected' is recorded as holding, but tier 2 is recorded Failed there/],
      ['stage A tier 3 guard not proven', (e) => void (e.stages[0]!.tiers.find((t) => t.id === 3)!.guardProven = false), /stage A: 'A: tier 3 stops itself with the gate closed' is recorded as holding, but tier 3 is recorded Blocked there/],
      ['stage C verify Failed', (e) => void (e.stages[2]!.tiers.find((t) => t.id === 90)!.status = 'Failed'), /stage C: 'C: verify passes after the re-apply' is recorded as holding, but no verify there passed/],
    ];
    for (const [what, edit, names] of edits) {
      const edited = structuredClone(evidence);
      edit(edited);
      const file = evidenceFile(edited);
      const shown = await runCli(['report', file, '--format', 'md']);
      expect(shown.code, what).toBe(2);
      expect(shown.stderr, what).toMatch(/its own records give 'Rehearsal FAIL · Execution NO-GO'/);
      expect(shown.stderr, what).toMatch(names);
      expect(shown.stdout, what).toBe('');
      // apply refuses it too (by the first thing it finds wrong: the coverage, or the same records)
      const applied = await apply(file);
      expect(applied.code, what).toBe(2);
      expect(applied.stderr, what).toMatch(/refused: /);
    }
    await untouched();
  });

  it('signed evidence: verified with the key, an edit refused, unsigned said so; a plan can demand evidence and signatures', async () => {
    const key = 'a-test-key-never-printed-41';
    const { signEvidence } = await import('../src/evidence/signature.js');
    const signed = evidenceFile(signEvidence(evidence, key));
    const edited = JSON.parse(readFileSync(signed, 'utf8')) as Evidence;
    edited.stages[1]!.tiers.find((x) => x.id === 2)!.delta!.rows['axis.ownership']!.added = 31;
    const e1 = await apply(evidenceFile(edited), { TIERGATE_EVIDENCE_KEY: key });
    expect(e1.code).toBe(2);
    expect(e1.stderr).toMatch(/its signature does not verify with the key in TIERGATE_EVIDENCE_KEY: it was edited/);
    expect(e1.stdout + e1.stderr).not.toContain(key);

    const demanding = planCopy();
    writeFileSync(join(demanding, 'tiergate.yaml'), readFileSync(join(demanding, 'tiergate.yaml'), 'utf8').replace('\nrehearsal:\n', '\nevidence: { required: true, signed: true }\n\nrehearsal:\n'));
    const bare = await runCli(['apply', '--yes', '--plan', demanding, '--target', source.url]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toMatch(/demands that production applies only what was rehearsed \(evidence\.required\)/);
    const unsigned = await apply(evidenceFile(evidence), {}, ['--plan', demanding]);
    expect(unsigned.code).toBe(2);
    expect(unsigned.stderr).toMatch(/refused/);
    await untouched();

    // with the key set, a signed file whose signature was taken out is refused (it could be any edit); report refuses an edited one too
    const stripped = JSON.parse(readFileSync(evidenceFile(edited), 'utf8')) as Evidence;
    delete (stripped as { signature?: unknown }).signature;
    const e2 = await apply(evidenceFile(stripped), { TIERGATE_EVIDENCE_KEY: key });
    expect(e2.code).toBe(2);
    expect(e2.stderr).toMatch(/it is unsigned, and TIERGATE_EVIDENCE_KEY is set/);
    const r2 = await runCli(['report', evidenceFile(edited)], { env: { TIERGATE_EVIDENCE_KEY: key } });
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/its signature does not verify/);
    await untouched();

    const ok = await apply(signed, { TIERGATE_EVIDENCE_KEY: key });
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/the evidence's signature verifies \(key [0-9a-f]{16}\)/);
    expect(ok.stdout + ok.stderr).not.toContain(key);
  });

  it('a file larger than the limit, and one that is not a regular file, say so and name the limit', async () => {
    const small = await runCli(['report', evidenceFile(evidence)], { env: { TIERGATE_MAX_EVIDENCE_BYTES: '1000' } });
    expect(small.code).toBe(2);
    expect(small.stderr).toMatch(/is [\d.]+ (MB|bytes), larger than the 1000 bytes tiergate reads of an evidence file \(raise it with TIERGATE_MAX_EVIDENCE_BYTES=BYTES\)/);
    const fifo = join(tmp('tiergate-fifo-'), 'evidence.json');
    execFileSync('mkfifo', [fifo]);
    const r = await runCli(['report', fifo], { timeoutMs: 30_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is a FIFO \(named pipe\), not a regular file/);
  });
});

describe('report --out: what it may replace', () => {
  it('a FIFO, a device or a link to one is refused and left as it was; --out - prints the report; a full disk is an error, not a short file', async () => {
    const dir = tmp('tiergate-out-');
    const file = join(dir, 'evidence.json');
    writeFileSync(file, renderJson(axisGovernanceEvidence()));
    const fifo = join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    const toDevice = join(dir, 'stdout');
    symlinkSync('/dev/null', toDevice);
    for (const [path, what] of [[fifo, 'a FIFO'], [toDevice, 'a link to a device'], ['/dev/null', 'a device']] as const) {
      const r = await runCli(['report', file, '--format', 'md', '--out', path], { timeoutMs: 30_000 });
      expect(r.code, r.stdout + r.stderr).toBe(2);
      expect(r.stderr).toContain(`cannot write ${path}: it is ${what}, which a new file would replace`);
    }
    expect(lstatSync(fifo).isFIFO()).toBe(true);
    expect(lstatSync(toDevice).isSymbolicLink()).toBe(true);
    expect(lstatSync('/dev/null').isCharacterDevice()).toBe(true);
    // rehearse --out: said before anything runs
    const evidenceDir = join(dir, 'ev');
    execFileSync('mkdir', [evidenceDir]);
    execFileSync('mkfifo', [join(evidenceDir, 'evidence.html')]);
    const rehearsal = await runCli(['rehearse', '--out', evidenceDir], { timeoutMs: 60_000 });
    expect(rehearsal.code, rehearsal.stdout + rehearsal.stderr).toBe(2);
    expect(rehearsal.stderr).toContain(`--out ${evidenceDir}: evidence.html there is a FIFO, which the evidence would replace: give another folder (nothing was run)`);
    expect(lstatSync(join(evidenceDir, 'evidence.html')).isFIFO()).toBe(true);
    // a folder that takes no new file (here /proc/self/fd, as `--out /proc/self/fd/1` to a file names it): said so
    const proc = await runCli(['report', file, '--format', 'md', '--out', '/proc/self/fd/99']);
    expect(proc.code).toBe(2);
    expect(proc.stderr).toMatch(/cannot write into \/proc\/self\/fd: it takes no new file \(\w+\): choose another --out/);
    const printed = await runCli(['report', file, '--format', 'md', '--out', '-']);
    expect(printed.code).toBe(0);
    expect(printed.stdout).toMatch(/^# /);
    expect(existsSync(join(import.meta.dirname, '..', '-'))).toBe(false);
    // a write the disk cannot take (here /dev/full) throws; writeFilesSafely removes its temporary file and names the file
    const { writeWhole } = await import('../src/cli/write-file.js');
    const fd = openSync('/dev/full', 'w');
    try {
      expect(() => writeWhole(fd, Buffer.from('x'.repeat(10_000)))).toThrow(/ENOSPC/);
    } finally {
      closeSync(fd);
    }
    // a write that takes fewer bytes than it is given is followed by another, until all are written; one that takes none is an error
    const taken: string[] = [];
    writeWhole(-1, Buffer.from('abcdefg'), (_fd, data, offset, length) => {
      const n = Math.min(3, length);
      taken.push(data.subarray(offset, offset + n).toString());
      return n;
    });
    expect(taken).toEqual(['abc', 'def', 'g']);
    expect(() => writeWhole(-1, Buffer.from('abc'), () => 0)).toThrow(/no byte written/);
  });
});

describe('PGlite folders that cannot be used', () => {
  it('damaged, a folder where the lock file goes, not writable by this user: exit 2 naming the fix; a lock of a pid the system gave anew is taken over', async () => {
    const dir = tmp('tiergate-pglite-odd-');
    const sample = join(dir, 's');
    expect((await runCli(['sample', '--pglite', sample])).code).toBe(0);
    const copy = (name: string) => {
      const to = join(dir, name);
      cpSync(sample, to, { recursive: true });
      return to;
    };
    const damaged = copy('damaged');
    writeFileSync(join(damaged, 'global', 'pg_control'), '');
    const lockFolder = copy('lock-folder');
    execFileSync('mkdir', [join(lockFolder, '.tiergate.lock')]);
    const reused = copy('reused');
    // pid 1 is alive, but it started long after this lock was written: the pid is not the holder's
    writeFileSync(join(reused, '.tiergate.lock'), JSON.stringify({ pid: 1, command: 'apply', startedAt: '2020-01-01T00:00:00.000Z' }));
    const cases: [string, RegExp][] = [
      [damaged, /cannot open pglite:.*damaged: .* is not a PGlite database this tiergate can open \(PGlite stopped: .*; its PG_VERSION says \d+\): .*a damaged folder is restored from a copy/],
      [lockFolder, /cannot use pglite:.*lock-folder: .*\.tiergate\.lock is a folder, where tiergate keeps its lock file: remove it/],
    ];
    for (const [folder, why] of cases) {
      const r = await runCli(['status', '--target', `pglite:${folder}`]);
      expect(r.code, r.stdout + r.stderr).toBe(2);
      expect(r.stderr).toMatch(why);
    }
    const taken = await runCli(['status', '--target', `pglite:${reused}`]);
    expect(taken.code, taken.stderr).toBe(0);
    // a sound folder, a database it does not have (?database= mistyped): that, not a damaged folder
    const other = await runCli(['status', '--target', `pglite:${sample}?database=directsu`]);
    expect(other.code, other.stdout + other.stderr).toBe(2);
    expect(other.stderr).toMatch(/cannot open pglite:.*\?database=directsu: the PGlite folder .* has no database 'directsu' \(it has: directus, postgres\): check \?database= in the URL/);
    expect(other.stderr).not.toMatch(/damaged/);
    expect((await runCli(['status', '--target', `pglite:${sample}?database=directus`])).code).toBe(0);
    if (process.getuid?.() === 0) {
      const readOnly = copy('read-only');
      execFileSync('chmod', ['-R', 'a+rX', dir]);
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn('runuser', ['-u', 'nobody', '--', process.execPath, join(import.meta.dirname, '..', 'bin', 'tiergate.js'), 'status', '--target', `pglite:${readOnly}`]);
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('close', (code) => resolve({ code, stderr }));
      });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/cannot use pglite:.*read-only: this user may not write in .* \(EACCES\): tiergate writes its lock file there/);
    }
  }, 120_000);
});

describe('plans: sizes, special files, links, hostile names', () => {
  it('a tier file over the limit names the limit and how to raise it; nothing connects', async () => {
    const dir = planCopy();
    writeFileSync(join(dir, 'tiers', '05_scanner.sql'), readFileSync(join(dir, 'tiers', '05_scanner.sql'), 'utf8') + `\n-- ${'x'.repeat(4000)}\n`);
    const r = await runCli(['apply', '--yes', '--plan', dir, '--target', 'postgres://u:canary-pw@127.0.0.1:1/x'], { env: { TIERGATE_MAX_SQL_BYTES: '4000' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/tiers\[\d+\]\.file: file 'tiers\/05_scanner\.sql' is [\d.]+ (MB|bytes), larger than the 4000 bytes tiergate reads of a tier file \(raise it with TIERGATE_MAX_SQL_BYTES=BYTES\)/);
    expect(r.stderr).not.toMatch(/connect/);
  });

  it('a tiergate.yaml that links to itself, and a device as --plan, are named as what they are', async () => {
    const dir = planCopy();
    rmSync(join(dir, 'tiergate.yaml'));
    symlinkSync('tiergate.yaml', join(dir, 'tiergate.yaml'));
    const loop = await runCli(['plan', '--plan', dir]);
    expect(loop.code).toBe(2);
    expect(loop.stderr).toMatch(/tiergate\.yaml is a link that loops/);
    const device = await runCli(['plan', '--plan', '/dev/null']);
    expect(device.code).toBe(2);
    expect(device.stderr).toMatch(/'\/dev\/null' is not a plan: pass --plan DIR/);
  });

  it('a FIFO tiergate.yaml is refused at once, not waited on', async () => {
    const dir = planCopy();
    rmSync(join(dir, 'tiergate.yaml'));
    execFileSync('mkfifo', [join(dir, 'tiergate.yaml')]);
    const r = await runCli(['plan', '--plan', dir], { timeoutMs: 30_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/tiergate\.yaml is a FIFO \(named pipe\), not a regular file/);
  });

  it('tiers/ as a link out of the plan folder is refused; a tier file linked to a file outside too', async () => {
    const dir = planCopy();
    const outside = join(dir, '..', 'elsewhere');
    cpSync(join(dir, 'tiers'), outside, { recursive: true });
    rmSync(join(dir, 'tiers'), { recursive: true });
    symlinkSync(outside, join(dir, 'tiers'));
    const r = await runCli(['plan', '--plan', dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/leads outside the plan folder \(to .*elsewhere.*\) through a link/);
    const root = join(tmp('tiergate-root-'), 'plan');
    cpSync(bundledPlanDir(), root, { recursive: true });
    rmSync(join(root, 'tiers', '05_scanner.sql'));
    symlinkSync('/etc/hostname', join(root, 'tiers', '05_scanner.sql'));
    const one = await runCli(['plan', '--plan', root]);
    expect(one.code).toBe(2);
    expect(one.stderr).toMatch(/'tiers\/05_scanner\.sql' leads outside the plan folder \(to \/etc\/hostname\)/);
  });

  it('terminal escapes and bidi overrides in a tier name never reach the terminal', async () => {
    const dir = join(tmp('tiergate-plan-'), 'plan');
    cpSync(ENGINE_PLAN, dir, { recursive: true });
    const hostile = 'Schema \u001b]0;owned\u0007 \u001b[2J \u202Egnp.exe';
    writeFileSync(join(dir, 'tiergate.yaml'), readFileSync(join(dir, 'tiergate.yaml'), 'utf8').replace('name: Schema', `name: ${JSON.stringify(hostile)}`));
    const r = await runCli(['plan', '--plan', dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Schema ]0;owned [2J gnp.exe');
    expect(r.stdout).not.toMatch(UNSAFE);
    const j = await runCli(['plan', '--plan', dir, '--json']);
    expect(JSON.parse(j.stdout).tiers[1].name).toBe(hostile);
  });
});

describe('URLs that cannot be used are exit 2, never a silent success', () => {
  it('a port that is not a number, a password that is not percent-encoding, a line break', async () => {
    const base = testTargets().includes('postgres') ? serverUrl('postgres') : 'postgres://u@127.0.0.1/db?sslmode=disable';
    const cases: [string, RegExp][] = [
      [`${base}${base.includes('?') ? '&' : '?'}port=abc`, /port=abc is not a whole number/],
      ['postgres://u:CAN%ZZ@127.0.0.1/db', /the password is not valid percent-encoding/],
      ['postgres://u@127.0.0.1/d\nb', /holds a control character/],
      // node-postgres's own name, which psql, pg_dump and pg_restore refuse: refused before a rehearsal reaches them
      ['postgres://u@127.0.0.1/db?sslmode=no-verify', /sslmode=no-verify is not one of disable, allow, prefer, require, verify-ca, verify-full/],
    ];
    for (const [url, says] of cases) {
      for (const args of [['apply', '--yes'], ['status'], ['status', '--json']]) {
        const r = await runCli([...args, '--plan', ENGINE_PLAN, '--target', url]);
        expect(r.code, `${args.join(' ')} ${JSON.stringify(url)}: ${r.stdout}${r.stderr}`).toBe(2);
        if (args.includes('--json')) expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, error: { kind: 'usage', message: expect.stringMatching(says) } });
        else expect(r.stderr).toMatch(says);
        expect(r.stdout + r.stderr).not.toContain('CAN%ZZ');
      }
    }
    expect(existsSync(join(process.cwd(), 'd\nb'))).toBe(false);
  });
});
