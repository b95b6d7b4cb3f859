import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { openDb } from '../db/open-db.js';
import { UsageError, type ExitCode } from '../errors.js';
import { plan as planOf } from './commands.js';
import type { CloneSource } from '../rehearsal/clone.js';
import type { SourceInfo } from '../rehearsal/rehearse.js';
import { redactUrl, scrubValue } from '../secrets.js';
import type { Output } from './output.js';

/** `tiergate rehearse [--plan DIR] [--source URL --scratch URL | --dump FILE] [--out DIR] [--keep] [--require-go] [--json]` */
export async function rehearseCommand(opts: Record<string, unknown>, out: Output): Promise<ExitCode> {
  const plan = await planOf(opts);
  const { source, info } = resolveSource(opts);
  const outDir = resolve(String(opts.out ?? './tiergate-evidence'));
  const { rehearse } = await import('../rehearsal/rehearse.js');
  const { renderHtml, renderJson, renderMarkdown, renderTierLine, renderVerdictLine } = await import('../report/index.js');

  out.line(`rehearse ${plan.name} (${plan.tiers.length} tiers) on ${info.location}`);
  const evidence = scrubValue(
    await rehearse(plan, source, info, {
      keep: Boolean(opts.keep),
      onEvent: (e) => {
        if (e.type === 'stage') out.line(out.paint('bold', `\nstage ${e.stage} — ${e.title}`));
        else if (e.type === 'progress') out.line(out.paint('dim', `  ${e.message}`));
        else if (e.type === 'tier-start') out.pending(out.paint('dim', `${e.stage}${String(e.tier.id).padStart(3)}  ${e.tier.name} …`));
        else out.replace(renderTierLine(e.stage, e.result));
      },
    }),
  );

  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'evidence.json'), renderJson(evidence));
  writeFileSync(join(outDir, 'evidence.md'), renderMarkdown(evidence));
  writeFileSync(join(outDir, 'evidence.html'), renderHtml(evidence));
  out.result({ ok: evidence.verdict.rehearsal === 'PASS', evidence: join(outDir, 'evidence.json'), verdict: evidence.verdict });

  out.line('');
  for (const f of evidence.verdict.failures) out.line(out.paint('red', `  ✗ ${f}`));
  if (opts.keep) out.line(`clone kept: ${evidence.clone.location}`);
  out.line(`evidence: ${join(outDir, 'evidence.json')}, evidence.md, evidence.html`);
  const verdict = renderVerdictLine(evidence);
  out.line(out.paint(evidence.verdict.rehearsal === 'PASS' ? 'green' : 'red', verdict));
  if (evidence.verdict.rehearsal !== 'PASS') return 1;
  if (opts.requireGo && evidence.verdict.execution !== 'GO') return 3;
  return 0;
}

function resolveSource(opts: Record<string, unknown>): { source: CloneSource; info: SourceInfo } {
  const src = typeof opts.source === 'string' ? opts.source : null;
  const dump = typeof opts.dump === 'string' ? opts.dump : null;
  const scratch = typeof opts.scratch === 'string' ? opts.scratch : null;
  if (src && dump) throw new UsageError('pass either --source URL or --dump FILE, not both');
  if (src) {
    if (!scratch) throw new UsageError('--source needs --scratch URL: a server where tiergate may create (and drop) the clone database; the source itself is only read');
    return {
      source: { kind: 'postgres', url: src, scratchUrl: scratch },
      info: { kind: 'postgres', location: redactUrl(src), openSource: () => openReadOnly(src) },
    };
  }
  if (scratch) throw new UsageError('--scratch is only used with --source URL');
  if (dump) return { source: { kind: 'dump', file: dump }, info: { kind: 'dump', location: dump } };
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
