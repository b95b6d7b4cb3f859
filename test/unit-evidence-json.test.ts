/**
 * evidence.json read back (src/evidence/evidence-json.ts): what is not
 * tiergate's evidence is refused with what is wrong, and strict parsing (what
 * `apply --evidence` binds to) refuses any field this tiergate does not know.
 */
import { describe, expect, it } from 'vitest';
import { EvidenceError } from '../src/evidence/evidence-error.js';
import { evidenceText, nestingDepth, parseEvidence, renderJson } from '../src/evidence/evidence-json.js';
import type { Evidence } from '../src/evidence/types.js';
import { axisGovernanceEvidence } from './fixtures/evidence-sample.js';

/** The EvidenceError parsing `text` throws. */
function refusal(text: string, options: { strict?: boolean } = {}): EvidenceError {
  try {
    parseEvidence(text, 'in/evidence.json', options);
  } catch (e) {
    expect(e).toBeInstanceOf(EvidenceError);
    return e as EvidenceError;
  }
  throw new Error('parseEvidence accepted it');
}

const plain = () => JSON.parse(renderJson(axisGovernanceEvidence())) as Record<string, unknown> & Evidence;

describe('parseEvidence', () => {
  it('reads what renderJson writes, strict or not', () => {
    const text = renderJson(axisGovernanceEvidence());
    expect(parseEvidence(text)).toEqual(axisGovernanceEvidence());
    expect(parseEvidence(text, 'x', { strict: true })).toEqual(axisGovernanceEvidence());
  });

  it('refuses a file nested deeper than any evidence, before anything walks it (100,000 levels overflowed the stack)', () => {
    expect(refusal(`${'['.repeat(100_000)}${']'.repeat(100_000)}`).message).toBe("in/evidence.json: nested more than 64 levels deep: tiergate's evidence.json is never nested that deep");
    // evidence with one field 50,000 levels deep (built as text: JSON.stringify itself overflows on it)
    const deep = `${renderJson(axisGovernanceEvidence()).trimEnd().slice(0, -1)}, "extra": ${'{"x": '.repeat(50_000)}{}${'}'.repeat(50_000)}}`;
    expect(refusal(deep).message).toMatch(/nested more than 64 levels deep/);
    // brackets inside strings are text
    expect(nestingDepth(JSON.stringify({ a: '[[[[{{{{', b: ['\\"[', { c: 1 }] }), 64)).toBe(3);
    expect(nestingDepth(renderJson(axisGovernanceEvidence()), 64)).toBeLessThan(20);
  });

  it('reads an evidence file as UTF-8 without a byte-order mark, as tiergate writes it', () => {
    const text = renderJson(axisGovernanceEvidence());
    expect(evidenceText(Buffer.from(text), 'x')).toBe(text);
    expect(() => evidenceText(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]), 'in/evidence.json')).toThrow(/^in\/evidence\.json: begins with a UTF-8 byte-order mark/);
    const bad = Buffer.from(text);
    bad[text.indexOf('Base axis substrate') + 2] = 0xff;
    expect(() => evidenceText(bad, 'in/evidence.json')).toThrow(/^in\/evidence\.json: is not valid UTF-8/);
  });

  it('names the origin, "evidence" by default', () => {
    expect(() => parseEvidence('nope')).toThrow(/^evidence: not valid JSON \(.*\); expected tiergate's evidence\.json$/);
    expect(refusal('').message).toMatch(/^in\/evidence\.json: not valid JSON/);
    expect(refusal('').issues).toEqual([]);
  });

  it('says what it found instead of tiergate evidence', () => {
    const found = (text: string) => refusal(text).message.replace(/^.*\(found (.*)\)$/s, '$1');
    expect(found('null')).toBe('null');
    expect(found('[]')).toBe('an array');
    expect(found('42')).toBe('a number');
    expect(found('"evidence"')).toBe('a string');
    expect(found('{}')).toBe('no "tool" field');
    expect(found('{"tool": "tiergate"}')).toBe('"tool": "tiergate"');
    expect(found('{"tool": null}')).toBe('"tool": null');
    expect(found('{"tool": ["tiergate"]}')).toBe('"tool": ["tiergate"]');
    expect(found('{"tool": {"name": "Tiergate"}}')).toBe('"tool": {"name":"Tiergate"}');
    expect(found(`{"tool": {"name": "x", "pad": "${'p'.repeat(200)}"}}`)).toBe(`"tool": ${`{"name":"x","pad":"${'p'.repeat(200)}"}`.slice(0, 80)}`);
    expect(refusal('[]').message).toBe('in/evidence.json: not tiergate evidence: expected a JSON object with "tool": { "name": "tiergate" } (found an array)');
  });

  it('refuses another schemaVersion, saying which tiergate wrote it', () => {
    const e = plain();
    delete (e as { schemaVersion?: unknown }).schemaVersion;
    (e.tool as { version?: string }).version = undefined;
    expect(refusal(JSON.stringify(e)).message).toBe(
      'in/evidence.json: unsupported evidence schemaVersion null (written by tiergate ?); this tiergate reads schemaVersion 2. ' +
        'Re-run the rehearsal with this version, or read it with the version that wrote it.',
    );
    (e as { schemaVersion: unknown }).schemaVersion = '2';
    expect(refusal(JSON.stringify(e)).message).toMatch(/^in\/evidence\.json: unsupported evidence schemaVersion "2" \(written by tiergate \?\)/);
  });

  it('lists each field of the wrong shape with its path, and counts them', () => {
    const e = plain();
    (e.stages[2]!.tiers[1]! as { durationMs: unknown }).durationMs = -1;
    const one = refusal(JSON.stringify(e));
    expect(one.issues.map((i) => i.path)).toEqual(['stages[2].tiers[1].durationMs']);
    expect(one.message).toMatch(/^in\/evidence\.json: not valid tiergate evidence \(1 problem\):\n {2}- stages\[2\]\.tiers\[1\]\.durationMs: /);
    (e as { createdAt: unknown }).createdAt = 5;
    const two = refusal(JSON.stringify(e));
    expect(two.issues.map((i) => i.path).sort()).toEqual(['createdAt', 'stages[2].tiers[1].durationMs']);
    expect(two.message).toMatch(/\(2 problems\):/);
  });

  it('refuses keys that JavaScript treats specially, wherever they are, naming at most five', () => {
    const text = renderJson(axisGovernanceEvidence());
    const withKey = (key: string) => text.replace('"durationMs": 4215', `"durationMs": 4215, "${key}": {}`);
    for (const key of ['__proto__', 'constructor', 'prototype']) {
      const err = refusal(withKey(key));
      expect(err.issues).toEqual([{ path: key, message: 'a key no JSON that tiergate writes holds (__proto__, constructor, prototype)' }]);
      expect(err.message).toMatch(/^in\/evidence\.json: refused:\n {2}- /);
    }
    const nested = text.replace('"reverted": [', '"x": [{"a": {"__proto__": 1}}], "reverted": [');
    expect(refusal(nested).issues.map((i) => i.path)).toEqual(['rollback.x[0].a.__proto__']);
    const many = text.replace('"durationMs": 4215', `"durationMs": 4215, "m": [${Array.from({ length: 7 }, () => '{"constructor": 1}').join(', ')}]`);
    expect(refusal(many).issues.map((i) => i.path)).toEqual(['m[0].constructor', 'm[1].constructor', 'm[2].constructor', 'm[3].constructor', 'm[4].constructor']);
    // an ordinary key holding such a word is fine
    expect(() => parseEvidence(text.replace('"durationMs": 4215', '"durationMs": 4215, "note": "constructor"'))).not.toThrow();
  });

  it('drops unknown fields, unless strict: then each is refused with its path', () => {
    const e = plain();
    e.addedLater = 1;
    (e.stages[0]!.tiers[0]! as unknown as Record<string, unknown>).extra = true;
    (e.source.identity as unknown as Record<string, unknown>).port = 5432;
    ((e.stages[1]!.tiers[0]!.delta!.objects as Record<string, unknown>).tables as unknown) = { added: [], removed: [], changed: [], moved: [] };
    const loose = parseEvidence(JSON.stringify(e));
    expect(loose).not.toHaveProperty('addedLater');
    expect(loose.stages[0]!.tiers[0]).not.toHaveProperty('extra');
    const strict = refusal(JSON.stringify(e), { strict: true });
    expect(strict.message).toMatch(/not valid tiergate evidence \(4 problems\)/);
    expect(strict.issues.map((i) => i.path).sort()).toEqual(['', 'source.identity', 'stages[0].tiers[0]', 'stages[1].tiers[0].delta.objects.tables'].sort());
    expect(strict.issues.every((i) => /Unrecognized key/i.test(i.message))).toBe(true);
  });

  it('keeps object kinds optional and maps open when strict', () => {
    const e = plain();
    // a delta with one object kind only, and rows and metrics of any name
    e.stages[1]!.tiers[0]!.delta!.objects = { views: { added: ['a.v'], removed: [], changed: [] } };
    e.stages[1]!.tiers[0]!.delta!.rows = { 'any.table': { added: 1, removed: 0, changed: 0 } };
    expect(parseEvidence(JSON.stringify(e), 'x', { strict: true }).stages[1]!.tiers[0]!.delta!.objects).toEqual({ views: { added: ['a.v'], removed: [], changed: [] } });
    // an unknown object kind is not one
    (e.stages[1]!.tiers[0]!.delta!.objects as Record<string, unknown>).widgets = { added: [], removed: [], changed: [] };
    expect(refusal(JSON.stringify(e), { strict: true }).issues.length).toBeGreaterThan(0);
  });

  it('checks optional and nullable fields strictly too', () => {
    const e = plain();
    (e.rollback as unknown as Record<string, unknown>).keptDiff = { objects: [], tables: [], extra: 1 };
    (e.clone.identity as unknown as Record<string, unknown>).extra = 1;
    const strict = refusal(JSON.stringify(e), { strict: true });
    expect(strict.issues.map((i) => i.path).sort()).toEqual(['clone.identity', 'rollback.keptDiff']);
    expect(() => parseEvidence(JSON.stringify(e))).not.toThrow();
  });
});

describe('renderJson', () => {
  it('refuses to write evidence it could not read back, naming each field', () => {
    const e = axisGovernanceEvidence();
    (e as { createdAt: unknown }).createdAt = 7;
    let err: unknown;
    try {
      renderJson(e);
    } catch (x) {
      err = x;
    }
    expect(err).toBeInstanceOf(EvidenceError);
    expect((err as EvidenceError).origin).toBe('evidence');
    expect((err as EvidenceError).issues.map((i) => i.path)).toEqual(['createdAt']);
    expect((err as EvidenceError).message).toMatch(/^evidence: refusing to write evidence that does not match its schema:\n {2}- createdAt: /);
  });
});
