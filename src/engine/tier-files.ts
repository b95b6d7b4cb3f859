import { PlanError, type PlanIssue } from '../errors.js';
import { splitStatements, type SqlStatement } from '../plan/lint.js';
import type { Plan, Tier } from '../plan/plan.js';

/**
 * Statements that begin or end a transaction. In a tier file they would
 * break the tier's one transaction: a COMMIT commits half a tier (and what
 * follows runs outside any transaction), a ROLLBACK throws the first half
 * away and lets the rest commit on its own. (SAVEPOINT and ROLLBACK TO keep
 * the transaction: `tiergate lint` warns about them, the engine allows them.)
 */
const ENDS_TRANSACTION = new Set([
  'TRANS_STMT_BEGIN',
  'TRANS_STMT_START',
  'TRANS_STMT_COMMIT',
  'TRANS_STMT_ROLLBACK',
  'TRANS_STMT_PREPARE',
  'TRANS_STMT_COMMIT_PREPARED',
  'TRANS_STMT_ROLLBACK_PREPARED',
]);

/** The statements of a parsed tier file that begin or end a transaction (none when the parser refuses the file). */
export function transactionControl(statements: readonly SqlStatement[]): SqlStatement[] {
  return statements.filter((s) => {
    const t = (s.ast as { TransactionStmt?: { kind?: string } } | null)?.TransactionStmt;
    return Boolean(t && ENDS_TRANSACTION.has(t.kind ?? ''));
  });
}

/** `tiers/01.sql:2: COMMIT …` for one such statement. */
export function transactionControlMessage(tier: Tier, s: SqlStatement): string {
  const word = s.sql.trim().split(/\s+/).slice(0, 2).join(' ').replace(/;$/, '').toUpperCase();
  return `${word}: a tier file must not begin or end the transaction — tiergate runs tier ${tier.id} in one transaction with its gate check, post-conditions and ledger row; remove the statement`;
}

/**
 * Refuses, before anything is touched, a plan whose tier files begin or end
 * transactions (exit 2, like any invalid plan).
 */
export async function assertOneTransactionPerTier(plan: Plan): Promise<void> {
  const issues: PlanIssue[] = [];
  for (const tier of plan.tiers) {
    let statements: readonly SqlStatement[];
    try {
      statements = await splitStatements(tier.sql);
    } catch {
      continue; // the server judges a file the parser refuses (run-script.ts sends it whole)
    }
    for (const s of transactionControl(statements)) issues.push({ path: `${tier.file}:${s.line}`, message: transactionControlMessage(tier, s) });
  }
  if (issues.length) throw new PlanError(plan.name, issues);
}
