/**
 * What a fleet does to one target, in two steps a worker runs: rehearse it
 * on a clone (its own rehearsal: every tenant's database differs, so one
 * rehearsal cannot vouch for another), then apply bound to that evidence and
 * verify. The same library calls as `tiergate rehearse` and `tiergate apply
 * --evidence`; the evidence stays bound to its database.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { withDb, openDb } from '../db/open-db.js';
import { isPostgresUrl } from '../db/pg-url.js';
import type { Db } from '../db/port.js';
import { TiergateError } from '../errors.js';
import type { Evidence } from '../evidence/types.js';
import type { RunResult } from '../engine/run-result.js';
import type { Plan } from '../plan/plan.js';
import { scrub, scrubValue } from '../secrets.js';

export interface StepTarget {
  name: string;
  url: string;
  shown: string;
}

export interface RehearseStep {
  outcome: 'rehearsed' | 'no-go' | 'failed';
  evidenceJson: string;
  evidenceSha256: string;
  rehearsal: 'PASS' | 'FAIL';
  execution: 'GO' | 'NO-GO';
  error: string | null;
}

export interface ApplyStep {
  outcome: 'applied' | 'no-go' | 'failed';
  applied: number[];
  error: string | null;
}

/** How long an apply step waits for another run's rollout lock (a retried step meets its dead predecessor's session until the server notices). */
export const LOCK_WAIT_MS = 5 * 60_000;

/**
 * Rehearses `target` (a PostgreSQL database cloned onto `scratch`, or a
 * PGlite folder copied) and writes the evidence to `dir` (evidence.json,
 * .md, .html, signed with TIERGATE_EVIDENCE_KEY when it is set).
 */
export async function rehearseStep(plan: Plan, target: StepTarget, scratch: string | null, dir: string, options: { signal?: AbortSignal; onClone?: (url: string) => Promise<void> } = {}): Promise<RehearseStep> {
  const { signal } = options;
  const onClone = options.onClone ? (c: { url: string }) => options.onClone!(c.url) : undefined;
  const { rehearse } = await import('../rehearsal/rehearse.js');
  const openSource = async () => {
    const db = await openDb(target.url, { applicationName: `tiergate fleet ${target.name} (source, read-only)` });
    await db.exec('set session characteristics as transaction read only');
    return db;
  };
  let rehearsed: Evidence;
  if (isPostgresUrl(target.url)) {
    if (!scratch) return failedRehearsal(`no scratch server to clone it onto: pass --scratch URL (or scratch: in the targets file)`);
    rehearsed = await rehearse(plan, { kind: 'postgres', url: target.url, scratchUrl: scratch, snapshot: { keep: false } }, { kind: 'postgres', location: target.shown, openSource }, { signal, onClone });
  } else {
    rehearsed = await rehearse(plan, { kind: 'pglite', url: target.url }, { kind: 'pglite', location: target.shown, openSource }, { signal, onClone });
  }
  const { evidenceKey, signEvidence } = await import('../evidence/signature.js');
  const key = evidenceKey();
  const evidence = scrubValue(key ? signEvidence(rehearsed, key) : rehearsed);
  const { renderHtml, renderJson, renderMarkdown } = await import('../report/index.js');
  const json = renderJson(evidence);
  const { prepareOutDir, writeFilesSafely } = await import('../cli/write-file.js');
  prepareOutDir(dir);
  await writeFilesSafely(dir, { 'evidence.json': json, 'evidence.md': renderMarkdown(evidence), 'evidence.html': renderHtml(evidence) });
  const v = evidence.verdict;
  return {
    outcome: v.rehearsal !== 'PASS' ? 'failed' : v.execution !== 'GO' ? 'no-go' : 'rehearsed',
    evidenceJson: json,
    evidenceSha256: createHash('sha256').update(json).digest('hex'),
    rehearsal: v.rehearsal,
    execution: v.execution,
    error: v.rehearsal !== 'PASS' ? `rehearsal FAIL: ${v.failures.slice(0, 3).join('; ')}${v.failures.length > 3 ? ` (+${v.failures.length - 3})` : ''}` : v.execution !== 'GO' ? (v.next ?? 'the gate is closed') : null,
  };
}

function failedRehearsal(error: string): RehearseStep {
  return { outcome: 'failed', evidenceJson: '', evidenceSha256: '', rehearsal: 'FAIL', execution: 'NO-GO', error };
}

/**
 * Applies the plan to `target` bound to its evidence (compared tier by tier
 * before COMMIT), then verifies. A target whose worker died mid-tier is
 * applied again the same way: its ledger decides what remains, and the
 * remaining tiers are compared with the rehearsal of the same state.
 */
export async function applyStep(plan: Plan, target: StepTarget, evidenceJson: string, dir: string, signal?: AbortSignal): Promise<ApplyStep> {
  const { writeFilesSafely, prepareOutDir } = await import('../cli/write-file.js');
  prepareOutDir(dir);
  // the evidence as the rehearsal wrote it (another worker may have rehearsed this target)
  await writeFilesSafely(dir, { 'evidence.json': evidenceJson });
  const { bindEvidence, DEFAULT_MAX_EVIDENCE_AGE_MS } = await import('../rehearsal/bind-evidence.js');
  const { apply } = await import('../engine/apply.js');
  const { verify } = await import('../engine/verify.js');
  try {
    const bound = bindEvidence(join(dir, 'evidence.json'), plan, { maxAgeMs: DEFAULT_MAX_EVIDENCE_AGE_MS, acceptDifferences: false });
    return await withDb(
      target.url,
      async (db) => {
        const r = await apply(db, plan, { binding: bound.binding, waitMs: LOCK_WAIT_MS, signal });
        const applied = await appliedWith(db, plan, bound.binding.record.sha256, r.tiers.filter((t) => t.status === 'Applied').map((t) => t.id));
        if (r.outcome === 'interrupted') throw new Error(`interrupted: ${runError(r)}`);
        if (r.outcome === 'no-go') return { outcome: 'no-go', applied, error: `the gate closed after the rehearsal (${r.gate?.name ?? 'gate'} = ${r.gate?.value ?? 'n/a'})` } as ApplyStep;
        if (r.outcome === 'failed') return { outcome: 'failed', applied, error: runError(r) } as ApplyStep;
        const v = await verify(db, plan);
        if (v.outcome !== 'ok') return { outcome: 'failed', applied, error: `verify failed: ${runError(v)}` } as ApplyStep;
        return { outcome: 'applied', applied, error: null } as ApplyStep;
      },
      { applicationName: `tiergate fleet ${target.name} (apply)` },
    );
  } catch (e) {
    // tiergate's own refusals (evidence refused, drift, a lock held past the wait, a bad URL) fail the target; anything else (a dead connection) too, with its message
    if (signal?.aborted) throw e;
    return { outcome: 'failed', applied: [], error: scrub(e instanceof TiergateError ? e.message : `${(e as Error).message}`) };
  }
}

/**
 * The tiers the target's ledger records as applied bound to this evidence,
 * in plan order: this step's, and those an earlier attempt of it applied
 * before its worker died (a resumed step applies only the rest). `fallback`
 * where the ledger cannot be read.
 */
async function appliedWith(db: Db, plan: Plan, evidenceSha256: string, fallback: number[]): Promise<number[]> {
  try {
    const r = await db.query<{ tier_id: number }>(
      `select distinct l.tier_id from tiergate.ledger l where l.plan = $1 and l.status = 'applied' and l.evidence ->> 'sha256' = $2
         and not exists (select 1 from tiergate.ledger x where x.plan = l.plan and x.tier_id = l.tier_id and x.id > l.id and x.status <> 'applied')`,
      [plan.name, evidenceSha256],
    );
    const ids = new Set([...r.rows.map((x) => Number(x.tier_id)), ...fallback]);
    return plan.tiers.filter((t) => ids.has(t.id)).map((t) => t.id);
  } catch {
    return fallback;
  }
}

/**
 * Drops the clones an earlier attempt of a target's rehearsal left behind
 * (its worker was killed before the rehearsal could drop them): databases
 * named tiergate_clone_… on the scratch server, PGlite clone folders.
 * Returns how many were removed.
 */
export async function dropLeftClones(urls: string[], scratch: string | null): Promise<number> {
  let dropped = 0;
  const { parsePostgresUrl } = await import('../db/pg-url.js');
  for (const url of urls) {
    if (isPostgresUrl(url)) {
      const name = decodeURIComponent(parsePostgresUrl(url)?.pathname.slice(1) ?? '');
      if (!scratch || !/^tiergate_clone_[a-z0-9_]+$/.test(name)) continue;
      const r = await withDb(scratch, (db) => db.query<{ n: number }>(`select count(*)::int as n from pg_database where datname = $1`, [name]).then(async (q) => {
        if (!q.rows[0]?.n) return 0;
        await db.exec(`drop database if exists "${name}" with (force)`);
        return 1;
      }), { applicationName: 'tiergate fleet (dropping a dead rehearsal\'s clone)' });
      dropped += r;
    } else {
      const dir = url.replace(/^pglite:(\/\/)?/, '').split('?')[0]!;
      const { existsSync, rmSync } = await import('node:fs');
      const { basename } = await import('node:path');
      // a PGlite clone is a tiergate-clone-* folder of its own
      if (!basename(dir).startsWith('tiergate-clone-') || !existsSync(dir)) continue;
      rmSync(dir, { recursive: true, force: true });
      dropped++;
    }
  }
  return dropped;
}

/** The first failure of a run, in one line: tier, file:line, SQLSTATE, message. */
export function runError(r: RunResult): string {
  const t = r.tiers.find((x) => x.status === 'Failed');
  if (!t) return r.outcome;
  const f = t.error;
  const where = f?.file ? ` at ${f.file}${f.line ? `:${f.line}` : ''}` : '';
  // (with the server's DETAIL: a lock timeout's names the session that held the lock, as a direct apply says)
  const detail = f?.detail ? ` (${f.detail.length > 300 ? `${f.detail.slice(0, 300)}…` : f.detail})` : '';
  const what = t.differences?.length
    ? `differs from the rehearsal (${t.differences.slice(0, 2).map((d) => `${d.what}: rehearsal ${d.rehearsal}, production ${d.production}`).join('; ')})`
    : `${f?.sqlstate ? `${f.sqlstate} ` : ''}${f?.message ?? 'failed'}${detail}`;
  return scrub(`tier ${t.id} '${t.name}'${where}: ${what}`.replace(/\s+/g, ' '));
}
