import { UsageError } from '../../errors.js';
import { readRegularFile } from '../../safe-read.js';
import type { Outcome } from '../exit-code.js';
import type { Output } from '../output.js';
import { writeReportFile } from '../write-file.js';

export interface ReportOpts {
  format?: 'md' | 'html' | 'json';
  out?: string;
  json?: boolean;
}

/**
 * `tiergate report EVIDENCE.json [--format md|html|json] [--out FILE] [--json]`:
 * the evidence rendered again (to standard output, or to FILE). With --json,
 * one object: the verdict and where the report went.
 */
export async function reportCommand(file: string, opts: ReportOpts, out: Output): Promise<Outcome> {
  const { parseEvidence, renderHtml, renderMarkdown, renderJson } = await import('../../report/index.js');
  const bytes = readRegularFile(file, 'evidence');
  if ('reason' in bytes) throw new UsageError(`evidence file '${file}' ${bytes.reason}: pass the evidence.json a rehearsal wrote`);
  const e = parseEvidence(bytes.toString('utf8'), file);
  const format = opts.format ?? 'md';
  const rendered = format === 'html' ? renderHtml(e) : format === 'json' ? renderJson(e) : renderMarkdown(e);
  if (opts.out) {
    await writeReportFile(opts.out, rendered);
    out.line(`wrote ${opts.out}`);
  } else if (!opts.json) process.stdout.write(rendered);
  out.result({ ok: true, evidence: file, format, out: opts.out ?? null, verdict: e.verdict, ...(opts.out ? {} : { report: rendered }) });
  return 'ok';
}
