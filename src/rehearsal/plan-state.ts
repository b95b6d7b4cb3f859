import { createHash } from 'node:crypto';
import type { Db } from '../db/port.js';
import { readLedger } from '../engine/ledger.js';
import type { Plan } from '../plan/plan.js';
import { readText } from '../probe/metrics.js';

/**
 * What a rehearsal's evidence is bound to in its source, beyond its schema
 * and rows: the subject of the plan's gate (what the approvals approve: the
 * bundled plan's proposal payload) and the plan's ledger (which tiers the
 * source has, for which subject). `apply --evidence` compares both with
 * production before it touches anything, and the evidence records the
 * source's subject: a rehearsal run on a snapshot taken before either
 * changed would rehearse another payload, or tiers the source has since
 * applied or reverted, under the source's current name. So a kept snapshot
 * records its plan state when it is made, read on the restored copy, and
 * is reused only while the source reads the same (src/rehearsal/clone-postgres.ts
 * chooseReuse); other changes to the source since the snapshot stay out of
 * the rehearsal, as the README says of `--reuse-snapshot`.
 */
export interface PlanState {
  /** the gate's subject as it reads there (null: none, or its objects do not exist) */
  subject: string | null;
  /** sha256 (16 hex) of the plan's ledger there: each tier's last status, file sha256 and subject */
  ledger: string;
}

export interface PlanStateReader {
  /** names the reading (the plan and its gate's subject query): a snapshot read by another reader is not compared */
  id: string;
  /** how the subject is named in a message: `the subject of gate ospa` */
  subjectLabel: string;
  read(db: Db): Promise<PlanState>;
}

/** The plan state reader of `plan`, read-only (one transaction, READ ONLY). */
export function planStateReader(plan: Plan): PlanStateReader {
  const gate = plan.gate;
  return {
    id: sha256(JSON.stringify(['plan state 1', plan.name, gate?.subject ?? null])),
    subjectLabel: gate ? `the subject of gate ${gate.name} (what its approvals approve)` : 'the gate subject',
    read: (db) =>
      db.transaction(
        async (tx) => {
          const subject = gate?.subject ? await readText(tx, `the subject of gate '${gate.name}'`, gate.subject) : null;
          const rows = [...(await readLedger(tx, plan.name)).values()].map((e) => `${e.tierId}:${e.status}:${e.sha256}:${e.subject ?? ''}`);
          return { subject, ledger: sha256(rows.sort().join('\n')) };
        },
        { readOnly: true },
      ),
  };
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}
