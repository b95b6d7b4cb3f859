import { isAbsolute, join, relative, resolve } from 'node:path';
import { openDb, parseTarget } from '../../db/open-db.js';
import { parseDuration } from '../../parse-duration.js';
import type { CloneSource, SnapshotOptions } from '../../rehearsal/clone.js';
import type { SourceInfo } from '../../rehearsal/rehearse.js';
import { UsageError } from '../../errors.js';
import { withLiveStatus } from '../../live-status.js';
import { redactUrl, scrubValue } from '../../secrets.js';
import { singleLine } from '../../text.js';
import { colourLine, interruptible, planOf } from '../common.js';
import type { Outcome } from '../exit-code.js';
import type { Output } from '../output.js';
import { prepareOutDir, writeFilesSafely } from '../write-file.js';
import { renderTierLine, renderTierStart } from '../../report/render-terminal.js';
import { isExpectedOutcome } from '../../report/format.js';

export interface RehearseOpts {
  plan?: string;
  source?: string;
  dump?: string;
  database?: string;
  scratch?: string;
  out?: string;
  keep?: boolean;
  /** `--reuse-snapshot AGE` */
  reuseSnapshot?: string;
  fresh?: boolean;
  /** false with `--no-snapshot` (commander's negated flag; true otherwise) */
  snapshot?: boolean;
  requireGo?: boolean;
  scale?: string;
  json?: boolean;
}

/**
 * `tiergate rehearse [--plan DIR] [--source URL --scratch URL [--reuse-snapshot AGE | --fresh | --no-snapshot]
 * | --source pglite:DIR | --dump FILE [--database NAME]] [--out DIR] [--keep] [--require-go] [--json]`:
 * the whole rollout on a clone, evidence in --out, the verdict last. A
 * PostgreSQL source's copy is kept on the scratch server as a snapshot that
 * a later `--reuse-snapshot AGE` copies instead of dumping the source again.
 */
export async function rehearseCommand(opts: RehearseOpts, out: Output): Promise<Outcome> {
  const plan = await planOf(opts);
  const { source, info } = await resolveSource(opts, plan.database);
  const outDir = resolve(opts.out ?? './tiergate-evidence');
  prepareOutDir(outDir);
  const { rehearse } = await import('../../rehearsal/rehearse.js');
  // the reports' renderers (and the evidence schema) load while the rehearsal waits on its databases: once it
  // says what it does first (a dump, a copy, the sample being built), not at its start, where compiling them
  // (~100 ms of this thread) held up its first queries
  let reports: Promise<typeof import('../../report/index.js')> | null = null;
  const loadReports = () => {
    reports ??= import('../../report/index.js');
    reports.catch(() => undefined);
    return reports;
  };

  out.line(`rehearse ${plan.name} (${plan.tiers.length} tiers) on ${info.location}`);
  // the clones are dropped while the evidence is written; a clone left behind is an error all the same
  let cleanup: Promise<void> = Promise.resolve();
  let dropSent: Promise<void> = Promise.resolve();
  // building and copying clones take seconds: a terminal sees them move (out.status), plain output keeps its lines
  const rehearsed = scrubValue(
    await interruptible(out, (signal) =>
      withLiveStatus(
        (text) => out.status(out.paint('dim', `  ${text}`)),
        () =>
          rehearse(plan, source, info, {
            keep: Boolean(opts.keep),
            signal,
            onCleanup: (dropping, sent) => {
              cleanup = dropping;
              dropSent = sent;
            },
            onEvent: (e) => {
              loadReports();
              if (e.type === 'stage') out.line(out.paint('bold', `\nstage ${e.stage} — ${e.title}`));
              else if (e.type === 'progress') out.progress(out.paint('dim', `  ${e.message}`));
              else if (e.type === 'tier-start') out.pending(out.paint('dim', renderTierStart(e.stage, e.tier)));
              else out.replace(colourLine(out, renderTierLine(e.stage, e.result), e.result));
            },
          }),
      ),
    ),
  );

  const { renderHtml, renderJson, renderMarkdown, renderVerdictLine, snapshotLine } = await loadReports();
  // the clones' DROP DATABASE sent first: the server drops them while this thread renders the reports (at 6,500 tables, ~0.3 s each)
  await Promise.race([dropSent, cleanup.catch(() => undefined)]);
  // signed with TIERGATE_EVIDENCE_KEY when it is set (apply --evidence verifies it with the same key)
  const { evidenceKey, signEvidence } = await import('../../evidence/signature.js');
  const key = evidenceKey();
  const evidence = key ? signEvidence(rehearsed, key) : rehearsed;
  try {
    await writeFilesSafely(outDir, { 'evidence.json': renderJson(evidence), 'evidence.md': renderMarkdown(evidence), 'evidence.html': renderHtml(evidence) });
  } catch (e) {
    // (the clones are dropped before the error is told)
    await cleanup.catch(() => undefined);
    throw e;
  }
  await cleanup;
  const passed = evidence.verdict.rehearsal === 'PASS';
  const go = evidence.verdict.execution === 'GO';
  // what to do next, the evidence named where it was written (the file's own verdict names it by its file name)
  const next = evidence.verdict.next?.replace('--evidence evidence.json', `--evidence ${shownPath(join(outDir, 'evidence.json'))}`);
  // ok exactly when the exit code is 0 (--require-go: a NO-GO is exit 3); the source's kind and when the evidence was written, for a script
  out.result({
    ok: passed && (go || !opts.requireGo),
    evidence: join(outDir, 'evidence.json'),
    createdAt: evidence.createdAt,
    verdict: { ...evidence.verdict, next },
    source: { kind: evidence.source.kind, ...evidence.source.identity },
    snapshotAt: evidence.source.snapshotAt,
    snapshot: evidence.clone.snapshot ?? null,
  });

  out.line('');
  for (const f of evidence.verdict.failures) out.line(out.paint('red', `  ✗ ${singleLine(f)}`));
  // what the plan says to do about a failure (its SQL's HINT), once each: a tier's own advice beats "fix what failed"
  const hints = new Set(evidence.stages.flatMap((s) => s.tiers.filter((t) => t.status === 'Failed' && !isExpectedOutcome(t) && t.error?.hint).map((t) => `tier ${t.id}: ${singleLine(t.error!.hint!)}`)));
  for (const h of hints) out.line(out.paint('red', `  hint, ${h}`));
  if (opts.keep) out.line(`clone kept: ${evidence.clone.location}`);
  if (evidence.clone.snapshot) {
    const snap = evidence.clone.snapshot.database;
    // its ready copy for the next rehearsal (the module is loaded already: rehearse imports it)
    const spare = (await import('../../rehearsal/clone.js')).spareName(snap);
    out.line(`${snapshotLine(evidence)}; kept on the scratch server, its copy for the next rehearsal (${spare}) being made there (drop database ${snap}; drop database ${spare}; removes them)`);
  }
  out.line(`evidence: ${join(outDir, 'evidence.json')}, evidence.md, evidence.html (${evidence.signature ? `signed, key ${evidence.signature.keyId}` : 'unsigned: set TIERGATE_EVIDENCE_KEY to sign it'})`);
  const colour = !passed ? 'red' : go ? 'green' : 'yellow';
  // the verdict is the last line (scripts and `npm start` read it there); what to do next comes just before it
  // (the evidence file where it was written: the command works as printed from here)
  if (next) out.line(out.paint(colour, `next: ${next}`));
  out.line(out.paint(colour, renderVerdictLine(evidence)));
  if (!passed) return 'failed';
  if (opts.requireGo && !go) return 'no-go';
  return 'ok';
}

async function resolveSource(opts: RehearseOpts, planDatabase: string | null | undefined): Promise<{ source: CloneSource; info: SourceInfo }> {
  const src = opts.source ?? null;
  const dump = opts.dump ?? null;
  const scratch = opts.scratch ?? null;
  if (src && dump) throw new UsageError('pass either --source URL or --dump FILE, not both');
  if (opts.database && !dump) throw new UsageError('--database names the database a --dump was taken from: it is only used with --dump');
  const snapshot = snapshotOptions(opts);
  const postgresSource = Boolean(src && parseTarget(src).kind === 'postgres');
  if (snapshot.flag && !postgresSource) {
    const what = src ? 'a PGlite source is copied as a folder' : dump ? 'a --dump is loaded as it is' : 'the embedded sample is built in memory';
    throw new UsageError(`${snapshot.flag} is for a PostgreSQL --source with --scratch, whose copy is kept on the scratch server as a snapshot: ${what}, there is no snapshot`);
  }
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
    // a --scratch that is no server's URL: refused before the rehearsal says it begins
    if (parseTarget(scratch).kind !== 'postgres') throw new UsageError(`--scratch ${redactUrl(scratch)}: give a postgres:// URL of a server where tiergate may create (and drop) the clone database`);
    return {
      source: { kind: 'postgres', url: src, scratchUrl: scratch, snapshot: snapshot.options },
      info: { kind: 'postgres', location: redactUrl(src), openSource: () => openReadOnly(src) },
    };
  }
  if (scratch) throw new UsageError('--scratch is only used with --source URL');
  if (dump) {
    // (the plan's own database unless --database names the one the dump was taken from; directus for a plan that names none)
    const database = opts.database ?? (planDatabase || 'directus');
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

/**
 * The snapshot flags of a PostgreSQL source (`--reuse-snapshot AGE`,
 * `--fresh`, `--no-snapshot`): the options for the clone provider, and the
 * first flag given (they mean nothing for another source). Contradictions
 * are usage errors.
 */
function snapshotOptions(opts: RehearseOpts): { options: SnapshotOptions; flag: string | null } {
  const given = [opts.reuseSnapshot !== undefined ? '--reuse-snapshot' : null, opts.fresh ? '--fresh' : null, opts.snapshot === false ? '--no-snapshot' : null].filter(
    (f): f is string => f !== null,
  );
  if (given.length > 1) {
    const why = opts.snapshot === false ? 'without a snapshot there is nothing to reuse, and every rehearsal dumps the source' : '--fresh dumps the source afresh, --reuse-snapshot copies a snapshot instead';
    throw new UsageError(`${given.join(' and ')} contradict each other (${why}): pass one`);
  }
  let reuseMs: number | undefined;
  if (opts.reuseSnapshot !== undefined) {
    const ms = parseDuration(opts.reuseSnapshot);
    if (ms === null || ms <= 0) throw new UsageError(`--reuse-snapshot takes the oldest snapshot age to reuse, with its unit, such as 30m, 2h or 1d (got '${opts.reuseSnapshot}')`);
    reuseMs = ms;
  }
  return {
    options: { keep: opts.snapshot !== false, ...(reuseMs !== undefined ? { reuseMs } : {}), ...(opts.fresh ? { fresh: true } : {}) },
    flag: given[0] ?? null,
  };
}

/** The source is only ever read: every transaction of this session is READ ONLY. */
async function openReadOnly(url: string) {
  const db = await openDb(url, { applicationName: 'tiergate rehearse (source, read-only)' });
  await db.exec('set session characteristics as transaction read only');
  return db;
}

/** `path` as the user can type it from here: relative to the working directory when under it, quoted when it needs to be. */
function shownPath(path: string): string {
  const rel = relative(process.cwd(), resolve(path));
  const shown = rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : resolve(path);
  return /^[\w./@:+-]+$/.test(shown) ? shown : `'${shown.replace(/'/g, `'\\''`)}'`;
}
