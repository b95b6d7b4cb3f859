import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Evidence, TierResult } from '../src/evidence/types.js';
import { EVIDENCE_JSON_SCHEMA_PATH, evidenceJsonSchemaText } from '../src/evidence/json-schema.js';
import {
  EvidenceError,
  parseEvidence,
  renderHtml,
  renderJson,
  renderMarkdown,
  renderTierLine,
  renderTierStart,
  renderVerdictLine,
} from '../src/report/index.js';
import { formatMs, statusLabel, tiersInOrder } from '../src/report/format.js';
import { escapeHtml } from '../src/report/html.js';
import { metricRun } from '../src/report/metric-series.js';
import { safeText } from '../src/text.js';
import { axisGovernanceEvidence, HOSTILE, hostileEvidence, UNSAFE_CHARS } from './fixtures/evidence-sample.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/** A rehearsal that failed: a post-condition did not hold and the rollback left a difference. */
function failedEvidence(): Evidence {
  const e = axisGovernanceEvidence();
  const seed = e.stages[1]!.tiers[0]!;
  seed.status = 'Failed';
  seed.post = [{ expr: 'owner_gap = 0', ok: false, value: 3 }];
  seed.expectations = [
    { what: 'rows axis.ownership added', expected: 'approved_anchors = 30', actual: '27', ok: false },
    { what: 'metric owner_gap', expected: 'any → 0', actual: '210 → 3', ok: false },
  ];
  seed.delta!.rows['axis.ownership'] = { added: 27, removed: 0, changed: 0 };
  seed.delta!.metrics.owner_gap = { before: 210, after: 3 };
  seed.error = {
    message: 'post-condition owner_gap = 0 failed: owner_gap = 3',
    sqlstate: null,
    detail: null,
    hint: 'check the payload anchors',
    where: null,
    file: 'tiers/02_ownership_seed.sql',
    line: null,
    column: null,
    excerpt: null,
  };
  e.rollback = { ...e.rollback!, matchesKeptTiers: false, keptDiff: { objects: ['axis.v_owner_gap'], tables: ['axis.ownership'] } };
  e.verdict = {
    rehearsal: 'FAIL',
    execution: 'NO-GO',
    reason: 'rehearsal failed',
    failures: ['stage B tier 2: post-condition owner_gap = 0 failed (3)', 'rollback: fingerprint differs from a clean apply of the kept tiers'],
    next: 'fix what failed (listed above) and rehearse again',
  };
  return e;
}

/** Markdown with fenced blocks and code spans removed: what a renderer would treat as markup. */
function outsideCode(md: string): string {
  return md.replace(/^ *(`{3,})[^\n]*\n[\s\S]*?^ *\1 *$/gm, '').replace(/(`+)[^`]*?\1/g, '');
}

/** Pipes that are table cell separators (not escaped as `\|`). */
function cellSeparators(line: string): number {
  return line.match(/(?<!\\)\|/g)?.length ?? 0;
}

/** The same rehearsal with the gate open on the source: GO. */
function goEvidence(): Evidence {
  const e = axisGovernanceEvidence();
  e.source.gate = { ...e.source.gate!, value: 1, open: true };
  e.verdict = { rehearsal: 'PASS', execution: 'GO', reason: 'ospa=1', failures: [], next: 'apply it: tiergate apply --target <the source> --evidence evidence.json' };
  return e;
}

/** Evidence as a tiergate before plan.sql, verdict.next, expectedOutcome and clone.identity wrote it. */
function oldEvidence(): Evidence {
  const e = axisGovernanceEvidence();
  delete e.plan.sql;
  delete e.verdict.next;
  delete e.clone.identity;
  for (const { tier } of tiersInOrder(e)) {
    delete tier.expectedOutcome;
    delete tier.appliedBefore;
    delete tier.figures;
  }
  for (const s of e.stages) for (const c of s.checks) delete c.expected;
  return e;
}

/** The tier card of one tier run in the HTML report (`tier-b-2`). */
function card(page: string, id: string): string {
  const m = page.match(new RegExp(`<article class="tier [^"]*" id="${id}">[\\s\\S]*?</article>`));
  if (!m) throw new Error(`no tier card ${id}`);
  return m[0];
}

const tier = (e: Evidence, stage: string, id: number): TierResult => e.stages.find((s) => s.name === stage)!.tiers.find((t) => t.id === id)!;

describe('terminal lines', () => {
  it('states the verdict the way the seed does', () => {
    expect(renderVerdictLine(axisGovernanceEvidence())).toBe('Rehearsal PASS · Execution NO-GO (ospa=0)');
    expect(renderVerdictLine(failedEvidence())).toBe('Rehearsal FAIL · Execution NO-GO (rehearsal failed)');
  });

  it('summarises a tier on one line: status, time, rows, the metrics it changed', () => {
    const seed = tier(axisGovernanceEvidence(), 'B', 2);
    // axis_tables was measured (9 → 9) but did not move: left out
    expect(renderTierLine('B', seed)).toBe('B   2  Ownership seed          data       Applied             120 ms  axis.ownership +30  owner_gap 210→0  critical 30→0');
    expect(renderTierLine('', seed)).toMatch(/^ {2}2 {2}Ownership seed {10}data/);
    // the line shown while it runs has the same columns, so the end line replaces it in place
    expect(renderTierStart('B', seed)).toBe('B   2  Ownership seed …');
    expect(renderTierStart('', { id: 90, name: `Verify\u001b[2J ${HOSTILE.bidi}` })).toBe(' 90  Verify[2J invoiceabdg… …');
  });

  it('labels an expected Blocked tier "(expected)" and shows why it stopped and what was proven', () => {
    const line = renderTierLine('A', tier(axisGovernanceEvidence(), 'A', 2));
    expect(line).toMatch(/ {2}data {7}Blocked \(expected\) {2}/);
    expect(line).toContain('gate ospa = 0 < 1');
    expect(line).toContain('guard proven');
    expect(line).toContain('fingerprint unchanged');
    // without an expected outcome it is a plain Blocked
    const unexpected = { ...tier(axisGovernanceEvidence(), 'A', 2), expectedOutcome: undefined };
    expect(renderTierLine('A', unexpected)).toMatch(/ {2}Blocked {15}3 ms {2}/);
  });

  it("keeps stage A's failing verify readable: one line, cut with a count of what was left out", () => {
    const verify = tier(axisGovernanceEvidence(), 'A', 90);
    expect(verify.failedAssertions).toHaveLength(5);
    expect(verify.failedAssertions!.every((a) => a.message.length >= 300)).toBe(true);
    const line = renderTierLine('A', verify);
    expect(Array.from(line).length).toBeLessThan(260);
    expect(line).toContain('Failed (expected)');
    expect(line).toContain('TG004 verify: owner_gap = 210 (expected 0): collection_01');
    expect(line).toMatch(/… \+4 more$/);
    expect(line).not.toMatch(/[\r\n]/);
  });

  it('keeps columns apart and cuts long names with an ellipsis', () => {
    for (const e of [axisGovernanceEvidence(), hostileEvidence()]) {
      for (const { stage, tier: t } of tiersInOrder(e)) {
        const line = renderTierLine(stage, t);
        const status = statusLabel(t).replace(/[()]/g, '\\$&');
        // stage  id  name (22)  kind  status  duration: every column at least two spaces from the next
        expect(line, line.slice(0, 120)).toMatch(new RegExp(`^${stage} {2,}${t.id} {2}.{22} {2,}${t.kind} {2,}${status} {2,}${formatMs(t.durationMs)}( {2}|$)`));
        expect(Array.from(line).length).toBeLessThanOrEqual(250);
      }
    }
    const long = { ...tier(axisGovernanceEvidence(), 'A', 1), name: HOSTILE.long };
    expect(renderTierLine('A', long)).toMatch(/^A {3}1 {2}x{21}… {2}structure/);
  });

  it('keeps a hostile tier on one line without control or bidi characters', () => {
    const t = axisGovernanceEvidence().stages[0]!.tiers[0]!;
    t.name = `evil\nname\u001b[2J ${HOSTILE.bidi}`;
    t.error = { ...axisGovernanceEvidence().stages[0]!.tiers[3]!.error!, message: `line 1\r\nline 2\u0007 ${HOSTILE.control}` };
    t.status = 'Failed';
    const line = renderTierLine('A', t);
    expect(line).not.toMatch(UNSAFE_CHARS);
    expect(line).not.toMatch(/[\r\n]/);
    expect(line).toContain('line 1 line 2');
    for (const { stage, tier: h } of tiersInOrder(hostileEvidence())) expect(renderTierLine(stage, h)).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
  });
});

describe('Markdown report', () => {
  const md = renderMarkdown(axisGovernanceEvidence());

  it('opens like the seed, then summary, identity and the stages in that order', () => {
    const lines = md.split('\n');
    expect(lines[0]).toBe('# Rollout rehearsal: axis-governance (2026-06-03)');
    expect(lines[2]).toBe('**Rehearsal PASS · Execution NO-GO (ospa=0)**');
    const order = ['## Summary', '## Source and target', '## Preflight', '## Stage A — Gate closed', '## Stage B — Gate opened on the clone', '## Stage C — Rollback, then re-apply', '## Rollback proof'];
    const at = order.map((h) => md.indexOf(`\n${h}`));
    expect(at.every((i) => i > 0)).toBe(true);
    expect([...at].sort((x, y) => x - y)).toEqual(at);
  });

  it('summarises why, what would turn it GO, and what was proven', () => {
    expect(md).toContain('**Why:** **ospa=0** — the gate ospa is 0 on the source; it needs ≥ 1');
    expect(md).toContain("**What would turn it GO:** no accountable approval of proposal OS-AXIS's current payload");
    for (const item of [
      '  - ✓ tier 2 Ownership seed: its own guard aborted it; clone fingerprint unchanged',
      '  - ✓ tier 4 Promotion: its own guard aborted it; clone fingerprint unchanged',
      '  - ✓ tier 2 Ownership seed: owner_gap = 0',
      '  - ✓ tier 4 Promotion: divergent = 0, projection_gap = 0',
      '  - ✓ stage B: 30 of 30 expectations met (tiers 2, 3, 4)',
      '  - ✓ after rollback tier 99 reverted tiers 6, 4, 3, the clone equals a clean apply of the kept tiers',
      '  - ✓ re-applying tiers 6, 4, 3 reproduces stage B',
      '  - ✓ A: verify shows the honest gaps — Failed: owner_gap=210',
    ]) {
      expect(md).toContain(item);
    }
    const failed = renderMarkdown(failedEvidence());
    expect(failed).toContain('**Why:** **rehearsal failed** — the gate ospa is 0 on the source; it needs ≥ 1\n- stage B tier 2: post-condition owner_gap = 0 failed (3)');
    expect(failed).toContain('  - ✗ tier 2 Ownership seed: Failed (owner_gap = 0 does not hold (3))');
    expect(failed).toContain('  - ✗ stage B tier 2 Ownership seed: rows axis.ownership added: expected approved_anchors = 30, actual 27');
    expect(failed).toContain('  - ✗ after rollback tier 99 reverted tiers 6, 4, 3, the clone differs from a clean apply of the kept tiers');
    expect(renderMarkdown(goEvidence())).toContain('**What next:** apply it: tiergate apply --target \\<the source\\> --evidence evidence.json');
    expect(renderMarkdown(oldEvidence())).toContain("_(not recorded in this evidence: tiergate's general advice)_");
  });

  it('shows the source and the clone side by side', () => {
    expect(md).toContain('| | Source | Clone (rehearsal target) |');
    expect(md).toContain('| Database | `directus` | `directus` |');
    expect(md).toContain('| Cluster system identifier | `7715110484324614186` | `7715110484324614186` |');
    expect(md).toContain('| Server version | 18.6 (180006) | 18.6 (180006) |');
    expect(md).toContain('| Snapshot | 2026-06-03T09:14:23.297Z | copied in 843 ms, dropped after the run |');
    expect(md).toContain('| Gate | ospa = 0 (minimum 1, closed) | opened on the clone in stage B |');
    expect(md).toMatch(/\| Gate subject \| `[0-9a-f]{64}` \| — \|/);
    expect(renderMarkdown(oldEvidence())).toContain('| Database | `directus` | not recorded |');
  });

  it('shows only the metrics a tier changed, each beside its expectation as recorded', () => {
    expect(md).toContain('| 1 | Base axis substrate | structure | Applied | 14 ms | tables +6, views +5 | — | `axis_tables` 0 → 6, `owner_gap` n/a → 210, `containment_gap` n/a → 35, `projection_gap` n/a → 65 |');
    // tier 2 measured axis_tables 9 → 9: not a change
    expect(md).toContain('| 2 | Ownership seed | data | Applied | 120 ms | — | `axis.ownership` +30 | `owner_gap` 210 → 0, `critical` 30 → 0 |');
    expect(md).toContain('  - rows `axis.ownership` +30 — ✓ added: expected `approved_anchors = 30`, actual `30`');
    expect(md).toContain('  - metric `owner_gap` 210 → 0 — ✓ expected `any → 0`, actual `210 → 0`');
    expect(md).toContain('  - metric `critical` 30 → 0 — no expectation');
    expect(md).toContain('  - figures read before the tier: `approved_anchors` = 30');
    expect(md).toContain('  - tables added: `axis.axis`, `axis.topic`, `axis.collection_topic`, `axis.ownership`, `axis.containment_rule`, `axis.containment_assignment` — ✓ expected `6`, actual `6`');
    expect(md).toContain('  - views changed: `axis.v_governed_collection`, `axis.v_owner_gap`');
    expect(md).toContain('  - metric `axis_tables` 9 → 8 — ✓ expected `any → axis_tables - 1 = 8`, actual `9 → 8`');
    expect(md).toContain('  - no metric changed (2 measured)');
    expect(md).not.toContain('`owner_gap` 210,');
  });

  it('labels the expected outcomes of stage A as expected, with stop-gates and errors at file:line', () => {
    expect(md).toContain('| 2 | Ownership seed | data | Blocked (expected) | 3 ms |');
    expect(md).toContain('| 90 | Verify | verify | Failed (expected) | 6 ms |');
    expect(md).toContain('- **Tier 2 Ownership seed** — Blocked (expected), 3 ms');
    expect(md).toContain('  - **expected outcome**: the gate is closed');
    expect(md).toContain('  - **expected outcome**: the gated tiers have not run, so verify shows the honest gaps');
    expect(md).toContain("  - stop-gate: ✓ the file's own guard aborted it; ✓ clone fingerprint unchanged");
    expect(md).toContain('  - stopped by (expected) `P0001`: tier 2 is gated: ospa = 0, requires \\>= 1 (proposal OS-AXIS not ratified) at `tiers/02_ownership_seed.sql:12:5`');
    expect(md).toContain('  - assertion failed (expected) `TG004`: verify: critical = 30 (expected 0)');
    expect(md).toContain('at `tiers/90_verify.sql:99:1`');
    expect(md).toContain("    99 |         RAISE EXCEPTION 'verify: critical = % (expected 0): %'");
    expect(md).toContain('- ✓ _(expected)_ A: verify shows the honest gaps — Failed: owner_gap=210');
    expect(md).toContain('- Rollback tier 99 reverted tiers 6, 4, 3.');
    // a verify tier's failures are listed once: its error is its first failed assertion
    expect(md.match(/verify: owner_gap = 210 \(expected 0\)/g)).toHaveLength(1);
  });

  it('lists failures, missed expectations and fingerprint differences of a failed rehearsal', () => {
    const failed = renderMarkdown(failedEvidence());
    expect(failed).toContain('**Rehearsal FAIL · Execution NO-GO (rehearsal failed)**');
    expect(failed).toContain('  - rows `axis.ownership` +27 — ✗ added: expected `approved_anchors = 30`, actual `27`');
    expect(failed).toContain('  - metric `owner_gap` 210 → 3 — ✗ expected `any → 0`, actual `210 → 3`');
    expect(failed).toContain('    - ✗ rows axis.ownership added: expected `approved_anchors = 30`, actual `27`');
    expect(failed).toContain('  - objects that differ: `axis.v_owner_gap`');
    expect(failed).toContain("- ✗ the clone's fingerprint after rollback differs from a clean apply of the kept tiers");
  });

  it('keeps tables intact and markup inert whatever the database says', () => {
    const hostile = renderMarkdown(hostileEvidence());
    const lines = hostile.split('\n');
    for (const [i, line] of lines.entries()) {
      if (line.startsWith('|') && !line.startsWith('|---')) {
        // the table's header: the line above its |---| delimiter row (or this line, when the delimiter follows it)
        let delimiter = i;
        while (delimiter >= 0 && !lines[delimiter]!.startsWith('|---')) delimiter--;
        const header = lines[i + 1]?.startsWith('|---') ? line : lines[delimiter - 1]!;
        expect(cellSeparators(line), line.slice(0, 120)).toBe(cellSeparators(header));
      }
    }
    // code spans and blocks show their content literally; everywhere else `<` must be escaped
    expect(outsideCode(hostile)).not.toMatch(/(?<!\\)</);
    expect(hostile).toContain('`<script>window.__pwned=2</script>`');
    expect(lines).not.toContain('# not a heading');
    expect(hostile).toContain('\\<img src=x onerror="window.\\_\\_pwned=1"\\>');
    expect(hostile).toContain(HOSTILE.long.slice(0, 100));
    // no bidi override or isolate, no control character but line breaks, anywhere (code included)
    expect(hostile).not.toMatch(UNSAFE_CHARS);
    expect(hostile).toContain('invoiceabdgnp.exe ijk end');
    expect(hostile).toContain('RTL evil');
  });

  it('renders a rehearsal without a preflight, a rollback or tiers, and old evidence', () => {
    const e = axisGovernanceEvidence();
    e.source.preflight = null;
    e.source.gate = null;
    e.rollback = null;
    e.stages[2]!.tiers = [];
    const text = renderMarkdown(e);
    expect(text).not.toContain('## Preflight');
    expect(text).toContain('No rollback was rehearsed.');
    expect(text).toContain('_No tiers ran in this stage._');
    expect(text).toContain('the plan has no gate');
    const old = renderMarkdown(oldEvidence());
    expect(old).toContain('| 2 | Ownership seed | data | Blocked | 3 ms |');
    expect(old).not.toContain('(expected)');
  });
});

describe('HTML report', () => {
  const page = renderHtml(axisGovernanceEvidence());

  it('is one self-contained document that loads and runs nothing', () => {
    expect(page.startsWith('<!doctype html>')).toBe(true);
    expect(page).toContain('<meta charset="utf-8">');
    expect(page).toContain(
      `<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;; style-src &#39;unsafe-inline&#39;; img-src data:;`,
    );
    expect(page).not.toMatch(/<script|<img|<iframe|<object|<link rel="stylesheet"/i);
    expect(page).not.toMatch(/(?:src|href)="(?!data:|#)/);
    expect(page).not.toMatch(/https?:\/\//);
    expect(page).not.toMatch(/\son[a-z]+\s*=/i);
  });

  it('opens with a summary box: verdict in its colour, why, what would turn it GO, what was proven', () => {
    const summary = page.slice(page.indexOf('<section id="summary"'), page.indexOf('</section>', page.indexOf('<section id="summary"')));
    expect(page.indexOf('<section id="summary"')).toBeLessThan(page.indexOf('<nav id="contents"'));
    expect(summary).toContain('class="summary tone-no-go"');
    expect(summary).toContain('<span class="badge pass">Rehearsal PASS</span>');
    expect(summary).toContain('<span class="badge no-go">Execution NO-GO <small>ospa=0</small></span>');
    expect(summary).toContain('<strong>ospa=0</strong> — the gate ospa is 0 on the source; it needs ≥ 1');
    expect(summary).toContain('<h3>What would turn it GO</h3><p class="long next">no accountable approval of proposal OS-AXIS&#39;s current payload');
    for (const title of ['Guards proven with the gate closed', 'Each data tier&#39;s post-conditions (gate open)', 'Expectations of the plan met', 'Rollback proven', 'Expected outcomes']) {
      expect(summary).toContain(`<h4>${title}</h4>`);
    }
    expect(summary).toContain('<a href="#tier-a-2">tier 2 Ownership seed</a>: its own guard aborted it; clone fingerprint unchanged');
    expect(summary).toContain('<a href="#tier-b-4">tier 4 Promotion</a>: divergent = 0, projection_gap = 0');
    expect(summary).toContain('stage B: 30 of 30 expectations met (tiers 2, 3, 4)');
    expect(summary).toContain('after rollback tier 99 reverted tiers 6, 4, 3, the clone equals a clean apply of the kept tiers');
    expect(summary).toContain('re-applying tiers 6, 4, 3 reproduces stage B');
    expect(summary).toContain('A: verify shows the honest gaps');
    expect(summary).not.toContain('class="bad"');

    const failed = renderHtml(failedEvidence());
    expect(failed).toContain('class="summary tone-fail"');
    expect(failed).toContain('<span class="badge fail">Rehearsal FAIL</span>');
    expect(failed).toContain('<li><div class="long">rollback: fingerprint differs from a clean apply of the kept tiers</div></li>');
    expect(failed).toContain('<span class="bad" aria-label="does not hold">✗</span> <a href="#tier-b-2">tier 2 Ownership seed</a>: Failed (owner_gap = 0 does not hold (3))');
    expect(failed).toContain('objects that differ: <code>axis.v_owner_gap</code>');
    const go = renderHtml(goEvidence());
    expect(go).toContain('class="summary tone-go"');
    expect(go).toContain('<span class="badge go">Execution GO <small>ospa=1</small></span>');
    expect(go).toContain('<h3>What next</h3>');
    expect(renderHtml(oldEvidence())).toContain("(not recorded in this evidence: tiergate's general advice)");
  });

  it('has a table of contents whose every anchor resolves, and unique ids', () => {
    const ids = [...page.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]!);
    expect(new Set(ids).size).toBe(ids.length);
    const links = [...page.matchAll(/href="#([^"]*)"/g)].map((m) => m[1]!);
    expect(links.length).toBeGreaterThan(30);
    for (const l of links) expect(ids, `#${l}`).toContain(l);
    const toc = page.slice(page.indexOf('<nav id="contents"'), page.indexOf('</nav>'));
    expect([...toc.matchAll(/href="#([^"]*)"/g)].map((m) => m[1])).toEqual(['summary', 'identity', 'timeline', 'durations', 'preflight', 'stage-a', 'stage-b', 'stage-c', 'metrics', 'rollback']);
    // stage C runs tier 6 twice (reverted, re-applied): each run has its own card
    expect(ids).toEqual(expect.arrayContaining(['tier-c-6', 'tier-c-6-2', 'tier-pre-0', 'tier-a-90']));
  });

  it('shows the source and the clone: kind, location, engine, database, cluster, version, snapshot, gate', () => {
    const identity = page.slice(page.indexOf('<section id="identity"'), page.indexOf('</section>', page.indexOf('<section id="identity"')));
    for (const text of [
      '<th scope="row">Kind</th><td>pglite-sample</td><td>pglite</td>',
      '<th scope="row">Location</th><td><code>embedded sample (scale 1)</code></td><td><code>pglite:///tmp/tiergate-clone-Vb9IWJ</code></td>',
      '<th scope="row">Engine</th><td>pglite</td><td>pglite</td>',
      '<th scope="row">Database</th><td><code>directus</code></td><td><code>directus</code></td>',
      '<th scope="row">Cluster system identifier</th><td><code>7715110484324614186</code></td>',
      '<th scope="row">Server version</th><td>18.6 (180006)</td>',
      '<th scope="row">Snapshot</th><td>2026-06-03T09:14:23.297Z</td>',
      '<th scope="row">Gate</th><td>ospa = 0 (minimum 1, closed)</td>',
      `<th scope="row">Gate subject</th><td><code>${axisGovernanceEvidence().source.gate!.subject}</code></td>`,
    ]) {
      expect(identity).toContain(text.replace(/<td>(.*?)<\/td>/g, '<td><div class="clip">$1</div></td>'));
    }
    expect(renderHtml(oldEvidence())).toContain('<th scope="row">Database</th><td><div class="clip"><code>directus</code></div></td><td><div class="clip">not recorded</div></td>');
  });

  it('shows per tier only the metrics it changed, with the expectation as recorded beside what was measured', () => {
    const seed = card(page, 'tier-b-2');
    expect(seed).toContain('<code>owner_gap</code></td><td rowspan="1" class="nw">210 → 0</td><td><code>any → 0</code></td><td><code>210 → 0</code></td><td><span class="ok">✓ yes</span></td>');
    expect(seed).toContain('<code>critical</code></td><td class="nw">30 → 0</td><td colspan="3" class="muted">no expectation for it</td>');
    expect(seed).not.toContain('axis_tables');
    expect(seed).toContain('1 other metric measured, unchanged by this tier.');
    expect(seed).toContain('<code>axis.ownership</code></td><td rowspan="1" class="nw">+30</td><td><span class="muted">added:</span> <code>approved_anchors = 30</code></td><td><code>30</code></td>');
    expect(seed).toContain('<li><code>approved_anchors</code> = 30</li>');
    expect(seed).toContain('<summary>5 of 5 met</summary>');
    expect(seed).toContain('after tiers 1, 5, 6');
    const verifyB = card(page, 'tier-b-90');
    expect(verifyB).toContain('<span class="muted">none (2 measured, unchanged)</span>');
    const failed = card(renderHtml(failedEvidence()), 'tier-b-2');
    expect(failed).toContain('<tr class="missed"><td><div class="clip">rows axis.ownership added</div></td>');
    expect(failed).toContain('2 not met');
  });

  it("puts each tier's SQL, as rehearsed, in a collapsible block, its error lines marked", () => {
    const e = axisGovernanceEvidence();
    const seed = card(page, 'tier-b-2');
    expect(seed).toMatch(/<details class="sql"><summary>SQL <code>tiers\/02_ownership_seed\.sql<\/code> <span class="muted">as rehearsed, 40 lines<\/span><\/summary><pre class="sql"><code>/);
    expect(seed).toContain(`<span class="l">${escapeHtml(e.plan.sql!['tiers/02_ownership_seed.sql']!.split('\n')[0]!)}</span>`);
    const blocked = card(page, 'tier-a-2');
    expect(blocked).toContain('as rehearsed, 40 lines, line 12 marked');
    expect(blocked).toContain(`<span class="l hit">        ${escapeHtml("RAISE EXCEPTION 'tier % is gated: ospa = %, requires >= 1', 2, v_ospa;")}</span>`);
    expect(card(page, 'tier-a-90')).toContain('line 48, 61, 87, 99, 111 marked');
    // every tier that ran has its SQL; a Reverted record is the rollback's work
    const runs = tiersInOrder(e).length;
    expect(page.match(/<details class="sql">/g)).toHaveLength(runs - 3);
    expect(card(page, 'tier-c-6')).not.toContain('<details class="sql">');
    const old = card(renderHtml(oldEvidence()), 'tier-b-2');
    expect(old).not.toContain('<details class="sql">');
    expect(old).toContain('SQL of <code>tiers/02_ownership_seed.sql</code> not recorded in this evidence (written by a tiergate that did not record it)');
  });

  it('labels an expected Blocked / Failed tier "expected" and does not paint it as an error', () => {
    for (const id of ['tier-a-2', 'tier-a-3', 'tier-a-4', 'tier-a-90']) {
      const c = card(page, id);
      expect(c).toMatch(/^<article class="tier st-expected"/);
      expect(c).toContain('<span class="pill st-expected tag">expected</span>');
      expect(c).not.toMatch(/st-failed|st-blocked|class="failure"|class="failure blocked"/);
    }
    expect(card(page, 'tier-a-2')).toContain('<p class="outcome"><strong>Expected:</strong> the gate is closed</p>');
    expect(card(page, 'tier-a-90')).toContain('<p class="outcome"><strong>Expected:</strong> the gated tiers have not run, so verify shows the honest gaps</p>');
    expect(page).toMatch(/<li class="cell st-expected" title="Tier 2 Ownership seed: Blocked \(expected\)/);
    // without an expected outcome, a Blocked tier is amber and a Failed one red
    const old = renderHtml(oldEvidence());
    expect(card(old, 'tier-a-2')).toMatch(/^<article class="tier st-blocked"/);
    expect(card(old, 'tier-a-90')).toMatch(/^<article class="tier st-failed"/);
    expect(card(old, 'tier-a-90')).toContain('<div class="failure">');
  });

  it('shows errors with file:line:column and the SQL line, once each', () => {
    const verify = card(page, 'tier-a-90');
    expect(verify.match(/<div class="failure expected">/g)).toHaveLength(5);
    expect(verify).toContain('<strong>assertion failed (expected)</strong> <code>TG004</code> at <code>tiers/90_verify.sql:48:1</code>');
    expect(verify).toContain('<pre class="excerpt"><span class="ln">99</span>');
    // the reason only repeats the assertions: not shown twice
    expect(verify.match(/verify: owner_gap = 210 \(expected 0\)/g)).toHaveLength(1);
    expect(card(page, 'tier-a-2')).toContain('<strong>stopped by its own guard (expected)</strong> <code>P0001</code> at <code>tiers/02_ownership_seed.sql:12:5</code>');
  });

  it('draws the durations as an accessible inline SVG bar chart', () => {
    const section = page.slice(page.indexOf('<section id="durations"'), page.indexOf('</section>', page.indexOf('<section id="durations"')));
    expect(section).toMatch(/<svg class="dchart" viewBox="0 0 1000 \d+" width="1000" height="\d+" role="img" aria-labelledby="durations-title durations-desc"><title id="durations-title">Tier durations by stage<\/title><desc id="durations-desc">/);
    const runs = tiersInOrder(axisGovernanceEvidence());
    expect(section.match(/<g class="bar /g)).toHaveLength(runs.length);
    expect(section).toContain('<title>Stage B · tier 3 Axis/topic values + containment: Applied, 184 ms</title>');
    expect(section).toContain('<g class="bar st-expected"><title>Stage A · tier 2 Ownership seed: Blocked (expected), 3 ms</title>');
    expect(section).toContain('Stage A: tier 1 Base axis substrate Applied 14 ms; tier 5 Scanner / candidate Applied 11 ms');
    // the text alternative: the same figures as a table
    expect(section).toContain('<details class="alt"><summary>The durations as a table</summary>');
    expect(section.match(/<tr><td>Stage /g)).toHaveLength(runs.length - 1);
    expect(section).toContain('<tr><td>Stage B</td><td class="num">2</td><td><div class="clip">Ownership seed</div></td><td class="nw">Applied</td><td class="num">120 ms</td></tr>');
  });

  it('keeps the timeline and a chart per metric', () => {
    expect(page).toMatch(/<li class="cell st-reverted" title="Tier 6 /);
    expect(page).toContain('<a href="#tier-b-2"><span class="id">2</span><span class="nm">Ownership seed</span>');
    const run = metricRun(axisGovernanceEvidence());
    expect(run.series.find((s) => s.name === 'owner_gap')!.points.map((p) => p.value)).toEqual([null, 210, 210, 0, 0]);
    expect(page.match(/<svg class="chart"/g)).toHaveLength(run.series.length);
    expect(page).toContain('aria-label="owner_gap: n/a → 210 → 210 → 0 → 0"');
  });

  it("lists the source's approvals under why, when the gate judges them one by one", () => {
    const e = axisGovernanceEvidence();
    e.source.gate!.approvals = [
      { id: '1', approver: 'ana@example.com', at: '2026-06-01T10:00:00Z', subject: 'abc', counts: false, why: 'the author of the proposal' },
      { id: '2', approver: HOSTILE.img, at: null, subject: null, counts: false, why: HOSTILE.bidi },
    ];
    const page = renderHtml(e);
    expect(page).toContain('<span class="bad" aria-label="does not hold">✗</span> approval by ana@example.com: does not count: the author of the proposal');
    expect(page).toContain('approval by &lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;: does not count: invoiceabdgnp.exe ijk end');
    expect(renderMarkdown(e)).toContain('- ✗ approval by ana@example.com: does not count: the author of the proposal');
  });

  it('renders a rehearsal without a preflight, a gate, a rollback or tiers', () => {
    const e = axisGovernanceEvidence();
    e.source.preflight = null;
    e.source.gate = null;
    e.rollback = null;
    e.stages[2]!.tiers = [];
    const page = renderHtml(e);
    expect(page).not.toContain('href="#preflight"');
    expect(page).toContain('<p class="muted">No tiers ran in this stage.</p>');
    expect(page).toContain('the plan has no gate');
    expect(page).toContain('<p class="muted">no rollback was rehearsed</p>');
    e.stages = [];
    expect(renderHtml(e)).toContain('<p class="muted">No tier ran.</p>');
  });

  it('renders differences from the rehearsal when a tier has them', () => {
    const e = axisGovernanceEvidence();
    tier(e, 'B', 2).differences = [{ what: 'rows axis.ownership added', rehearsal: '30', production: '31' }];
    expect(card(renderHtml(e), 'tier-b-2')).toContain('<dt>Differences from the rehearsal</dt>');
    expect(renderMarkdown(e)).toContain('  - differs from the rehearsal: rows axis.ownership added: rehearsal `30`, production `31`');
  });

  it('escapes every piece of database text and drops bidi overrides and control characters', () => {
    const hostile = renderHtml(hostileEvidence());
    expect(hostile).not.toMatch(/<img|<script|<b>|<\/pre><\/details><b>/i);
    expect(hostile).toContain('&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;');
    expect(hostile).toContain('&lt;script&gt;window.__pwned=2&lt;/script&gt;');
    expect(hostile).toContain('it&#39;s &quot;quoted&quot; &amp; &lt;b&gt;bold&lt;/b&gt;');
    expect(hostile).toContain('&lt;/pre&gt;&lt;/details&gt;&lt;b&gt;');
    expect(hostile).toContain(safeText(HOSTILE.unicode));
    expect(hostile).toContain('invoiceabdgnp.exe ijk end');
    expect(hostile).not.toMatch(UNSAFE_CHARS);
    // data never opens a tag nor leaves its attribute's quotes, so no event-handler attribute exists
    expect(hostile.replace(/"[^"]*"/g, '""')).not.toMatch(/<[a-z][^>]*\son[a-z]+\s*=/i);
    // the ids stay ours: none is built from database text
    for (const [, id] of hostile.matchAll(/\sid="([^"]+)"/g)) expect(id).toMatch(/^[a-z0-9-]+$/);
  });
});

describe('evidence.json', () => {
  it('is 2-space JSON with a trailing newline that reads back as the same evidence', () => {
    const e = axisGovernanceEvidence();
    const text = renderJson(e);
    expect(text.endsWith('}\n')).toBe(true);
    expect(text.split('\n')[1]).toBe('  "schemaVersion": 2,');
    expect(parseEvidence(text)).toEqual(e);
    const hostile = hostileEvidence();
    expect(parseEvidence(renderJson(hostile))).toEqual(hostile);
  });

  it('is stable: the same evidence built in another key order gives the same bytes', () => {
    const e = axisGovernanceEvidence();
    // reverse the fields of every object, but not the entries of maps (files, rows, metrics), whose order is data
    const maps = new Set(['files', 'sql', 'objects', 'rows', 'metrics', 'figures']);
    const reversed = JSON.parse(JSON.stringify(e), (key, value: unknown) =>
      value && typeof value === 'object' && !Array.isArray(value) && !maps.has(key) ? Object.fromEntries(Object.entries(value).reverse()) : value,
    ) as Evidence;
    expect(Object.keys(reversed)[0]).toBe('durationMs');
    expect(renderJson(reversed)).toBe(renderJson(e));
  });

  it('accepts fields a newer tiergate added, and drops them', () => {
    const value = JSON.parse(renderJson(axisGovernanceEvidence())) as Record<string, unknown>;
    value.addedLater = { anything: true };
    expect(parseEvidence(JSON.stringify(value))).toEqual(axisGovernanceEvidence());
  });

  it('refuses what is not tiergate evidence, saying what is wrong', () => {
    const attempt = (text: string) => {
      try {
        parseEvidence(text, 'out/evidence.json');
      } catch (err) {
        return err;
      }
      throw new Error('parseEvidence accepted it');
    };
    expect((attempt('{"schemaVersion": 1,') as Error).message).toMatch(/^out\/evidence\.json: not valid JSON/);
    expect((attempt('[1, 2]') as Error).message).toContain('not tiergate evidence: expected a JSON object with "tool": { "name": "tiergate" } (found an array)');
    expect((attempt('{"tool": {"name": "sqitch"}}') as Error).message).toContain('(found "tool": {"name":"sqitch"})');

    const future = JSON.parse(renderJson(axisGovernanceEvidence())) as { schemaVersion: number; tool: { version: string } };
    future.schemaVersion = 3;
    future.tool.version = '9.0.0';
    expect((attempt(JSON.stringify(future)) as Error).message).toBe(
      'out/evidence.json: unsupported evidence schemaVersion 3 (written by tiergate 9.0.0); this tiergate reads schemaVersion 2. ' +
        'Re-run the rehearsal with this version, or read it with the version that wrote it.',
    );

    const broken = JSON.parse(renderJson(axisGovernanceEvidence())) as Evidence;
    (broken.stages[1]!.tiers[0]! as { status: string }).status = 'Done';
    (broken.stages[0]!.tiers[0]! as { durationMs: unknown }).durationMs = 'fast';
    delete (broken.verdict as Partial<Evidence['verdict']>).reason;
    const err = attempt(JSON.stringify(broken));
    expect(err).toBeInstanceOf(EvidenceError);
    const evidenceError = err as EvidenceError;
    expect(evidenceError.exitCode).toBe(2);
    expect(evidenceError.issues.map((i) => i.path).sort()).toEqual(['stages[0].tiers[0].durationMs', 'stages[1].tiers[0].status', 'verdict.reason']);
    expect(evidenceError.message).toMatch(/^out\/evidence\.json: not valid tiergate evidence \(3 problems\):/);
    expect(evidenceError.message).toContain('\n  - stages[1].tiers[0].status: Invalid option: expected one of');
  });

  it('refuses to write evidence it could not read back', () => {
    const e = axisGovernanceEvidence();
    e.durationMs = Number.NaN;
    expect(() => renderJson(e)).toThrow(/refusing to write evidence that does not match its schema:\n {2}- durationMs:/);
  });

  it('has a published JSON Schema that is current', () => {
    const committed = readFileSync(`${root}/${EVIDENCE_JSON_SCHEMA_PATH}`, 'utf8');
    expect(committed, `${EVIDENCE_JSON_SCHEMA_PATH} is stale: run 'node --import tsx scripts/gen-schemas.ts'`).toBe(evidenceJsonSchemaText());
    const schema = JSON.parse(committed) as { properties: Record<string, unknown>; required: string[] };
    // every field of the evidence, and the optional signature
    expect(Object.keys(schema.properties).sort()).toEqual([...Object.keys(axisGovernanceEvidence()), 'signature'].sort());
    expect(schema.required.sort()).toEqual(Object.keys(axisGovernanceEvidence()).sort());
    expect(schema.properties.schemaVersion).toMatchObject({ const: 2 });
  });
});
