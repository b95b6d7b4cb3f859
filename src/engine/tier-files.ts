import type { SqlStatement } from '../plan/sql-facts.js';
import type { Tier } from '../plan/plan.js';

/**
 * Statements that begin or end a transaction. In a tier file they would
 * break the tier's one transaction: a COMMIT commits half a tier (and what
 * follows runs outside any transaction), a ROLLBACK throws the first half
 * away and lets the rest commit on its own. (SAVEPOINT and ROLLBACK TO keep
 * the transaction: `tiergate lint` warns about them, the engine allows them.)
 * `tiergate lint` reports them as errors (`non-transactional`), so a plan
 * holding one is refused before anything runs; run-script.ts never sends one.
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

/** The statements of a parsed tier file that begin or end a transaction. */
export function transactionControl(statements: readonly SqlStatement[]): SqlStatement[] {
  return statements.filter((s) => {
    const t = (s.ast as { TransactionStmt?: { kind?: string } } | null)?.TransactionStmt;
    return Boolean(t && ENDS_TRANSACTION.has(t.kind ?? ''));
  });
}

/** `COMMIT: a tier file must not …` for one such statement. */
export function transactionControlMessage(tier: Tier, s: SqlStatement): string {
  const word = s.sql.trim().split(/\s+/).slice(0, 2).join(' ').replace(/;$/, '').toUpperCase();
  return `${word}: a tier file must not begin or end the transaction — tiergate runs tier ${tier.id} in one transaction with its gate check, post-conditions and ledger row; remove the statement`;
}
