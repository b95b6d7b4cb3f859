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
 * one object: the verdict and where the report went. Evidence whose
 * signature does not verify with TIERGATE_EVIDENCE_KEY, or whose verdict its
 * own records do not bear out, is refused (exit 2), as apply refuses it; a
 * field this tiergate does not know is rendered and said so.
 */
export async function reportCommand(file: string, opts: ReportOpts, out: Output): Promise<Outcome> {
  const { parseEvidence, renderHtml, renderMarkdown, renderJson } = await import('../../report/index.js');
  const { evidenceText } = await import('../../evidence/evidence-json.js');
  const bytes = readRegularFile(file, 'evidence');
  if ('reason' in bytes) throw new UsageError(`evidence file '${file}' ${bytes.reason}: pass the evidence.json a rehearsal wrote`);
  // its signature checked when TIERGATE_EVIDENCE_KEY is set, and a verdict its own records do not bear out refused: a report is
  // what people read before they approve. A field this tiergate does not know (a newer tiergate's evidence, or an edit) is
  // rendered, and said so on stderr (apply refuses it).
  const text = evidenceText(bytes, file);
  let e: ReturnType<typeof parseEvidence>;
  try {
    e = parseEvidence(text, file, { strict: true });
  } catch (strictError) {
    e = parseEvidence(text, file);
    out.error(`tiergate: note: ${strictError instanceof Error ? strictError.message : String(strictError)} — a newer tiergate's evidence, or an edit: rendered anyway, and apply --evidence would refuse it`);
  }
  const { checkSignature, unfoundedVerdict } = await import('../../rehearsal/bind-evidence.js');
  const { EvidenceRefusedError } = await import('../../errors.js');
  const refuse = (why: string, todo = 'render the evidence.json the rehearsal wrote') => new EvidenceRefusedError(`evidence '${file}' refused: ${why}; nothing was written — ${todo}`);
  checkSignature(e, refuse);
  const unfounded = unfoundedVerdict(e);
  if (unfounded) throw refuse(unfounded);
  const format = opts.format ?? 'md';
  const rendered = format === 'html' ? renderHtml(e) : format === 'json' ? renderJson(e) : renderMarkdown(e);
  // --out -: standard output, as without --out
  const outFile = opts.out === '-' ? undefined : opts.out;
  if (outFile) {
    await writeReportFile(outFile, rendered);
    out.line(`wrote ${outFile}`);
  } else if (!opts.json) process.stdout.write(rendered);
  out.result({ ok: true, evidence: file, format, out: outFile ?? null, verdict: e.verdict, ...(outFile ? {} : { report: rendered }) });
  return 'ok';
}
