import type { Queryable } from '../db/port.js';
import { DbError, type SqlFailure } from '../errors.js';
import { splitStatements, type SqlStatement } from '../plan/sql-facts.js';
import type { Tier } from '../plan/plan.js';
import { transactionControl, transactionControlMessage } from './tier-files.js';

/** A statement of a tier file failed: everything PostgreSQL said, and where. */
export class StatementError extends Error {
  constructor(
    readonly failure: SqlFailure,
    /** 0-based index of the failing statement in its file */
    readonly statementIndex: number,
    readonly statementSql: string,
    /** false: the parser refused the file, which was sent whole (the index says nothing) */
    readonly parsed = true,
  ) {
    super(failure.message);
  }
}

/** The run was interrupted (Ctrl-C, SIGTERM, SIGHUP) during a tier: the tier rolls back. */
export class Interrupted extends Error {
  constructor(tier: Tier, signal?: AbortSignal) {
    super(`interrupted (${interruptedBy(signal)}) during tier ${tier.id}: its transaction was rolled back`);
  }
}

/** What stopped a run, as its abort says (the CLI aborts with the signal's name; 'Ctrl-C' for SIGINT and when it does not say). */
export function interruptedBy(signal: AbortSignal | undefined): string {
  const reason: unknown = signal?.reason;
  return typeof reason === 'string' && /^(Ctrl-C|SIG[A-Z]+)$/.test(reason) ? reason : 'Ctrl-C';
}

/**
 * Runs a tier file statement by statement, exactly as `psql -f` sends it, so
 * that a failure names the statement's file:line. The caller owns the
 * transaction.
 */
export async function runScript(tx: Queryable, tier: Tier, file: string, signal?: AbortSignal): Promise<void> {
  const { statements: stmts, parsed } = await statementsOf(tier);
  // never send a statement that would end the tier's transaction (apply refuses such plans up front)
  const [control] = transactionControl(stmts);
  if (control) {
    const failure = describeFailure(null, tier.sql, control, file);
    throw new StatementError({ ...failure, message: transactionControlMessage(tier, control) }, stmts.indexOf(control), control.sql);
  }
  for (const [i, stmt] of stmts.entries()) {
    if (signal?.aborted) throw new Interrupted(tier, signal);
    try {
      await tx.exec(stmt.sql);
    } catch (e) {
      if (signal?.aborted) throw new Interrupted(tier, signal);
      throw new StatementError(describeFailure(e, tier.sql, stmt, file), i, stmt.sql, parsed);
    }
  }
}

/**
 * Runs each statement in its own savepoint and collects every failure instead
 * of stopping at the first: a verify tier lists all failing assertions.
 */
export async function runAssertions(tx: Queryable, tier: Tier, file: string): Promise<SqlFailure[]> {
  const failures: SqlFailure[] = [];
  const { statements } = await statementsOf(tier);
  if (statements.length === 0) return failures;
  // each statement sent alone (a statement the server cannot parse fails after its savepoint); the end of one
  // savepoint and the next one's start go in one round trip, and a savepoint rolled back to stays for the next
  await tx.exec('savepoint tiergate_assert');
  for (const [i, stmt] of statements.entries()) {
    const last = i === statements.length - 1;
    try {
      await tx.exec(stmt.sql);
    } catch (e) {
      failures.push(describeFailure(e, tier.sql, stmt, file));
      await tx.exec(last ? 'rollback to savepoint tiergate_assert; release savepoint tiergate_assert' : 'rollback to savepoint tiergate_assert');
      continue;
    }
    await tx.exec(last ? 'release savepoint tiergate_assert' : 'release savepoint tiergate_assert; savepoint tiergate_assert');
  }
  return failures;
}

async function statementsOf(tier: Tier): Promise<{ statements: readonly SqlStatement[]; parsed: boolean }> {
  try {
    return { statements: await splitStatements(tier.sql), parsed: true };
  } catch {
    // The parser refused the file (apply and rehearse refuse such a plan
    // first; a library caller may not have): send it whole and let the
    // server be the judge.
    return { statements: [{ sql: tier.sql, start: 0, end: tier.sql.length, line: 1, ast: null }], parsed: false };
  }
}

/** Maps an error to file:line:column using the error's position or its PL/pgSQL context. */
export function describeFailure(e: unknown, fileText: string, stmt: SqlStatement, file: string): SqlFailure {
  const err = e instanceof DbError ? e : null;
  let offset = stmt.start + leadingTrivia(stmt.sql);
  if (err?.position) {
    // PostgreSQL counts characters (code points); JavaScript strings count UTF-16 units
    offset = stmt.start + Array.from(stmt.sql).slice(0, err.position - 1).join('').length;
  } else if (err?.where) {
    // "PL/pgSQL function inline_code_block line 7 at RAISE": line 1 is the line of the opening dollar quote
    const m = /inline_code_block line (\d+)/.exec(err.where);
    const body = stmt.sql.search(/\$[A-Za-z_]*\$/);
    if (m && body >= 0) offset = lineStartOffset(fileText, lineOf(fileText, stmt.start + body) + Number(m[1]) - 1);
  }
  const line = lineOf(fileText, offset);
  const column = offset - lineStartOffset(fileText, line) + 1;
  return {
    message: err?.message ?? (e instanceof Error ? e.message : String(e)),
    sqlstate: err?.sqlstate ?? null,
    detail: err?.detail ?? null,
    hint: err?.hint ?? null,
    where: err?.where ?? null,
    file,
    line,
    column,
    excerpt: fileText.split('\n')[line - 1]?.trimEnd() ?? null,
  };
}

function leadingTrivia(sql: string): number {
  const m = /^(\s|--[^\n]*\n?|\/\*[\s\S]*?\*\/)*/.exec(sql);
  return m ? m[0].length : 0;
}

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < Math.min(offset, text.length); i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

function lineStartOffset(text: string, line: number): number {
  let current = 1;
  for (let i = 0; i < text.length; i++) {
    if (current === line) return i;
    if (text.charCodeAt(i) === 10) current++;
  }
  return text.length;
}
