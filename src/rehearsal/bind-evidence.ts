import { createHash } from 'node:crypto';
import type { RehearsalBinding } from '../engine/apply.js';
import { EvidenceRefusedError, UsageError } from '../errors.js';
import { planFileHashes, type Plan, type Tier } from '../plan/plan.js';
import type { TargetIdentity } from '../probe/identity.js';
import { evidenceText, parseEvidence } from '../evidence/evidence-json.js';
import { evidenceKey, verifyEvidence } from '../evidence/signature.js';
import { describeAge } from '../parse-duration.js';
import { readRegularFile } from '../safe-read.js';
import type { Delta, Difference, Evidence, GateReading, TierResult } from '../evidence/types.js';
import { computeVerdict, coverageProblems } from '../evidence/verdict.js';

export interface BindOptions {
  /** evidence whose snapshot of the source is older than this is refused (`--max-evidence-age`, default 7 days) */
  maxAgeMs: number;
  /** commit a tier that differs from its rehearsal, recording the differences (`--accept-differences`) */
  acceptDifferences: boolean;
  now?: Date;
}

export const DEFAULT_MAX_EVIDENCE_AGE_MS = 7 * 24 * 3600 * 1000;

/** The evidence a production run is bound to, checked; `binding` is what the engine asks during the run. */
export interface BoundEvidence {
  evidence: Evidence;
  /** things the operator should know that do not refuse the evidence (a dump's cluster cannot be checked) */
  notes: string[];
  binding: RehearsalBinding;
}

/**
 * Binds a production apply to a rehearsal (guarantee 10). Refuses (exit 2,
 * nothing touched) evidence that is not a PASS of exactly these plan files,
 * whose verdict does not follow from its own records (an edited file), that
 * does not cover the plan, that comes from the embedded sample, or whose
 * snapshot is older than `maxAgeMs`; then, on the target, evidence of another
 * database, cluster or engine, or of another gate subject (the payload
 * changed since the rehearsal). During the run, each tier's delta is
 * compared with the rehearsal's in the same state, inside the tier's
 * transaction.
 *
 * @example const bound = bindEvidence('evidence/evidence.json', plan, { maxAgeMs: DEFAULT_MAX_EVIDENCE_AGE_MS, acceptDifferences: false });
 */
export function bindEvidence(file: string, plan: Plan, options: BindOptions): BoundEvidence {
  const bytes = readRegularFile(file, 'evidence');
  if ('reason' in bytes) throw new UsageError(`evidence file '${file}' ${bytes.reason}: pass the evidence.json a rehearsal wrote`);
  // strict: a field this tiergate does not know is an edit (or a newer tiergate's evidence)
  const evidence = parseEvidence(evidenceText(bytes, file), file, { strict: true });
  const refuse = (why: string, todo = 'rehearse this target again and apply with the new evidence') => new EvidenceRefusedError(`evidence '${file}' refused: ${why}; nothing was changed — ${todo}`);

  const notes: string[] = [];
  const signature = checkSignature(evidence, refuse);
  if (plan.evidence.signed && signature !== 'valid') {
    throw refuse(
      signature === 'no key'
        ? 'the plan demands signed evidence and TIERGATE_EVIDENCE_KEY is not set: its signature cannot be verified'
        : 'the plan demands signed evidence (evidence.signed) and this evidence is unsigned',
      'rehearse with TIERGATE_EVIDENCE_KEY set, and apply with the same key',
    );
  }
  notes.push(
    signature === 'valid'
      ? `the evidence's signature verifies (key ${evidence.signature!.keyId})`
      : signature === 'no key'
        ? `the evidence is signed (key ${evidence.signature!.keyId}), but TIERGATE_EVIDENCE_KEY is not set here: the signature was not verified`
        : 'the evidence is unsigned: anyone who can write the file could have edited it (set TIERGATE_EVIDENCE_KEY when rehearsing and applying to sign and verify it)',
  );

  if (evidence.plan.name !== plan.name) throw refuse(`it is for plan '${evidence.plan.name}', not '${plan.name}'`);
  const files = planFileHashes(plan);
  const mismatched = [
    ...Object.entries(files).filter(([f, sha]) => evidence.plan.files[f] !== sha).map(([f, sha]) => `${f}: rehearsed ${evidence.plan.files[f]?.slice(0, 12) ?? 'absent'}, now ${sha.slice(0, 12)}`),
    ...Object.keys(evidence.plan.files).filter((f) => !(f in files)).map((f) => `${f}: rehearsed, no longer in the plan`),
  ];
  if (mismatched.length || evidence.plan.sha256 !== plan.sha256) {
    throw refuse(`it was rehearsed with other plan files:\n  ${mismatched.join('\n  ') || `plan sha256 ${evidence.plan.sha256.slice(0, 12)} → ${plan.sha256.slice(0, 12)}`}`, 'rehearse again with these files');
  }
  // the same tiergate.yaml: the gate it records is the plan's (a minimum edited down, with the verdict, would read GO)
  const recordedGate = evidence.source.gate;
  if (plan.gate && recordedGate && (recordedGate.name !== plan.gate.name || recordedGate.min !== plan.gate.min)) {
    throw refuse(`its gate record (${recordedGate.name}, needs ≥ ${recordedGate.min}) is not the plan's gate (${plan.gate.name}, needs ≥ ${plan.gate.min}), in the same tiergate.yaml: it was edited`);
  }
  const coverage = coverageProblems(plan, evidence);
  if (coverage.length) throw refuse(`its records do not cover the plan as a rehearsal does (${coverage.slice(0, 5).join('; ')}${coverage.length > 5 ? ` (+${coverage.length - 5})` : ''})`);
  const verdict = computeVerdict(plan, { preflight: evidence.source.preflight, gate: evidence.source.gate, stages: evidence.stages, rollback: evidence.rollback });
  if (verdict.rehearsal !== evidence.verdict.rehearsal || verdict.execution !== evidence.verdict.execution) {
    throw refuse(`it says 'Rehearsal ${evidence.verdict.rehearsal} · Execution ${evidence.verdict.execution}', but its own records give 'Rehearsal ${verdict.rehearsal} · Execution ${verdict.execution}'${verdict.failures.length ? ` (${verdict.failures.slice(0, 3).join('; ')})` : ''}: it was edited`);
  }
  if (verdict.rehearsal !== 'PASS') throw refuse(`it is a rehearsal FAIL (${verdict.failures.slice(0, 3).join('; ')})`, 'fix the plan or the database, rehearse again, and apply a PASS');
  if (evidence.source.kind === 'pglite-sample') {
    throw refuse('it rehearses the embedded sample database (npm start), not a database of yours', 'rehearse your target: tiergate rehearse --source URL --scratch URL (or --dump FILE)');
  }
  const now = options.now ?? new Date();
  const age = now.getTime() - Date.parse(evidence.source.snapshotAt);
  if (!Number.isFinite(age) || age > options.maxAgeMs) {
    throw refuse(`its copy of the source was taken ${evidence.source.snapshotAt} (${describeAge(age)} ago), older than --max-evidence-age ${describeAge(options.maxAgeMs)}`);
  }
  if (verdict.execution !== 'GO') {
    notes.push(`the rehearsal's execution verdict was ${verdict.execution} (${verdict.reason}): apply reads the gate itself and blocks the gated tiers while it is closed`);
  }
  const rehearsedOn = evidence.source.identity;
  if (rehearsedOn.systemIdentifier === null) notes.push(`the evidence comes from ${evidence.source.kind === 'dump' ? 'a plain SQL dump' : 'a source'} whose cluster cannot be identified: database name and gate subject are checked, and every tier is compared with its rehearsal`);
  const record = { file, sha256: createHash('sha256').update(bytes).digest('hex'), createdAt: evidence.createdAt };

  const binding: RehearsalBinding = {
    acceptDifferences: options.acceptDifferences,
    record,
    checkTarget(identity: TargetIdentity, gate: GateReading | null): void {
      if (rehearsedOn.engine !== null && rehearsedOn.engine !== identity.engine) {
        throw refuse(`it rehearses a ${engineName(rehearsedOn.engine)} database, and the target is ${engineName(identity.engine)}`);
      }
      if (rehearsedOn.database !== identity.database) throw refuse(`it rehearses database '${rehearsedOn.database}', and the target is '${identity.database}'`);
      if (rehearsedOn.systemIdentifier !== null && identity.systemIdentifier !== null && rehearsedOn.systemIdentifier !== identity.systemIdentifier) {
        throw refuse(`it rehearses a database of cluster ${rehearsedOn.systemIdentifier}, and the target's cluster is ${identity.systemIdentifier}`);
      }
      if (rehearsedOn.instance !== null && rehearsedOn.instance !== identity.instance) {
        throw refuse(`it rehearses PGlite directory ${rehearsedOn.instance}, and the target is ${identity.instance ?? 'another directory'}`);
      }
      const rehearsedSubject = evidence.source.gate?.subject ?? null;
      const subject = gate?.subject ?? null;
      if (rehearsedSubject !== subject) {
        throw refuse(`the gate's subject changed since the rehearsal (${evidence.source.gate?.name ?? 'gate'} subject ${short(rehearsedSubject)} then, ${short(subject)} now: what the approvals approve is not what was rehearsed)`);
      }
    },
    unrehearsedState(tierId: number, appliedBefore: number[]): string | null {
      if (rehearsalOf(evidence, tierId, appliedBefore)) return null;
      const states = evidence.stages.flatMap((s) => s.tiers).filter((t) => t.id === tierId && t.status === 'Applied').map((t) => `after [${(t.appliedBefore ?? []).join(', ')}]`);
      return `the rehearsal ${states.length ? `applied tier ${tierId} ${states.join(' and ')}` : `did not apply tier ${tierId}`}, and here it would run after [${appliedBefore.join(', ')}]: apply would roll it back (rehearse this target as it is now)`;
    },
    differences(tier: Tier, appliedBefore: number[], delta: Delta): Difference[] {
      const rehearsed = rehearsalOf(evidence, tier.id, appliedBefore);
      if (!rehearsed?.delta) {
        const states = evidence.stages.flatMap((s) => s.tiers).filter((t) => t.id === tier.id && t.status === 'Applied').map((t) => `after [${(t.appliedBefore ?? []).join(', ')}]`);
        return [{ what: 'state', rehearsal: states.length ? `tier ${tier.id} was rehearsed ${states.join(' and ')}` : `tier ${tier.id} was not applied in the rehearsal`, production: `it runs after [${appliedBefore.join(', ')}]` }];
      }
      return diffDeltas(rehearsed.delta, delta);
    },
  };
  return { evidence, notes, binding };
}

/**
 * The evidence's signature against TIERGATE_EVIDENCE_KEY: with a key set,
 * a signature that does not verify, another key's, or no signature at all
 * (a signed file whose signature was taken out reads the same) is refused;
 * without one, 'no key' (signed, not checked) or 'unsigned'.
 */
export function checkSignature(evidence: Evidence, refuse: (why: string, todo?: string) => Error): 'valid' | 'no key' | 'unsigned' {
  const key = evidenceKey();
  if (!key) return evidence.signature ? 'no key' : 'unsigned';
  const signature = verifyEvidence(evidence, key);
  if (signature === 'invalid') throw refuse('its signature does not verify with the key in TIERGATE_EVIDENCE_KEY: it was edited after the rehearsal signed it');
  if (signature === 'other key') throw refuse(`it was signed with another key (${evidence.signature!.keyId}) than the one in TIERGATE_EVIDENCE_KEY`);
  if (signature === 'unsigned') {
    throw refuse(
      'it is unsigned, and TIERGATE_EVIDENCE_KEY is set: an edit cannot be told from the rehearsal (a signed file whose signature was taken out reads the same)',
      'rehearse with TIERGATE_EVIDENCE_KEY set, and apply the signed evidence',
    );
  }
  return signature;
}

/**
 * A verdict the evidence's own records do not bear out, read without the
 * plan (`tiergate report`): better than they give (a FAIL edited into a
 * PASS, a NO-GO into a GO), or, of a PASS, an execution verdict the gate's
 * record contradicts (a gate edited open under a NO-GO). Without the plan a
 * rollback tier it asks for is not known, so a FAIL the records alone call
 * a PASS may be true. Null when the records bear it out as far as they
 * alone can tell.
 */
export function unfoundedVerdict(evidence: Evidence): string | null {
  // without the plan, no rollback tier is asked for: a verdict is only ever lowered by what the records show
  const computed = computeVerdict({ tiers: [], gate: undefined }, {
    preflight: evidence.source.preflight,
    gate: evidence.source.gate,
    stages: evidence.stages,
    rollback: evidence.rollback,
  });
  const said = evidence.verdict;
  const overstated = (said.rehearsal === 'PASS' && computed.rehearsal !== 'PASS') || (said.execution === 'GO' && computed.execution !== 'GO');
  // a PASS is GO exactly when the gate is open: here the records alone tell
  const gateContradicted = said.rehearsal === 'PASS' && computed.rehearsal === 'PASS' && said.execution !== computed.execution;
  if (overstated || gateContradicted) {
    return `it says 'Rehearsal ${said.rehearsal} · Execution ${said.execution}', but its own records give 'Rehearsal ${computed.rehearsal} · Execution ${computed.execution}' (${computed.failures.slice(0, 3).join('; ') || computed.reason}): it was edited`;
  }
  return null;
}

/** The rehearsal's run of a tier in the same state (the same tiers applied before it): the first one recorded. */
function rehearsalOf(evidence: Evidence, tierId: number, appliedBefore: number[]): TierResult | undefined {
  const key = appliedBefore.join(',');
  return evidence.stages.flatMap((s) => s.tiers).find((t) => t.id === tierId && t.status === 'Applied' && (t.appliedBefore ?? []).join(',') === key);
}

/**
 * Where two deltas differ: the names of the objects added, removed and
 * changed per kind, the rows added, removed and changed per table, and each
 * metric's value after the tier. Objects are compared by name, which both
 * engines agree on (how they print a definition differs between versions;
 * NOT NULL constraints, which only PostgreSQL 18 lists, are not objects).
 */
export function diffDeltas(rehearsal: Delta, production: Delta): Difference[] {
  const out: Difference[] = [];
  const kinds = new Set([...Object.keys(rehearsal.objects), ...Object.keys(production.objects)]) as Set<keyof Delta['objects']>;
  for (const k of kinds) {
    for (const change of ['added', 'removed', 'changed'] as const) {
      const x = [...(rehearsal.objects[k]?.[change] ?? [])].sort();
      const y = [...(production.objects[k]?.[change] ?? [])].sort();
      if (x.join('\n') !== y.join('\n')) out.push({ what: `${k} ${change}`, rehearsal: names(x), production: names(y) });
    }
  }
  for (const rel of new Set([...Object.keys(rehearsal.rows), ...Object.keys(production.rows)])) {
    const x = rehearsal.rows[rel];
    const y = production.rows[rel];
    const fx = x ? `+${x.added} −${x.removed} ~${x.changed}` : '±0';
    const fy = y ? `+${y.added} −${y.removed} ~${y.changed}` : '±0';
    if (fx !== fy) out.push({ what: `rows ${rel}`, rehearsal: fx, production: fy });
  }
  for (const m of new Set([...Object.keys(rehearsal.metrics), ...Object.keys(production.metrics)])) {
    const x = rehearsal.metrics[m]?.after ?? null;
    const y = production.metrics[m]?.after ?? null;
    if (x !== y) out.push({ what: `metric ${m} after`, rehearsal: String(x ?? 'n/a'), production: String(y ?? 'n/a') });
  }
  return out;
}

function names(xs: string[]): string {
  if (!xs.length) return 'none';
  return xs.slice(0, 6).join(', ') + (xs.length > 6 ? ` (+${xs.length - 6})` : '');
}

function engineName(e: 'pglite' | 'postgres' | null): string {
  return e === 'pglite' ? 'PGlite' : e === 'postgres' ? 'PostgreSQL' : 'unknown';
}

function short(s: string | null): string {
  return s === null ? 'none' : s.length > 16 ? `${s.slice(0, 12)}…` : s;
}
