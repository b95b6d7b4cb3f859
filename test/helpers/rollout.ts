/**
 * A rollout as a user runs it, through the library: rehearse a source, approve
 * on the source, apply bound to the evidence. For the tests that prove the
 * bundled plan on databases unlike the sample.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb, withDb } from '../../src/db/open-db.js';
import type { Db } from '../../src/db/port.js';
import { apply } from '../../src/engine/apply.js';
import type { RunResult } from '../../src/engine/run-result.js';
import { renderJson } from '../../src/evidence/evidence-json.js';
import type { Evidence } from '../../src/evidence/types.js';
import { loadPlan } from '../../src/plan/load-plan.js';
import type { Plan } from '../../src/plan/plan.js';
import { bindEvidence, DEFAULT_MAX_EVIDENCE_AGE_MS } from '../../src/rehearsal/bind-evidence.js';
import { rehearse } from '../../src/rehearsal/rehearse.js';
import { serverUrl, type TargetKind } from './targets.js';

export const bundled: Plan = loadPlan();

/** Rehearses `url` (a PGlite directory, or a server database cloned onto the test server) with the bundled plan. */
export async function rehearseSource(kind: TargetKind, url: string, plan: Plan = bundled): Promise<Evidence> {
  const openSource = async () => {
    const db = await openDb(url);
    await db.exec('set session characteristics as transaction read only');
    return db;
  };
  return kind === 'pglite'
    ? rehearse(plan, { kind: 'pglite', url }, { kind: 'pglite', location: url, openSource })
    : rehearse(plan, { kind: 'postgres', url, scratchUrl: serverUrl('postgres') }, { kind: 'postgres', location: url, openSource });
}

/** The evidence as a file, as `rehearse --out` writes it. */
export function evidenceFile(evidence: Evidence): string {
  const file = join(mkdtempSync(join(tmpdir(), 'tiergate-evidence-')), 'evidence.json');
  writeFileSync(file, renderJson(evidence));
  return file;
}

/** An approval of OS-AXIS's current payload by the Directus user with this email, as Directus would write it. */
export async function approveAs(db: Db, email: string): Promise<void> {
  const r = await db.query(
    `insert into os_proposal_approvals (proposal, approver, payload_sha256)
     select p.id, u.id, p.payload_sha256 from os_proposals p, directus_users u where p.key = 'OS-AXIS' and u.email = $1`,
    [email],
  );
  if (r.rowCount !== 1) throw new Error(`approveAs: no Directus user ${email}`);
}

/** `apply --evidence` through the library: the binding checks, then the run. */
export async function applyBound(url: string, evidence: Evidence, options: { acceptDifferences?: boolean; plan?: Plan } = {}): Promise<RunResult> {
  const plan = options.plan ?? bundled;
  const bound = bindEvidence(evidenceFile(evidence), plan, { maxAgeMs: DEFAULT_MAX_EVIDENCE_AGE_MS, acceptDifferences: Boolean(options.acceptDifferences) });
  return withDb(url, (db) => apply(db, plan, { binding: bound.binding }));
}

/** Every failing check of a rehearsal, as the verdict lists them. */
export function failures(e: Evidence): string[] {
  return e.verdict.failures;
}
