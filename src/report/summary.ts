import type { Evidence, StageRecord, TierResult } from '../evidence/types.js';
import { formatValue, verdictText } from './format.js';

/**
 * The summary a report opens with, computed once from the evidence's own
 * records (checks, tiers, rollback) so that Markdown and HTML say the same:
 * the verdict, why, what would turn it GO, and what was proven. Plain text:
 * each renderer escapes it for its medium.
 */
export interface Summary {
  /** green GO, amber NO-GO (rehearsal passed), red FAIL */
  tone: 'go' | 'no-go' | 'fail';
  headline: string;
  why: { reason: string; gate: string | null; failures: string[]; approvals: ProofItem[] };
  next: { title: string; text: string; recorded: boolean };
  proven: ProofGroup[];
}

export interface ProofGroup {
  title: string;
  /** said when the group has no item */
  none: string;
  items: ProofItem[];
}

/** One fact: held (true), did not (false), or only information (null). */
export interface ProofItem {
  ok: boolean | null;
  /** what it is about (`stage B tier 2 Ownership seed`), linked to that tier run when `tier` is set; the text follows it after a colon */
  subject?: string;
  tier?: TierResult;
  text: string;
  detail?: string;
}

/** `tier 2 Ownership seed: owner_gap = 0`: an item as one line of plain text. */
export function proofLine(i: ProofItem): string {
  return i.subject ? `${i.subject}: ${i.text}` : i.text;
}

/** @example summarize(evidence).tone // 'no-go' */
export function summarize(e: Evidence): Summary {
  const v = e.verdict;
  return {
    tone: v.rehearsal === 'FAIL' ? 'fail' : v.execution === 'GO' ? 'go' : 'no-go',
    headline: verdictText(v),
    why: { reason: v.reason, gate: gateSentence(e), failures: v.failures, approvals: approvals(e) },
    next: {
      title: v.execution === 'GO' ? 'What next' : 'What would turn it GO',
      text: v.next?.trim() ? v.next : defaultNext(e),
      recorded: Boolean(v.next?.trim()),
    },
    proven: [guards(e), postConditions(e), expectations(e), rollback(e), expectedOutcomes(e)],
  };
}

function gateSentence(e: Evidence): string | null {
  const g = e.source.gate;
  if (!g) return 'the plan has no gate';
  const value = formatValue(g.value);
  return g.open ? `the gate ${g.name} is ${value} on the source (≥ ${formatValue(g.min)}: open)` : `the gate ${g.name} is ${value} on the source; it needs ≥ ${formatValue(g.min)}`;
}

/** The approvals the gate found on the source, when the plan's gate judges them one by one: which count, and why not. */
function approvals(e: Evidence): ProofItem[] {
  return (e.source.gate?.approvals ?? []).map((a) => ({
    ok: a.counts,
    subject: `approval by ${a.approver}`,
    text: a.counts ? 'counts' : `does not count${a.why ? `: ${a.why}` : ''}`,
    ...(a.at ? { detail: a.at } : {}),
  }));
}

/** For evidence written before `verdict.next` existed. */
function defaultNext(e: Evidence): string {
  const v = e.verdict;
  const g = e.source.gate;
  if (v.rehearsal === 'FAIL') return 'fix what failed and rehearse again';
  if (v.execution === 'GO') return 'apply it: tiergate apply --target <the source> --evidence evidence.json';
  return g ? `the gate ${g.name} must reach ${formatValue(g.min)} on the source (it is ${formatValue(g.value)}): obtain the approvals it counts, then apply with --evidence` : 'rehearse again';
}

function stage(e: Evidence, name: StageRecord['name']): StageRecord | undefined {
  return e.stages.find((s) => s.name === name);
}

const tierName = (t: TierResult) => `tier ${t.id} ${t.name}`;

function guards(e: Evidence): ProofGroup {
  const items = (stage(e, 'A')?.tiers ?? [])
    .filter((t) => t.status === 'Blocked' || t.guardProven !== undefined)
    .map((t): ProofItem => ({
      ok: t.guardProven === true && t.fingerprintUnchanged === true,
      subject: tierName(t),
      text: `${t.guardProven ? 'its own guard aborted it' : 'its own guard was not proven'}; ${
        t.fingerprintUnchanged ? 'clone fingerprint unchanged' : 'clone fingerprint changed or not checked'
      }`,
      tier: t,
    }));
  return { title: 'Guards proven with the gate closed', none: 'no gated tier was stopped with the gate closed', items };
}

function postConditions(e: Evidence): ProofGroup {
  const b = (stage(e, 'B')?.tiers ?? []).filter((t) => t.kind === 'data');
  const items = b.map((t): ProofItem => {
    const about = { subject: tierName(t), tier: t };
    if (t.status !== 'Applied') return { ok: false, ...about, text: `${t.status}${t.post.length ? ` (${posts(t)})` : ''}` };
    if (t.post.length === 0) return { ok: null, ...about, text: 'declares no post-condition' };
    return { ok: t.post.every((p) => p.ok), ...about, text: posts(t) };
  });
  return { title: "Each data tier's post-conditions (gate open)", none: 'no data tier ran with the gate open', items };
}

function posts(t: TierResult): string {
  return t.post.map((p) => (p.ok ? p.expr : `${p.expr} does not hold (${formatValue(p.value)})`)).join(', ');
}

function expectations(e: Evidence): ProofGroup {
  const items = e.stages.flatMap((s): ProofItem[] => {
    const tiers = s.tiers.filter((t) => (t.expectations ?? []).length > 0);
    if (tiers.length === 0) return [];
    const all = tiers.flatMap((t) => t.expectations!);
    const met = all.filter((x) => x.ok).length;
    const ids = [...new Set(tiers.map((t) => t.id))].join(', ');
    const missed = tiers.flatMap((t) =>
      t.expectations!.filter((x) => !x.ok).map((x): ProofItem => ({ ok: false, subject: `stage ${s.name} ${tierName(t)}`, tier: t, text: `${x.what}: expected ${x.expected}, actual ${x.actual}` })),
    );
    return [{ ok: met === all.length, text: `stage ${s.name}: ${met} of ${all.length} expectations met (tiers ${ids})` }, ...missed];
  });
  return { title: 'Expectations of the plan met', none: 'no expectation was checked', items };
}

function rollback(e: Evidence): ProofGroup {
  const r = e.rollback;
  const title = 'Rollback proven';
  if (!r) return { title, none: 'no rollback was rehearsed', items: [] };
  const reverted = r.reverted.length ? `tiers ${r.reverted.join(', ')}` : 'no tier';
  return {
    title,
    none: '',
    items: [
      {
        ok: r.matchesKeptTiers,
        text: `after rollback tier ${r.tier} reverted ${reverted}, the clone ${r.matchesKeptTiers ? 'equals' : 'differs from'} a clean apply of the kept tiers`,
      },
      { ok: r.reapplyMatches, text: `re-applying ${reverted} ${r.reapplyMatches ? 'reproduces' : 'does not reproduce'} stage B` },
    ],
  };
}

function expectedOutcomes(e: Evidence): ProofGroup {
  const items = e.stages.flatMap((s) => s.checks.filter((c) => c.expected === true).map((c): ProofItem => ({ ok: c.ok, text: c.name, detail: c.detail })));
  return { title: 'Expected outcomes', none: 'none recorded', items };
}
