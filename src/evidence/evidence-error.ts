import { TiergateError } from '../errors.js';

/** One problem in an evidence file, with its path (`stages[1].tiers[0].status`). */
export interface EvidenceIssue {
  path: string;
  message: string;
}

/**
 * A file given as evidence is not readable tiergate evidence: not JSON, not
 * tiergate's, an unsupported `schemaVersion`, or fields of the wrong shape.
 * Nothing was touched (exit 2).
 */
export class EvidenceError extends TiergateError {
  readonly exitCode = 2;
  readonly kind = 'evidence';
  constructor(
    /** the file (or "evidence" when parsed from a string) */
    readonly origin: string,
    readonly issues: EvidenceIssue[],
    summary: string,
  ) {
    const shown = issues.slice(0, MAX_SHOWN);
    const more = issues.length - shown.length;
    super(
      `${origin}: ${summary}` +
        shown.map((i) => `\n  - ${i.path ? i.path + ': ' : ''}${i.message}`).join('') +
        (more > 0 ? `\n  … and ${more} more` : ''),
    );
  }
}

const MAX_SHOWN = 20;
