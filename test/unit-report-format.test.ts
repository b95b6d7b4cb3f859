/**
 * The pieces the evidence renderers are built from (src/report/format.ts,
 * markdown-escape.ts, html.ts, tier-view.ts): plain-text formatting, and the
 * escaping that keeps database text from breaking a table or becoming markup.
 */
import { describe, expect, it } from 'vitest';
import type { Delta, TierResult } from '../src/evidence/types.js';
import {
  changedMetrics,
  expectedOutcomeText,
  fitText,
  formatCounts,
  formatDate,
  formatLocation,
  formatMetricChange,
  formatMs,
  formatObjectCounts,
  formatServerVersion,
  formatValue,
  isExpectedOutcome,
  metricChanges,
  objectChanges,
  rowChanges,
  shortSha,
  statusLabel,
  tiersInOrder,
  verdictText,
} from '../src/report/format.js';
import { singleLine } from '../src/text.js';
import { escapeHtml, html, SafeHtml, trustedHtml } from '../src/report/html.js';
import { mdBlock, mdCode, mdText } from '../src/report/markdown-escape.js';
import { shownReason, tierFailures, tierView } from '../src/report/tier-view.js';
import { axisGovernanceEvidence } from './fixtures/evidence-sample.js';
import { emptyFailure } from '../src/engine/run-result.js';

const delta = (d: Partial<Delta> = {}): Delta => ({ objects: {}, rows: {}, metrics: {}, ...d });
const failure = (message: string, extras: Partial<NonNullable<TierResult['error']>> = {}): NonNullable<TierResult['error']> => ({ ...emptyFailure(), message, ...extras });
const tier = (extras: Partial<TierResult> = {}): TierResult => ({
  id: 2,
  name: 'seed',
  kind: 'data',
  file: 't.sql',
  sha256: 'a'.repeat(64),
  status: 'Applied',
  reason: null,
  durationMs: 1,
  delta: null,
  post: [],
  error: null,
  ...extras,
});

describe('format.ts', () => {
  it('formats durations at each scale', () => {
    expect([0, 0.4, 999.4, 999.6, 1000, 1549, 59_949, 59_999, 60_000, 61_499, 125_000, 3_600_000].map(formatMs)).toEqual([
      '0 ms', '0 ms', '999 ms', '1000 ms', '1.0 s', '1.5 s', '59.9 s', '60.0 s', '1 min 0 s', '1 min 1 s', '2 min 5 s', '60 min 0 s',
    ]);
    expect([Number.NaN, Number.POSITIVE_INFINITY].map(formatMs)).toEqual(['?', '?']);
  });

  it('formats values, changes and counts', () => {
    expect([null, 0, 210, -3, 0.254, 0.255, 1 / 3].map(formatValue)).toEqual(['n/a', '0', '210', '-3', '0.25', '0.26', '0.33']);
    expect(formatMetricChange({ before: 210, after: 0 })).toBe('210 → 0');
    expect(formatMetricChange({ before: null, after: 3 }, '→')).toBe('n/a→3');
    expect(formatMetricChange({ before: 5, after: 5 })).toBe('5');
    expect(formatMetricChange({ before: null, after: null })).toBe('n/a');
    expect(formatCounts({ added: 30, removed: 0, changed: 0 })).toBe('+30');
    expect(formatCounts({ added: 0, removed: 35, changed: 0 })).toBe('\u221235');
    expect(formatCounts({ added: 5, removed: 1, changed: 4 })).toBe('+5 \u22121 ~4');
    expect(formatCounts({ added: 0, removed: 0, changed: 0 })).toBe('±0');
  });

  it('lists object kinds in the reading order, unknown kinds after, empty kinds left out', () => {
    const objects = {
      views: { added: ['a.v'], removed: [], changed: ['a.w'] },
      widgets: { added: ['a.x'], removed: [], changed: [] },
      tables: { added: [], removed: ['a.t'], changed: [] },
      indexes: { added: [], removed: [], changed: [] },
      schemas: { added: ['a'], removed: [], changed: [] },
    } as Delta['objects'];
    expect(objectChanges(delta({ objects })).map((c) => c.kind)).toEqual(['schemas', 'tables', 'views', 'widgets']);
    expect(objectChanges(delta({ objects }))[2]).toEqual({ kind: 'views', added: ['a.v'], removed: [], changed: ['a.w'] });
    expect(formatObjectCounts(delta({ objects }))).toBe('schemas +1, tables \u22121, views +1 ~1, widgets +1');
    expect(objectChanges(null)).toEqual([]);
    expect(formatObjectCounts(null)).toBe('');
  });

  it('keeps the tables a delta changed and the metrics it moved, in the order measured', () => {
    const d = delta({
      rows: { 'a.z': { added: 0, removed: 0, changed: 1 }, 'a.same': { added: 0, removed: 0, changed: 0 }, 'a.a': { added: 0, removed: 2, changed: 0 } },
      metrics: { z: { before: 1, after: 0 }, same: { before: 4, after: 4 }, na: { before: null, after: null }, appeared: { before: null, after: 0 } },
    });
    expect(rowChanges(d).map(([t]) => t)).toEqual(['a.z', 'a.a']);
    expect(metricChanges(d).map(([m]) => m)).toEqual(['z', 'same', 'na', 'appeared']);
    expect(changedMetrics(d).map(([m]) => m)).toEqual(['z', 'appeared']);
    expect(rowChanges(null)).toEqual([]);
    expect(metricChanges(null)).toEqual([]);
    expect(changedMetrics(null)).toEqual([]);
  });

  it('formats hashes, locations, verdicts and dates', () => {
    expect(shortSha('0123456789abcdef')).toBe('0123456789ab');
    expect(formatLocation({ file: 't.sql', line: 12, column: 3 })).toBe('t.sql:12:3');
    expect(formatLocation({ file: 't.sql', line: 12, column: null })).toBe('t.sql:12');
    expect(formatLocation({ file: 't.sql', line: null, column: 3 })).toBe('t.sql');
    expect(formatLocation({ file: null, line: 7, column: 3 })).toBe('line 7');
    expect(formatLocation({ file: null, line: null, column: 3 })).toBe('');
    expect(formatLocation({ file: '', line: null, column: null })).toBe('');
    const v = { rehearsal: 'PASS' as const, execution: 'NO-GO' as const, reason: ' ospa=0\n', failures: [] as string[] };
    expect(verdictText(v)).toBe('Rehearsal PASS · Execution NO-GO (ospa=0)');
    expect(verdictText({ ...v, reason: ' \t' })).toBe('Rehearsal PASS · Execution NO-GO');
    expect(formatDate('2026-06-03T09:14:27.512Z')).toBe('2026-06-03');
    expect(formatDate('June 3')).toBe('June 3');
    expect(formatDate('x2026-06-03')).toBe('x2026-06-03');
  });

  it('flattens text to one safe line, and cuts it with an ellipsis by code points', () => {
    expect(singleLine('a\r\nb\nc\rd\te\vf\fg\u2028h\u2029i')).toBe('a b c d e f g h i');
    expect(singleLine('a\u001b[2Jb\u202ec')).toBe('a[2Jbc');
    expect(fitText('Detector / reconcile / UI-API read views', 22)).toBe('Detector / reconcile…');
    expect(fitText('abc', 3)).toBe('abc');
    expect(fitText('abcd', 3)).toBe('ab…');
    expect(fitText('🚀🚀🚀🚀', 3)).toBe('🚀🚀…');
    expect(fitText('abcd', 0)).toBe('…');
  });

  it('labels an expected Blocked or Failed tier, and only those', () => {
    const expected = 'expected: the gate is closed';
    expect(isExpectedOutcome({ status: 'Blocked', expectedOutcome: expected })).toBe(true);
    expect(isExpectedOutcome({ status: 'Failed', expectedOutcome: expected })).toBe(true);
    expect(isExpectedOutcome({ status: 'Applied', expectedOutcome: expected })).toBe(false);
    expect(isExpectedOutcome({ status: 'Blocked', expectedOutcome: '  ' })).toBe(false);
    expect(isExpectedOutcome({ status: 'Blocked' })).toBe(false);
    expect(statusLabel({ status: 'Blocked', expectedOutcome: expected })).toBe('Blocked (expected)');
    expect(statusLabel({ status: 'Blocked' })).toBe('Blocked');
    expect(expectedOutcomeText({ expectedOutcome: ' expected: the gate is closed ' })).toBe('the gate is closed');
    expect(expectedOutcomeText({ expectedOutcome: 'Expected — verify fails' })).toBe('verify fails');
    expect(expectedOutcomeText({ expectedOutcome: 'expectedly so' })).toBe('expectedly so');
    expect(expectedOutcomeText({})).toBe('');
  });

  it('writes server versions as people do', () => {
    expect([170002, 180006, 100000, 90624, 90600, null, 0, -1, 1.5].map(formatServerVersion)).toEqual(['17.2', '18.6', '10.0', '9.6.24', '9.6.0', 'unknown', '0', '-1', '1.5']);
  });

  it('lists every tier run in order, the preflight first as stage 0', () => {
    const e = axisGovernanceEvidence();
    const order = tiersInOrder(e);
    expect(order[0]).toEqual({ stage: '0', tier: e.source.preflight });
    expect(order.slice(1, 3).map((x) => [x.stage, x.tier.id])).toEqual([['A', 1], ['A', 5]]);
    expect(order.length).toBe(1 + e.stages.reduce((n, s) => n + s.tiers.length, 0));
    e.source.preflight = null;
    expect(tiersInOrder(e)[0]!.stage).toBe('A');
  });
});

describe('markdown-escape.ts', () => {
  it('escapes Markdown punctuation, HTML and entities in text, on one line', () => {
    expect(mdText('a | b <i> & `c` *d* [e](f) ~g~ !h #i \\j')).toBe('a \\| b \\<i\\> &amp; \\`c\\` \\*d\\* \\[e\\](f) \\~g\\~ \\!h \\#i \\\\j');
    expect(mdText('one\r\ntwo\nthree\rfour\u2028five\u2029six\tseven')).toBe('one two three four five six seven');
    expect(mdText('esc\u001b[31m\u202e')).toBe('esc\\[31m');
  });

  it('leaves an intraword underscore alone and escapes the others', () => {
    expect(mdText('owner_gap')).toBe('owner_gap');
    expect(mdText('_lead trail_ a__b 日_本 x_ _y')).toBe('\\_lead trail\\_ a\\_\\_b 日_本 x\\_ \\_y');
    expect(mdText('1_2')).toBe('1_2');
  });

  it('puts a name in a code span only when a code span can hold it', () => {
    expect(mdCode('axis.ownership')).toBe('`axis.ownership`');
    expect(mdCode('')).toBe('');
    for (const unsafe of ['a`b', 'a|b', 'a\nb', 'a\rb', 'a\u2028b', 'a\u2029b', 'a\u202eb', 'a\u0000b', ' lead', 'trail ']) {
      expect(mdCode(unsafe), JSON.stringify(unsafe)).not.toMatch(/^`/);
    }
    expect(mdCode('a|b')).toBe('a\\|b');
  });

  it('fences a block with a fence longer than any backtick run inside, indented, without control characters', () => {
    expect(mdBlock('SELECT 1;', 'sql')).toBe('```sql\nSELECT 1;\n```');
    expect(mdBlock('a\r\nb\rc', '', '  ')).toBe('  ```\n  a\n  b\n  c\n  ```');
    expect(mdBlock('x ```` y `` z')).toBe('`````\nx ```` y `` z\n`````');
    expect(mdBlock('bell\u0007 \u202eback')).toBe('```\nbell back\n```');
  });
});

describe('html.ts', () => {
  it('escapes the five HTML metacharacters and drops unsafe characters', () => {
    expect(escapeHtml(`<a href="x" title='y'>&amp;</a>`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;');
    expect(escapeHtml('a\u001b[2J\u202eb\tc\nd')).toBe('a[2Jb\tc\nd');
  });

  it('escapes what is interpolated, keeps markup built by the tag, joins lists and renders nothing for false, null and undefined', () => {
    const name = '<b>x</b>';
    const out = html`<td title="${name}">${name}${html`<i>${name}</i>`}${[1, 'a&b', html`<br>`]}${false}${null}${undefined}${0}</td>`;
    expect(out).toBeInstanceOf(SafeHtml);
    expect(out.html).toBe('<td title="&lt;b&gt;x&lt;/b&gt;">&lt;b&gt;x&lt;/b&gt;<i>&lt;b&gt;x&lt;/b&gt;</i>1a&amp;b<br>0</td>');
    expect(String(out)).toBe(out.html);
    expect(html`plain`.html).toBe('plain');
    expect(trustedHtml('<style>a{}</style>').html).toBe('<style>a{}</style>');
    expect(html`${trustedHtml('<hr>')}`.html).toBe('<hr>');
  });
});

describe('tier-view.ts', () => {
  it('shows each figure beside its expectations, and keeps zero expectations that held for the full list only', () => {
    const t = tier({
      delta: delta({
        objects: { tables: { added: ['a.t'], removed: [], changed: [] } },
        rows: { 'a.t': { added: 3, removed: 0, changed: 0 } },
        metrics: { gap: { before: 3, after: 0 }, flat: { before: 1, after: 1 } },
      }),
      expectations: [
        { what: 'tables added', expected: '1', actual: '1', ok: true },
        { what: 'tables removed', expected: '0', actual: '0', ok: true },
        { what: 'tablespaces', expected: '+0', actual: '+1', ok: false },
        { what: 'rows a.t added', expected: 'n = 3', actual: '3', ok: true },
        { what: 'rows a.t changed', expected: '±0', actual: ' 0 ', ok: true },
        { what: 'rows a.t removed', expected: '0', actual: '0', ok: false },
        { what: 'metric gap', expected: 'any → 0', actual: '3 → 0', ok: true },
        { what: 'metric flat', expected: 'unchanged', actual: '1 → 1', ok: true },
      ],
    });
    const v = tierView(t);
    expect(v.objects).toEqual([{ kind: 'tables', added: ['a.t'], removed: [], changed: [], expectations: [{ what: 'tables added', expected: '1', actual: '1', ok: true, part: 'added' }] }]);
    expect(v.rows).toEqual([
      {
        table: 'a.t',
        changes: { added: 3, removed: 0, changed: 0 },
        expectations: [
          { what: 'rows a.t added', expected: 'n = 3', actual: '3', ok: true, part: 'added' },
          { what: 'rows a.t removed', expected: '0', actual: '0', ok: false, part: 'removed' },
        ],
      },
    ]);
    expect(v.metrics).toEqual([{ name: 'gap', change: { before: 3, after: 0 }, expectation: { what: 'metric gap', expected: 'any → 0', actual: '3 → 0', ok: true, part: '' } }]);
    expect(v.unchangedMetrics).toEqual(['flat']);
    expect(v.expectations.met).toBe(6);
    expect(v.expectations.missed.map((x) => x.what)).toEqual(['tablespaces', 'rows a.t removed']);
    expect(v.expectations.all).toHaveLength(8);
    expect(tierView(tier()).expectations).toEqual({ all: [], met: 0, missed: [] });
  });

  it("shows a tier's reason only when it says more than its error and its failed assertions", () => {
    expect(shownReason(tier({ reason: null }))).toBeNull();
    expect(shownReason(tier({ reason: '' }))).toBeNull();
    expect(shownReason(tier({ reason: 'boom', error: failure('boom') }))).toBeNull();
    expect(shownReason(tier({ reason: 'gate closed', error: failure('boom') }))).toBe('gate closed');
    const failedAssertions = [failure('a = 1'), failure('b = 2')];
    expect(shownReason(tier({ reason: 'a = 1; b = 2', failedAssertions }))).toBeNull();
    expect(shownReason(tier({ reason: 'a = 1', failedAssertions }))).toBe('a = 1');
    expect(shownReason(tier({ reason: 'why', failedAssertions: [] }))).toBe('why');
  });

  it('lists the error, unless it is the first failed assertion again, then every failed assertion', () => {
    const first = failure('a = 1', { file: 'v.sql', line: 4 });
    const second = failure('b = 2', { file: 'v.sql', line: 9 });
    expect(tierFailures(tier({ error: failure('a = 1', { file: 'v.sql', line: 4 }), failedAssertions: [first, second] })).map((f) => f.kind)).toEqual(['assertion', 'assertion']);
    for (const error of [failure('a = 1', { file: 'v.sql', line: 5 }), failure('a = 1', { file: 'w.sql', line: 4 }), failure('a = 2', { file: 'v.sql', line: 4 })]) {
      expect(tierFailures(tier({ error, failedAssertions: [first, second] }))).toEqual([
        { kind: 'error', failure: error },
        { kind: 'assertion', failure: first },
        { kind: 'assertion', failure: second },
      ]);
    }
    expect(tierFailures(tier({ error: first }))).toEqual([{ kind: 'error', failure: first }]);
    expect(tierFailures(tier())).toEqual([]);
  });
});
