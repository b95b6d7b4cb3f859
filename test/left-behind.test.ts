/**
 * What killed runs leave in the temporary folders (a PGlite clone of the
 * source, a dump file of its data) is removed by the next rehearsal: the
 * folders name the process that made them, and a folder whose process is
 * gone — or whose pid a newer process took — is swept; one in use, a kept
 * clone and an older tiergate's folder are left.
 */
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KEPT_MARK, ownedTempPrefix, ownerMark, sweepLeftBehind } from '../src/exit-cleanup.js';
import { cloneLeftBehind } from '../src/rehearsal/clone-postgres.js';
import { runCli } from './helpers/cli.js';

/** A pid no process has now. */
function deadPid(): number {
  for (let pid = 3_999_999; ; pid--) {
    try {
      process.kill(pid, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') return pid;
    }
  }
}

describe('folders killed runs left behind', () => {
  it('swept: a gone process\'s clone and dump folders; left: this process\'s, a kept clone, an older tiergate\'s, a file', () => {
    const root = mkdtempSync(join(tmpdir(), 'tiergate-test-sweep-'));
    const dead = deadPid();
    const make = (name: string, dir = true) => {
      const p = join(root, name);
      if (dir) mkdirSync(p);
      else writeFileSync(p, 'x');
      return p;
    };
    const goneClone = make(`tiergate-clone-${dead}-a1b2c3`);
    writeFileSync(join(goneClone, 'PG_VERSION'), '16');
    const goneDump = make(`tiergate-dump-${dead}-d4e5f6`);
    writeFileSync(join(goneDump, 'source.dump'), 'the source data');
    const mine = make(`${ownedTempPrefix('clone')}g7h8i9`);
    const kept = make(`tiergate-clone-${dead}-kept00`);
    writeFileSync(join(kept, KEPT_MARK), 'kept');
    const older = make('tiergate-clone-x1y2z3');
    const file = make(`tiergate-dump-${dead}-file00`, false);
    const other = make('something-else');
    expect(sweepLeftBehind([root, root])).toBe(2);
    expect([goneClone, goneDump].map(existsSync)).toEqual([false, false]);
    expect([mine, kept, older, file, other].map(existsSync)).toEqual([true, true, true, true, true]);
    // a pid a newer process took since the folder was made: its maker is gone as well
    const reused = make(`tiergate-clone-${process.ppid}-r1r2r3`);
    expect(sweepLeftBehind([root], (pid) => pid !== process.ppid)).toBe(1);
    expect(existsSync(reused)).toBe(false);
  });

  it('a rehearsal removes them and says so', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tiergate-test-sweep-cli-'));
    const gone = join(root, `tiergate-dump-${deadPid()}-q1w2e3`);
    mkdirSync(gone);
    writeFileSync(join(gone, 'source.dump'), 'the source data');
    const r = await runCli(['rehearse', '--out', join(root, 'evidence')], { env: { TIERGATE_CLONE_DIR: root }, timeoutMs: 300_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/removed 1 clone or dump folder that killed runs left behind/);
    expect(existsSync(gone)).toBe(false);
  }, 300_000);
});

describe('clone databases killed runs left on a scratch server', () => {
  it("a clone's comment names its maker: gone (its process, or the machine's boot) → left behind; alive, another machine's, kept or unmarked → not", () => {
    const mine = ownerMark();
    const made = (mark: object) => `tiergate clone made by ${JSON.stringify({ ...mine, ...mark })}`;
    expect(cloneLeftBehind(made({}))).toBe(false);
    expect(cloneLeftBehind(made({ pid: deadPid() }))).toBe(true);
    // a pid a newer process took since the clone was made
    expect(cloneLeftBehind(made({ pid: process.ppid }), (pid) => pid !== process.ppid)).toBe(true);
    // the machine booted since: every process of before is gone
    if (mine.boot) expect(cloneLeftBehind(made({ boot: 'another-boot' }))).toBe(true);
    // another machine's run cannot be told gone
    expect(cloneLeftBehind(made({ pid: deadPid(), host: `${hostname()}-other` }))).toBe(false);
    expect(cloneLeftBehind(made({ pid: deadPid(), boot: 'another-boot', host: `${hostname()}-other` }))).toBe(false);
    expect(cloneLeftBehind(`tiergate clone kept (rehearse --keep), made by ${JSON.stringify({ ...mine, pid: deadPid() })}`)).toBe(false);
    for (const comment of [null, '', 'kept', 'tiergate clone made by {', 'tiergate clone made by {"pid":"1"}', `tiergate clone made by ${JSON.stringify({ ...mine, pid: deadPid(), at: 'yesterday' })}`]) {
      expect(cloneLeftBehind(comment)).toBe(false);
    }
  });
});
