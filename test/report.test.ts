import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Evidence } from '../src/evidence/types.js';
import { EVIDENCE_JSON_SCHEMA_PATH, evidenceJsonSchemaText } from '../src/evidence/json-schema.js';
import {
  EvidenceError,
  parseEvidence,
  renderHtml,
  renderJson,
  renderMarkdown,
  renderTierLine,
  renderVerdictLine,
} from '../src/report/index.js';
import { metricRun } from '../src/report/metric-series.js';
import { axisGovernanceEvidence, HOSTILE, hostileEvidence } from './fixtures/evidence-sample.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/** A rehearsal that failed: a post-condition did not hold and the rollback left a difference. */
function failedEvidence(): Evidence {
  const e = axisGovernanceEvidence();
  const seed = e.stages[1]!.tiers[0]!;
  seed.status = 'Failed';
  seed.post = [{ expr: 'owner_gap = 0', ok: false, value: 3 }];
  seed.expectations = [{ what: 'rows axis.ownership', expected: '+30', actual: '+27', ok: false }];
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
  e.verdict = { rehearsal: 'FAIL', execution: 'NO-GO', reason: 'rehearsal failed', failures: ['stage B tier 2: post-condition owner_gap = 0 failed (3)', 'rollback: fingerprint differs from a clean apply of the kept tiers'] };
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

describe('terminal lines', () => {
  it('states the verdict the way the seed does', () => {
    expect(renderVerdictLine(axisGovernanceEvidence())).toBe('Rehearsal PASS · Execution NO-GO (ospa=0)');
    expect(renderVerdictLine(failedEvidence())).toBe('Rehearsal FAIL · Execution NO-GO (rehearsal failed)');
  });

  it('summarises a tier on one line: status, time, rows, metrics', () => {
    const seed = axisGovernanceEvidence().stages[1]!.tiers[0]!;
    expect(renderTierLine('B', seed)).toMatch(
      /^B {2}2 {2}Ownership seed {10}data {7}Applied {3}120 ms {2}axis\.ownership \+30 {2}owner_gap 210→0/,
    );
  });

  it('shows why a gated tier was blocked, and that the stop-gate was proven', () => {
    const blocked = axisGovernanceEvidence().stages[0]!.tiers.find((t) => t.id === 2)!;
    const line = renderTierLine('A', blocked);
    expect(line).toContain('Blocked');
    expect(line).toContain('gate ospa = 0 < 1');
    expect(line).toContain('guard proven');
    expect(line).toContain('fingerprint unchanged');
  });

  it('keeps a hostile tier on one line without control characters', () => {
    const t = axisGovernanceEvidence().stages[0]!.tiers[0]!;
    t.name = 'evil\nname\u001b[2J';
    t.error = { ...axisGovernanceEvidence().stages[0]!.tiers[3]!.error!, message: 'line 1\r\nline 2\u0007' };
    t.status = 'Failed';
    const line = renderTierLine('A', t);
    expect(line).not.toMatch(/[\u0000-\u001f\u007f]/);
    expect(line).toContain('line 1 line 2');
  });
});

describe('Markdown report', () => {
  const md = renderMarkdown(axisGovernanceEvidence());

  it('opens like the seed: plan, date, verdict', () => {
    const lines = md.split('\n');
    expect(lines[0]).toBe('# Rollout rehearsal: axis-governance (2026-06-03)');
    expect(lines[2]).toBe('**Rehearsal PASS · Execution NO-GO (ospa=0)**');
    expect(md).toContain('Gate `ospa` on the source: 0 (minimum 1, closed) → NO-GO.');
    expect(md).toContain('database `directus`');
  });

  it('walks the stages in order with their tiers and figures', () => {
    const a = md.indexOf('## Stage A — Gate closed');
    const b = md.indexOf('## Stage B — Gate opened on the clone');
    const c = md.indexOf('## Stage C — Rollback, then re-apply');
    expect(a).toBeGreaterThan(0);
    expect(b).toBeGreaterThan(a);
    expect(c).toBeGreaterThan(b);
    expect(md).toContain('| 1 | Base axis substrate | structure | Applied | 14 ms | tables +6, views +5 |');
    expect(md).toContain('| 2 | Ownership seed | data | Applied | 120 ms | — | `axis.ownership` +30 | `owner_gap` 210 → 0');
    expect(md).toContain('`containment_gap` 35 → 0');
    expect(md).toContain('`axis.reconcile_decision` +31, `axis.topic` ~4, `axis.axis` ~1');
    expect(md).toContain('`projection_gap` 65 → 0');
    expect(md).toContain('`axis.containment_assignment` −35');
    expect(md).toContain('`axis_tables` 9 → 8');
    expect(md).toContain('views changed: `axis.v_governed_collection`');
  });

  it('shows stop-gates, errors with SQLSTATE and file:line, checks, rollback proof', () => {
    expect(md).toContain("- Tier 2 Ownership seed: ✓ the file's own guard aborted it; ✓ clone fingerprint unchanged");
    expect(md).toContain('stopped by `P0001`: tier 2 is gated');
    expect(md).toContain('at `tiers/02_ownership_seed.sql:12:5`');
    expect(md).toContain('post-condition ✗ `critical = 0` (value 30)');
    expect(md).toContain('- ✓ honest gaps — owner_gap 210, containment_gap 35, projection_gap 65');
    expect(md).toContain('- Rollback tier 99 reverted tiers 6, 4, 3.');
    expect(md).toContain("- ✓ the clone's fingerprint after rollback equals a clean apply of the kept tiers");
    expect(md).toMatch(/## Verdict\n\n\*\*Rehearsal PASS · Execution NO-GO \(ospa=0\)\*\*[\s\S]*Failures: none\.\n$/);
  });

  it('lists failures, missed expectations and fingerprint differences of a failed rehearsal', () => {
    const failed = renderMarkdown(failedEvidence());
    expect(failed).toContain('**Rehearsal FAIL · Execution NO-GO (rehearsal failed)**');
    expect(failed).toContain('- ✗ rows axis.ownership: expected +30, measured +27');
    expect(failed).toContain('  - objects that differ: `axis.v_owner_gap`');
    expect(failed).toContain('- stage B tier 2: post-condition owner_gap = 0 failed (3)');
    expect(failed).toContain("- ✗ the clone's fingerprint after rollback differs from a clean apply of the kept tiers");
  });

  it('keeps tables intact and markup inert whatever the database says', () => {
    const hostile = renderMarkdown(hostileEvidence());
    const lines = hostile.split('\n');
    for (const [i, line] of lines.entries()) {
      if (line.startsWith('|') && !line.startsWith('|---')) {
        const header = lines.slice(0, i + 1).reverse().find((l) => l.startsWith('| Tier'))!;
        expect(cellSeparators(line), line.slice(0, 120)).toBe(cellSeparators(header));
      }
    }
    // code spans and blocks show their content literally; everywhere else `<` must be escaped
    expect(outsideCode(hostile)).not.toMatch(/(?<!\\)</);
    expect(hostile).toContain('`<script>window.__pwned=2</script>`');
    expect(lines).not.toContain('# not a heading');
    expect(hostile).toContain('\\<img src=x onerror="window.\\_\\_pwned=1"\\>');
    expect(hostile).toContain(HOSTILE.long.slice(0, 100));
  });

  it('renders a rehearsal without a preflight, a rollback or tiers', () => {
    const e = axisGovernanceEvidence();
    e.source.preflight = null;
    e.source.gate = null;
    e.rollback = null;
    e.stages[2]!.tiers = [];
    const text = renderMarkdown(e);
    expect(text).not.toContain('## Preflight');
    expect(text).toContain('No rollback was rehearsed.');
    expect(text).toContain('_No tiers ran in this stage._');
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
    expect(page).not.toMatch(/(?:src|href)="(?!data:)/);
    expect(page).not.toMatch(/https?:\/\//);
  });

  it('shows the verdict, the timeline, the figures and a chart per metric', () => {
    expect(page).toContain('<span class="badge pass">Rehearsal PASS</span>');
    expect(page).toContain('<span class="badge no-go">Execution NO-GO <small>ospa=0</small></span>');
    expect(page).toMatch(/<li class="cell st-blocked" title="Tier 2 Ownership seed: Blocked/);
    expect(page).toMatch(/<li class="cell st-reverted" title="Tier 6 /);
    expect(page).toContain('<code>owner_gap</code> <span class="nw">210 → 0</span>');
    expect(page).toContain('<code>axis.ownership</code> <span class="nw">+30</span>');
    const run = metricRun(axisGovernanceEvidence());
    expect(run.series.map((s) => s.name)).toEqual(['ospa', 'axis_tables', 'owner_gap', 'containment_gap', 'projection_gap', 'divergent', 'critical', 'emittable']);
    expect(run.series.find((s) => s.name === 'owner_gap')!.points.map((p) => p.value)).toEqual([null, 210, 0, 0]);
    expect(page.match(/<svg class="chart"/g)).toHaveLength(run.series.length);
    expect(page).toContain('aria-label="owner_gap: n/a → 210 → 0 → 0"');
  });

  it('escapes every piece of database text', () => {
    const hostile = renderHtml(hostileEvidence());
    expect(hostile).not.toMatch(/<img|<script|<b>/i);
    expect(hostile).toContain('&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;');
    expect(hostile).toContain('&lt;script&gt;window.__pwned=2&lt;/script&gt;');
    expect(hostile).toContain('it&#39;s &quot;quoted&quot; &amp; &lt;b&gt;bold&lt;/b&gt;');
    expect(hostile).toContain(HOSTILE.unicode);
    // data never opens a tag nor leaves its attribute's quotes, so no event-handler attribute exists
    expect(hostile.replace(/"[^"]*"/g, '""')).not.toMatch(/<[a-z][^>]*\son[a-z]+\s*=/i);
  });

  it('marks a failed rehearsal red and lists its failures', () => {
    const failed = renderHtml(failedEvidence());
    expect(failed).toContain('<span class="badge fail">Rehearsal FAIL</span>');
    expect(failed).toContain('<li class="long">rollback: fingerprint differs from a clean apply of the kept tiers</li>');
    expect(failed).toContain('objects that differ: <code>axis.v_owner_gap</code>');
    expect(failed).toContain('Expectations not met (1 of 19)');
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
    const maps = new Set(['files', 'objects', 'rows', 'metrics']);
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
