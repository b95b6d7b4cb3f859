import type { SqlFailure } from '../errors.js';
import type { Evidence, FingerprintDiff, StageRecord, TierResult } from '../evidence/types.js';
import {
  expectedOutcomeText,
  formatCounts,
  formatDate,
  formatLocation,
  formatMetricChange,
  formatMs,
  formatValue,
  isExpectedOutcome,
  shortSha,
  statusLabel,
} from './format.js';
import { identityRows, type IdentityCell } from './identity.js';
import { mdBlock, mdCode, mdText } from './markdown-escape.js';
import { proofLine, summarize, type ProofItem } from './summary.js';
import { shownReason, tierFailures, tierView, type Checked } from './tier-view.js';

/**
 * The evidence as a Markdown report (`evidence.md`), in the order of the
 * HTML report and readable as plain text: the summary (verdict, why, what
 * would turn it GO, what was proven), the source and the clone, then each
 * stage's checks and tiers: only the metrics a tier changed, each beside the
 * plan's expectation as recorded; an expected Blocked / Failed is labelled
 * so. Database text is escaped so it can neither break a table nor inject
 * markup, and stripped of control and bidirectional-override characters.
 *
 * @example
 *   writeFileSync(join(out, 'evidence.md'), renderMarkdown(evidence));
 *   // # Rollout rehearsal: axis-governance (2026-06-03)
 *   //
 *   // **Rehearsal PASS · Execution NO-GO (ospa=0)**
 */
export function renderMarkdown(e: Evidence): string {
  const sections = [
    header(e),
    summary(e),
    identity(e),
    e.source.preflight ? preflight(e.source.preflight) : '',
    ...e.stages.map(stage),
    rollback(e),
  ];
  return sections.filter(Boolean).join('\n\n') + '\n';
}

function verdictLine(e: Evidence): string {
  const { rehearsal, execution, reason } = e.verdict;
  return `Rehearsal ${rehearsal} · Execution ${execution}${reason.trim() ? ` (${mdText(reason.trim())})` : ''}`;
}

function header(e: Evidence): string {
  return [
    `# Rollout rehearsal: ${mdText(e.plan.name)} (${mdText(formatDate(e.createdAt))})`,
    `**${verdictLine(e)}**`,
    'Rehearsal only: every tier ran on a clone; nothing was executed against the source.',
  ].join('\n\n');
}

// ---- the summary: why, what would turn it GO, what was proven ----

function summary(e: Evidence): string {
  const s = summarize(e);
  const why = [
    `**Why:** ${[s.why.reason.trim() ? `**${mdText(s.why.reason.trim())}**` : '', s.why.gate ? mdText(s.why.gate) : ''].filter(Boolean).join(' — ')}`,
    ...s.why.failures.map((f) => `- ${mdText(f)}`),
    ...s.why.approvals.map((i) => `- ${proofMark(i)} ${mdText(proofLine(i))}`),
  ].join('\n');
  const next = `**${s.next.title}:** ${mdText(s.next.text)}${s.next.recorded ? '' : " _(not recorded in this evidence: tiergate's general advice)_"}`;
  const proven = s.proven
    .map((g) => [`- ${g.title}`, ...(g.items.length ? g.items.map((i) => `  - ${proofMark(i)} ${mdText(proofLine(i))}${i.detail ? ` — ${mdText(i.detail)}` : ''}`) : [`  - ${mdText(g.none)}`])].join('\n'))
    .join('\n');
  return ['## Summary', why, next, '**What was proven**', proven].join('\n\n');
}

function proofMark(i: ProofItem): string {
  return i.ok === null ? '•' : i.ok ? '✓' : '✗';
}

// ---- the source and the clone ----

function identity(e: Evidence): string {
  const cell = (c: IdentityCell | null) => (c === null ? '—' : c.code ? mdCode(c.text) : mdText(c.text));
  const rows = identityRows(e).map((r) => `| ${r.label} | ${cell(r.source)} | ${cell(r.clone)} |`);
  const fileCount = Object.keys(e.plan.files).length;
  return [
    '## Source and target',
    ['| | Source | Clone (rehearsal target) |', '|---|---|---|', ...rows].join('\n'),
    [
      `- **Plan**: ${mdCode(e.plan.name)} at ${mdCode(e.plan.dir)}, sha256 ${mdCode(shortSha(e.plan.sha256))}, ${fileCount} file${fileCount === 1 ? '' : 's'}`,
      `- **Run**: tiergate ${mdText(e.tool.version)}, ${mdText(e.createdAt)}, ${formatMs(e.durationMs)}`,
    ].join('\n'),
  ].join('\n\n');
}

// ---- stages ----

function preflight(t: TierResult): string {
  return ['## Preflight (source, read-only)', tierTable([t]), tierNotes([t])].filter(Boolean).join('\n\n');
}

function stage(s: StageRecord): string {
  return [
    `## Stage ${s.name} — ${mdText(s.title)}`,
    checks(s),
    s.tiers.length > 0 ? tierTable(s.tiers) : '_No tiers ran in this stage._',
    tierNotes(s.tiers),
  ]
    .filter(Boolean)
    .join('\n\n');
}

function checks(s: StageRecord): string {
  if (s.checks.length === 0) return '';
  const lines = s.checks.map((c) => `- ${c.ok ? '✓' : '✗'}${c.expected ? ' _(expected)_' : ''} ${mdText(c.name)}${c.detail ? ` — ${mdText(c.detail)}` : ''}`);
  return ['**Checks**', lines.join('\n')].join('\n\n');
}

/** One row per tier: status, time, and what it changed in figures (metrics: only those it moved). */
function tierTable(tiers: TierResult[]): string {
  const head = ['| Tier | Name | Kind | Status | Time | Objects | Rows | Metrics changed |', '|---:|---|---|---|---:|---|---|---|'];
  const rows = tiers.map((t) => {
    const v = tierView(t);
    const objects = v.objects.map((c) => `${c.kind} ${formatCounts({ added: c.added.length, removed: c.removed.length, changed: c.changed.length })}`).join(', ');
    const rowsText = v.rows.map((r) => `${mdCode(r.table)} ${formatCounts(r.changes)}`).join(', ');
    const metrics = v.metrics.map((m) => `${mdCode(m.name)} ${formatMetricChange(m.change)}`).join(', ');
    return `| ${t.id} | ${mdText(t.name)} | ${mdText(t.kind)} | ${mdText(statusLabel(t))} | ${formatMs(t.durationMs)} | ${objects || '—'} | ${rowsText || '—'} | ${metrics || '—'} |`;
  });
  return [...head, ...rows].join('\n');
}

function tierNotes(tiers: TierResult[]): string {
  return tiers.map(tierNote).join('\n');
}

/** Per tier: expected outcome, stop-gate, object names, rows and metrics against expectations, post-conditions, errors. */
function tierNote(t: TierResult): string {
  const v = tierView(t);
  const lines: string[] = [];
  if (isExpectedOutcome(t)) lines.push(`  - **expected outcome**: ${mdText(expectedOutcomeText(t))}`);
  const reason = shownReason(t);
  if (reason) lines.push(`  - reason: ${mdText(reason)}`);
  if (t.status === 'Blocked' || t.guardProven !== undefined || t.fingerprintUnchanged !== undefined) {
    lines.push(
      `  - stop-gate: ${t.guardProven ? "✓ the file's own guard aborted it" : "✗ the file's own guard was not proven"}; ${
        t.fingerprintUnchanged ? '✓ clone fingerprint unchanged' : '✗ clone fingerprint changed or not checked'
      }`,
    );
  }
  for (const c of v.objects) {
    const verbs = [['added', c.added], ['removed', c.removed], ['changed', c.changed]] as const;
    for (const [verb, names] of verbs) {
      const about = c.expectations.filter((x) => x.part === verb);
      if (names.length > 0) lines.push(`  - ${c.kind} ${verb}: ${names.map(mdCode).join(', ')}${about.length ? ` — ${about.map((x) => checked({ ...x, part: '' })).join('; ')}` : ''}`);
    }
    const rest = c.expectations.filter((x) => !verbs.some(([verb, names]) => x.part === verb && names.length > 0));
    lines.push(...rest.map((x) => `  - ${c.kind}: ${checked(x)}`));
  }
  for (const r of v.rows) lines.push(`  - rows ${mdCode(r.table)} ${formatCounts(r.changes)}${expectationsInline(r.expectations)}`);
  for (const m of v.metrics) lines.push(`  - metric ${mdCode(m.name)} ${formatMetricChange(m.change)}${expectationsInline(m.expectation ? [m.expectation] : [])}`);
  const unchanged = v.unchangedMetrics.length;
  if (t.delta && unchanged) {
    lines.push(v.metrics.length ? `  - ${unchanged} other metric${unchanged === 1 ? '' : 's'} measured, unchanged` : `  - no metric changed (${unchanged} measured)`);
  }
  const figures = Object.entries(t.figures ?? {});
  if (figures.length) lines.push(`  - figures read before the tier: ${figures.map(([n, value]) => `${mdCode(n)} = ${formatValue(value)}`).join(', ')}`);
  for (const p of t.post) lines.push(`  - post-condition ${p.ok ? '✓' : '✗'} ${mdCode(p.expr)} (value ${formatValue(p.value)})`);
  const x = v.expectations;
  if (x.all.length > 0) {
    lines.push(`  - expectations: ${x.met} of ${x.all.length} met`);
    for (const m of x.missed) lines.push(`    - ✗ ${mdText(m.what)}: expected ${mdCode(m.expected)}, actual ${mdCode(m.actual)}`);
  }
  for (const d of t.differences ?? []) lines.push(`  - differs from the rehearsal: ${mdText(d.what)}: rehearsal ${mdCode(d.rehearsal)}, production ${mdCode(d.production)}`);
  const tag = isExpectedOutcome(t) ? ' (expected)' : '';
  for (const { kind, failure: f } of tierFailures(t)) lines.push(...failure(`${kind === 'error' ? (t.status === 'Blocked' ? 'stopped by' : 'error') : 'assertion failed'}${tag}`, f));
  const before = t.appliedBefore ? (t.appliedBefore.length ? `, after tier${t.appliedBefore.length === 1 ? '' : 's'} ${t.appliedBefore.join(', ')}` : ', no tier applied before it') : '';
  const title = `- **Tier ${t.id} ${mdText(t.name)}** — ${mdText(statusLabel(t))}, ${formatMs(t.durationMs)} (${mdCode(t.file)}, sha256 ${mdCode(shortSha(t.sha256))}${before})`;
  return [title, ...lines].join('\n');
}

function checked(x: Checked): string {
  return `${x.ok ? '✓' : '✗'} ${x.part ? `${mdText(x.part)}: ` : ''}expected ${mdCode(x.expected)}, actual ${mdCode(x.actual)}`;
}

function expectationsInline(xs: Checked[]): string {
  return xs.length ? ` — ${xs.map(checked).join('; ')}` : ' — no expectation';
}

function failure(label: string, f: SqlFailure): string[] {
  const where = formatLocation(f);
  const lines = [`  - ${label}${f.sqlstate ? ` ${mdCode(f.sqlstate)}` : ''}: ${mdText(f.message)}${where ? ` at ${mdCode(where)}` : ''}`];
  if (f.detail) lines.push(`    - detail: ${mdText(f.detail)}`);
  if (f.hint) lines.push(`    - hint: ${mdText(f.hint)}`);
  if (f.where) lines.push(`    - where: ${mdText(f.where)}`);
  if (f.excerpt) lines.push('', mdBlock(`${f.line !== null ? `${f.line} | ` : ''}${f.excerpt}`, 'sql', '    '), '');
  return lines;
}

// ---- rollback ----

function rollback(e: Evidence): string {
  const r = e.rollback;
  if (!r) return '## Rollback proof\n\nNo rollback was rehearsed.';
  const reverted = r.reverted.length > 0 ? `reverted tiers ${r.reverted.join(', ')}` : 'reverted no tier';
  return [
    '## Rollback proof',
    [
      `- Rollback tier ${r.tier} ${reverted}.`,
      `- ${r.matchesKeptTiers ? '✓' : '✗'} the clone's fingerprint after rollback ${r.matchesKeptTiers ? 'equals' : 'differs from'} a clean apply of the kept tiers`,
      ...diff(r.keptDiff),
      `- ${r.reapplyMatches ? '✓' : '✗'} re-applying the reverted tiers ${r.reapplyMatches ? 'reproduces' : 'does not reproduce'} the full-apply fingerprint`,
      ...diff(r.reapplyDiff),
    ].join('\n'),
  ].join('\n\n');
}

function diff(d: FingerprintDiff | null): string[] {
  if (!d) return [];
  return [
    ...(d.objects.length > 0 ? [`  - objects that differ: ${d.objects.map(mdCode).join(', ')}`] : []),
    ...(d.tables.length > 0 ? [`  - tables whose rows differ: ${d.tables.map(mdCode).join(', ')}`] : []),
  ];
}
