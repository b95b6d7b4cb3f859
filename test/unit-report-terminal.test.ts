/**
 * The terminal lines `tiergate rehearse` prints (src/report/render-terminal.ts):
 * fixed columns, and details cut to the line with a count of what was left
 * out, so a tier is always one readable line.
 */
import { describe, expect, it } from 'vitest';
import type { Delta, TierResult } from '../src/evidence/types.js';
import { renderTierLine, renderTierStart } from '../src/report/render-terminal.js';
import { emptyFailure } from '../src/engine/run-result.js';

const tier = (extras: Partial<TierResult> = {}): TierResult => ({
  id: 2,
  name: 'Ownership seed',
  kind: 'data',
  file: 't.sql',
  sha256: 'a'.repeat(64),
  status: 'Applied',
  reason: null,
  durationMs: 120,
  delta: null,
  post: [],
  error: null,
  ...extras,
});
const failure = (message: string, extras: Partial<NonNullable<TierResult['error']>> = {}): NonNullable<TierResult['error']> => ({ ...emptyFailure(), message, ...extras });

/** The columns before the details: `B   2  Ownership seed          data       Applied             120 ms` (68 characters). */
const HEAD = 'B   2  Ownership seed          data       Applied             120 ms';
/** The room left for the details on a line of 250 characters. */
const ROOM = 250 - HEAD.length - 2;

/** A tier whose details are `items`, in that order (as rows of tables named by the items). */
function withDetails(items: string[]): TierResult {
  const rows: Delta['rows'] = {};
  for (const item of items) rows[item] = { added: 1, removed: 0, changed: 0 };
  return tier({ delta: { objects: {}, rows, metrics: {} } });
}
/** What a detail item of `withDetails` reads as. */
const shown = (item: string) => `${item} +1`;

describe('renderTierLine', () => {
  it('lays the columns out at fixed widths', () => {
    expect(HEAD.length).toBe(68);
    expect(renderTierLine('B', tier())).toBe(HEAD);
    expect(renderTierLine(' B ', tier())).toBe(HEAD);
    expect(renderTierLine('', tier({ id: 90 }))).toBe(' 90  Ownership seed          data       Applied             120 ms');
    expect(renderTierLine('C', tier({ id: 99, name: 'x'.repeat(30), kind: 'rollback', status: 'Reverted', durationMs: 61_000 }))).toBe(
      `C  99  ${'x'.repeat(21)}…  rollback   Reverted            1 min 1 s`,
    );
  });

  it('lists what the tier did: reason, objects, rows, metrics it moved', () => {
    const t = tier({
      reason: 're-applied\nto prove the rollback',
      delta: {
        objects: { tables: { added: ['a.t'], removed: [], changed: [] } },
        rows: { 'a.t': { added: 3, removed: 1, changed: 0 }, 'a.u': { added: 0, removed: 0, changed: 0 } },
        metrics: { gap: { before: 3, after: 0 }, flat: { before: 1, after: 1 } },
      },
    });
    expect(renderTierLine('B', t)).toBe(`${HEAD}  re-applied to prove the rollback  tables +1  a.t +3 \u22121  gap 3→0`);
  });

  it('shows failed post-conditions unless failed assertions repeat them, and what a stopped tier proved', () => {
    const post = [
      { expr: 'gap = 0', ok: false, value: 3 },
      { expr: 'ok = 0', ok: true, value: 0 },
    ];
    expect(renderTierLine('B', tier({ post }))).toBe(`${HEAD}  post failed: gap = 0`);
    expect(renderTierLine('B', tier({ post, failedAssertions: [] }))).toBe(`${HEAD}  post failed: gap = 0`);
    expect(renderTierLine('B', tier({ post, failedAssertions: [failure('gap = 3')] }))).toBe(`${HEAD}  gap = 3`);
    const blocked = tier({ status: 'Blocked', guardProven: true, fingerprintUnchanged: true, error: failure('gated', { sqlstate: 'P0001' }) });
    expect(renderTierLine('A', blocked)).toMatch(/ {2}guard proven {2}fingerprint unchanged$/);
    const failed = tier({ status: 'Failed', guardProven: false, fingerprintUnchanged: true, error: failure('boom', { sqlstate: '42P01', file: 't.sql', line: 3, column: 9 }) });
    expect(renderTierLine('A', failed)).toMatch(/ {2}Failed {14}120 ms {2}fingerprint unchanged {2}42P01 boom \(t\.sql:3:9\)$/);
    // an Applied tier's proof flags are not shown
    expect(renderTierLine('A', tier({ guardProven: true, fingerprintUnchanged: true }))).toBe(HEAD.replace('B   2', 'A   2'));
  });

  it('shows the error of a Blocked tier only through its proof, and the errors of a failed one', () => {
    const blocked = tier({ status: 'Blocked', error: failure('gated') });
    expect(renderTierLine('B', blocked)).toBe(HEAD.replace('Applied', 'Blocked'));
    const assertion = tier({ status: 'Failed', failedAssertions: [failure('a = 1', { sqlstate: 'TG004' })] });
    expect(renderTierLine('B', assertion)).toBe(`${HEAD.replace('Applied', 'Failed ')}  TG004 a = 1`);
  });

  it('keeps every detail when they fit, two spaces apart', () => {
    const items = ['a.one', 'a.two', 'a.three'];
    expect(renderTierLine('B', withDetails(items))).toBe(`${HEAD}  ${items.map(shown).join('  ')}`);
    const exact = ['x'.repeat(ROOM - 3)];
    expect(renderTierLine('B', withDetails(exact))).toBe(`${HEAD}  ${shown(exact[0]!)}`);
    expect(Array.from(renderTierLine('B', withDetails(exact))).length).toBe(250);
  });

  it('cuts the detail that does not fit and counts those left out after it', () => {
    // 3 items of 45 characters fit with room for the count; 31 characters are left for the 4th, cut with an ellipsis
    const items = Array.from({ length: 10 }, (_, i) => `${String(i)}${'x'.repeat(41)}`);
    const line = renderTierLine('B', withDetails(items));
    const kept = items.slice(0, 3).map(shown).join('  ');
    expect(kept.length).toBe(139);
    expect(line).toBe(`${HEAD}  ${kept}  ${shown(items[3]!).slice(0, 30)}… +6 more`);
    expect(Array.from(line).length).toBe(250);
  });

  it('counts the cut item too when less than 12 characters of it would show', () => {
    // 5 items of 32 characters fit with room for the count; 2 characters are left for the 6th
    const items = Array.from({ length: 10 }, (_, i) => `${String(i)}${'y'.repeat(28)}`);
    const line = renderTierLine('B', withDetails(items));
    expect(line).toBe(`${HEAD}  ${items.slice(0, 5).map(shown).join('  ')}  … +5 more`);
  });

  it('cuts the last item without a count when it does not fit whole', () => {
    const items = Array.from({ length: 4 }, (_, i) => `${String(i)}${'y'.repeat(40)}`);
    const line = renderTierLine('B', withDetails(items));
    const kept = items.slice(0, 3).map(shown).join('  ');
    expect(line).toBe(`${HEAD}  ${kept}  ${shown(items[3]!).slice(0, ROOM - kept.length - 2 - 1)}…`);
    expect(Array.from(line).length).toBe(250);
  });

  it('cuts a last item that does not fit without a count, and a single long one to the line', () => {
    const long = 'z'.repeat(400);
    const line = renderTierLine('B', withDetails([long]));
    expect(line).toBe(`${HEAD}  ${'z'.repeat(ROOM - 1)}…`);
    const two = renderTierLine('B', withDetails(['a.first', long]));
    expect(two).toBe(`${HEAD}  a.first +1  ${'z'.repeat(ROOM - 'a.first +1  '.length - 1)}…`);
    expect(Array.from(two).length).toBe(250);
  });
});

describe('renderTierStart', () => {
  it('shows the columns of the tier line that replaces it', () => {
    expect(renderTierStart('B', { id: 2, name: 'Ownership seed' })).toBe('B   2  Ownership seed …');
    expect(renderTierStart('', { id: 2, name: 'x'.repeat(30) })).toBe(`  2  ${'x'.repeat(21)}… …`);
  });
});
