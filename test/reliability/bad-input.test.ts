import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { badInputCorpus, checkBadInput, writeCorpusFiles } from './corpus.js';
import { fingerprintOf, runCli, TEMPLATES, trialDb } from './harness.js';
import { Tally } from './results.js';
import { campaignSize } from './size.js';

/**
 * Bad input: every case of the corpus (≥ 100 malformed plans, SQL files the
 * server rejects, URLs and option combinations) exits 2 (1 for SQL the server
 * rejects) with a message naming the problem and its place, prints no stack
 * trace, and leaves the target's fingerprint unchanged. Two lanes, each with
 * its own target, run side by side.
 */
describe('bad input corpus', () => {
  it('every case: the right exit code, a message with its place, no stack trace, no change', async () => {
    const all = badInputCorpus();
    if (!process.env.TIERGATE_RELIABILITY_ONLY) expect(all.length).toBeGreaterThanOrEqual(100);
    // ci: every other case (each kind still represented); full: the whole corpus
    const corpus = campaignSize() === 'full' ? all : all.filter((_, i) => i % 2 === 0);
    const dir = mkdtempSync(join(tmpdir(), 'tiergate-corpus-'));
    writeCorpusFiles(dir);
    const tally = new Tally('bad input: corpus of plans, SQL, URLs, options');
    const byKind = new Map<string, number>();
    const lanes = 2;
    try {
      await Promise.all(
        Array.from({ length: lanes }, async (_, lane) => {
          const db = await trialDb(TEMPLATES.s1, 'corpus');
          try {
            for (let i = lane; i < corpus.length; i += lanes) {
              const c = corpus[i]!;
              const problems = await checkBadInput(c, { target: db.url, dir, run: (args) => runCli(args, { timeoutMs: 60_000 }), fingerprint: () => fingerprintOf(db.url, 'database') });
              tally.add(c.name, problems);
              const kind = c.name.split(':')[0]!;
              byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
            }
          } finally {
            await db.drop();
          }
        }),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    tally.record(`${corpus.length} of ${all.length} cases (${[...byKind.entries()].map(([k, n]) => `${n} ${k}`).join(', ')}); exit code, message with its place, no stack trace, fingerprint unchanged`);
    expect(tally.reasons).toEqual([]);
  });
});
