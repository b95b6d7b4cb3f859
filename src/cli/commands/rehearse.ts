import { join, resolve } from 'node:path';
import { openDb, parseTarget } from '../../db/open-db.js';
import type { CloneSource } from '../../rehearsal/clone.js';
import type { SourceInfo } from '../../rehearsal/rehearse.js';
import { UsageError } from '../../errors.js';
import { withLiveStatus } from '../../live-status.js';
import { redactUrl, scrubValue } from '../../secrets.js';
import { colourLine, interruptible, planOf } from '../common.js';
import type { Outcome } from '../exit-code.js';
import type { Output } from '../output.js';
import { prepareOutDir, writeFilesSafely } from '../write-file.js';

export interface RehearseOpts {
  plan?: string;
  source?: string;
  dump?: string;
  database?: string;
  scratch?: string;
  out?: string;
  keep?: boolean;
  requireGo?: boolean;
  scale?: string;
  json?: boolean;
}

/**
 * `tiergate rehearse [--plan DIR] [--source URL --scratch URL | --source pglite:DIR | --dump FILE [--database NAME]]
 * [--out DIR] [--keep] [--require-go] [--json]`: the whole rollout on a
 * clone, evidence in --out, the verdict last.
 */
export async function rehearseCommand(opts: RehearseOpts, out: Output): Promise<Outcome> {
  const plan = await planOf(opts);
  const { source, info } = await resolveSource(opts);
  const outDir = resolve(opts.out ?? './tiergate-evidence');
  prepareOutDir(outDir);
  const { rehearse } = await import('../../rehearsal/rehearse.js');
  const { renderHtml, renderJson, renderMarkdown, renderTierLine, renderTierStart, renderVerdictLine } = await import('../../report/index.js');

  out.line(`rehearse ${plan.name} (${plan.tiers.length} tiers) on ${info.location}`);
  // building and copying clones take seconds: a terminal sees them move (out.status), plain output keeps its lines
  const rehearsed = scrubValue(
    await interruptible(out, (signal) =>
      withLiveStatus(
        (text) => out.status(out.paint('dim', `  ${text}`)),
        () =>
          rehearse(plan, source, info, {
            keep: Boolean(opts.keep),
            signal,
            onEvent: (e) => {
              if (e.type === 'stage') out.line(out.paint('bold', `\nstage ${e.stage} — ${e.title}`));
              else if (e.type === 'progress') out.line(out.paint('dim', `  ${e.message}`));
              else if (e.type === 'tier-start') out.pending(out.paint('dim', renderTierStart(e.stage, e.tier)));
              else out.replace(colourLine(out, renderTierLine(e.stage, e.result), e.result));
            },
          }),
      ),
    ),
  );

  // signed with TIERGATE_EVIDENCE_KEY when it is set (apply --evidence verifies it with the same key)
  const { evidenceKey, signEvidence } = await import('../../evidence/signature.js');
  const key = evidenceKey();
  const evidence = key ? signEvidence(rehearsed, key) : rehearsed;
  await writeFilesSafely(outDir, { 'evidence.json': renderJson(evidence), 'evidence.md': renderMarkdown(evidence), 'evidence.html': renderHtml(evidence) });
  const passed = evidence.verdict.rehearsal === 'PASS';
  out.result({ ok: passed, evidence: join(outDir, 'evidence.json'), verdict: evidence.verdict, source: evidence.source.identity, snapshotAt: evidence.source.snapshotAt });

  out.line('');
  for (const f of evidence.verdict.failures) out.line(out.paint('red', `  ✗ ${f}`));
  if (opts.keep) out.line(`clone kept: ${evidence.clone.location}`);
  out.line(`evidence: ${join(outDir, 'evidence.json')}, evidence.md, evidence.html (${evidence.signature ? `signed, key ${evidence.signature.keyId}` : 'unsigned: set TIERGATE_EVIDENCE_KEY to sign it'})`);
  const go = evidence.verdict.execution === 'GO';
  const colour = !passed ? 'red' : go ? 'green' : 'yellow';
  // the verdict is the last line (scripts and `npm start` read it there); what to do next comes just before it
  if (evidence.verdict.next) out.line(out.paint(colour, `next: ${evidence.verdict.next}`));
  out.line(out.paint(colour, renderVerdictLine(evidence)));
  if (!passed) return 'failed';
  if (opts.requireGo && !go) return 'no-go';
  return 'ok';
}

async function resolveSource(opts: RehearseOpts): Promise<{ source: CloneSource; info: SourceInfo }> {
  const src = opts.source ?? null;
  const dump = opts.dump ?? null;
  const scratch = opts.scratch ?? null;
  if (src && dump) throw new UsageError('pass either --source URL or --dump FILE, not both');
  if (opts.database && !dump) throw new UsageError('--database names the database a --dump was taken from: it is only used with --dump');
  if (src) {
    const target = parseTarget(src);
    if (target.kind === 'pglite') {
      if (scratch) throw new UsageError('--scratch is for a PostgreSQL --source: a PGlite source is copied as a folder');
      if (!target.dir) throw new UsageError(`--source ${src}: an in-memory PGlite database cannot be rehearsed (give a data directory, pglite:DIR)`);
      return {
        source: { kind: 'pglite', url: src },
        info: { kind: 'pglite', location: src, openSource: () => openReadOnly(src) },
      };
    }
    if (!scratch) throw new UsageError('--source needs --scratch URL: a server where tiergate may create (and drop) the clone database; the source itself is only read');
    return {
      source: { kind: 'postgres', url: src, scratchUrl: scratch },
      info: { kind: 'postgres', location: redactUrl(src), openSource: () => openReadOnly(src) },
    };
  }
  if (scratch) throw new UsageError('--scratch is only used with --source URL');
  if (dump) {
    const database = opts.database ?? 'directus';
    const { dumpIdentity } = await import('../../rehearsal/clone-dump.js');
    return { source: { kind: 'dump', file: dump, database }, info: { kind: 'dump', location: dump, identity: dumpIdentity(dump, database) } };
  }
  const scale = Number(opts.scale ?? 1);
  if (!Number.isInteger(scale) || scale < 1 || scale > 1000) throw new UsageError(`--scale must be a whole number from 1 to 1000 (got '${String(opts.scale)}')`);
  return {
    source: { kind: 'pglite-sample', scale },
    info: { kind: 'pglite-sample', location: `the embedded sample Directus clone (PGlite, scale ${scale})` },
  };
}

/** The source is only ever read: every transaction of this session is READ ONLY. */
async function openReadOnly(url: string) {
  const db = await openDb(url, { applicationName: 'tiergate rehearse (source, read-only)' });
  await db.exec('set session characteristics as transaction read only');
  return db;
}
