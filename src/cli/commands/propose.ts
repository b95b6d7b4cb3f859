import { resolve } from 'node:path';
import { UsageError } from '../../errors.js';
import { readRegularFile, strictUtf8 } from '../../safe-read.js';
import { singleLine } from '../../text.js';
import { confirm, checkedPlanOf, targetOf } from '../common.js';
import type { Outcome } from '../exit-code.js';
import { openTarget } from '../open-target.js';
import type { Output } from '../output.js';
import { writeReportFile } from '../write-file.js';

export interface ProposeOpts {
  target?: string;
  plan?: string;
  out?: string;
  submit?: string | boolean;
  /** with --submit: who drafted the payload (the proposal's author from then on) */
  as?: string;
  yes?: boolean;
  json?: boolean;
}

/**
 * `tiergate propose --target URL [--out payload.json] [--submit [FILE]] [--yes]`:
 * drafts an amended payload (each suggestion with its reason) and writes
 * nothing to the database unless `--submit`: then the draft — or FILE, the
 * draft as the steward edited it — becomes the proposal to approve.
 */
export async function proposeCommand(opts: ProposeOpts, out: Output): Promise<Outcome> {
  const plan = await checkedPlanOf(opts);
  const url = targetOf(opts);
  const fromFile = typeof opts.submit === 'string' ? opts.submit : null;
  if (opts.as !== undefined && (opts.submit === undefined || opts.submit === false)) throw new UsageError('--as names who drafted a payload being submitted: use it with --submit');
  let edited: unknown = undefined;
  if (fromFile !== null) {
    const read = readRegularFile(fromFile, 'payload');
    if ('reason' in read) throw new UsageError(`payload file '${fromFile}' ${read.reason}; nothing was submitted`);
    // (a byte-order mark some editors write is not the payload's: it goes; bytes that are not UTF-8 are refused, not read as U+FFFD)
    const text = strictUtf8(read);
    if (text === null) throw new UsageError(`${fromFile}: not valid UTF-8: save the payload as UTF-8; nothing was submitted`);
    try {
      edited = JSON.parse(text);
    } catch (e) {
      throw new UsageError(`${fromFile}: not JSON (${e instanceof Error ? e.message : String(e)}); nothing was submitted`);
    }
  }
  const { draft, submit } = await import('../../engine/amend.js');
  return openTarget(url, { applicationName: `tiergate propose ${plan.name}` }, async (db): Promise<Outcome> => {
    const d = await draft(db, plan);
    out.line(`propose ${plan.name} on ${db.displayUrl}: ${d.findings.length} finding${d.findings.length === 1 ? '' : 's'}, ${d.suggestions.length} suggestion${d.suggestions.length === 1 ? '' : 's'}`);
    for (const s of d.suggestions) {
      const what = [s.owner ? `owner ${s.owner}` : null, s.topic ? `topic ${s.topic}` : null].filter(Boolean).join(', ');
      out.line(`  ${singleLine(s.action).padEnd(8)} ${singleLine(s.item)}${what ? `: ${singleLine(what)}` : ''} — ${singleLine(s.reason)}`);
    }
    const payload = edited ?? d.payload;
    // --json names the draft's file: a script reads it from there
    const file = opts.out ? resolve(opts.out) : null;
    if (opts.out) {
      await writeReportFile(opts.out, `${JSON.stringify(payload, null, 2)}\n`);
      out.line(`draft written to ${opts.out}: edit it if you wish, then tiergate propose --target <this target> --submit ${opts.out}`);
    }
    if (opts.submit === undefined || opts.submit === false) {
      out.result({ ok: true, ...d, file, submitted: null });
      if (!opts.out) out.line(JSON.stringify(payload, null, 2));
      if (d.suggestions.length) out.line('nothing was written: --submit makes the draft the proposal to approve (its earlier approvals stop counting)');
      return 'ok';
    }
    // the draft as drafted amends nothing: submitting it would only void the current payload's approvals
    if (fromFile === null && d.suggestions.length === 0) {
      throw new UsageError('nothing to amend: the draft has no suggestion, and submitting it would only make the approvals of the current payload stop counting; nothing was submitted');
    }
    await confirm(out, opts.yes, `submit this payload as the proposal on ${db.displayUrl}? Its approvals so far stop counting, and the gated tiers become pending for it`);
    const s = await submit(db, plan, payload, opts.as !== undefined ? { as: opts.as } : {});
    // after a submit, the subject is the new one (what approvers approve, what the next rehearsal is bound to) and the
    // payload is the one submitted (a --submit FILE's); the subject the draft was made under is draftedFor
    out.result({ ok: true, ...d, subject: s.after, draftedFor: d.subject, payload, file, submitted: s });
    out.line(`submitted: subject ${s.before?.slice(0, 12) ?? 'none'} → ${s.after.slice(0, 12)}`);
    out.line(
      opts.as !== undefined
        ? `author: ${opts.as} drafted it (recorded as the proposal's author: cannot approve it)`
        : "author: not recorded — the proposal's author stays the earlier payload's; --as EMAIL records who drafted this one (who then cannot approve it)",
    );
    if (s.gate) out.line(`gate ${s.gate.name} = ${s.gate.value ?? 'n/a'} (needs ≥ ${s.gate.min}): ${s.gate.open ? 'OPEN' : 'CLOSED'}`);
    // a payload approved before (submitted again) has its approvals back: no approval is asked for
    if (s.pending.length) out.line(`tiers ${s.pending.join(', ')} are pending for the new subject: ${s.gate?.open ? 'its approvals count (this payload was approved before): rehearse' : 'approve it, rehearse'}, then apply --evidence`);
    return 'ok';
  });
}
