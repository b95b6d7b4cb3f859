/**
 * The lint rules, checked on one tier file: a gated tier opens with its guard,
 * a data tier ends with its assertion, each kind of tier does only what it may,
 * and nothing breaks the tier's one transaction.
 */
import { analyzeStatement, type RelName } from './analyze-statement.js';
import type { Plan, Tier } from './plan.js';
import { isObject, parseScript, SqlSyntaxError, type PgQuery, type SqlStatement } from './parse-script.js';
import { skipTrivia, SourceText } from './source-text.js';
import { statementLabel } from './statement-label.js';

/** One problem found by `lintPlan`, located in a tier file. */
export interface LintFinding {
  severity: 'error' | 'warning';
  /** the tier whose file it is in; null for tiergate.yaml (a plan query, `plan-query`) */
  tier: number | null;
  /** plan-relative file */
  file: string;
  /** 1-based */
  line: number;
  /** 1-based, in characters */
  column: number;
  rule: LintRule;
  message: string;
}

export type LintRule =
  | 'parse'
  | 'dml-in-structure'
  | 'ddl-in-data'
  | 'gated-without-guard'
  | 'guard-without-lock'
  | 'guard-sqlstate'
  | 'data-without-assertion'
  | 'non-transactional'
  | 'write-in-readonly'
  | 'opaque-in-data'
  | 'no-header'
  | 'plan-query';

/** The findings of one tier file, in the order the checks run (`lintPlan` sorts them by position). */
export function lintTier(pg: PgQuery, plan: Plan, tier: Tier): LintFinding[] {
  const findings: LintFinding[] = [];
  const src = new SourceText(tier.sql);
  const report = (severity: LintFinding['severity'], rule: LintRule, at: number, message: string) => {
    const { line, column } = src.position(at);
    findings.push({ severity, tier: tier.id, file: tier.file, line, column, rule, message });
  };
  const name = `${tier.kind} tier ${tier.id}`;

  const first = skipTrivia(tier.sql, 0);
  if (!/^\s*(--|\/\*)/.test(tier.sql.replace(/^\uFEFF/, ''))) {
    const also = [tier.gated && 'its gate', tier.kind === 'data' && 'its post-condition', tier.kind !== 'preflight' && tier.kind !== 'verify' && 'how it is reverted'].filter(Boolean);
    report('warning', 'no-header', Math.min(first, tier.sql.length),
      `${tier.file} does not open with a comment: say what ${name} does${also.length ? ` (${also.join(', ')})` : ''}, so that the file reads on its own`);
  }

  let statements: SqlStatement[];
  try {
    statements = parseScript(pg, tier.sql).statements;
  } catch (e) {
    if (!(e instanceof SqlSyntaxError)) throw e;
    report('error', 'parse', e.position, `${e.parserMessage}: PostgreSQL would refuse this file`);
    return findings;
  }
  const analyses = statements.map((s) => analyzeStatement(pg, src, s));
  const label = (s: SqlStatement | undefined) => (s ? statementLabel(s.ast) : 'nothing');

  // gated tiers open with their own guard; data tiers end with their assertion
  if (tier.gated) {
    const guard = analyses[0]?.block;
    if (!guard || !isDo(statements[0]?.ast)) {
      report('error', 'gated-without-guard', statements[0]?.start ?? first,
        `gated ${name} opens with ${label(statements[0])}, not with a DO block: open it with DO $$ … RAISE EXCEPTION … $$ that stops the file when the gate${plan.gate ? ` '${plan.gate.name}'` : ''} is closed, so that it is safe even when run by hand (psql -1 -f)`);
    } else if (!guard.invalid && !guard.raisesException) {
      report('warning', 'gated-without-guard', guard.at,
        `the guard of gated ${name} (its first DO block) never RAISEs EXCEPTION: it cannot stop the file when the gate is closed`);
    } else if (!guard.invalid) {
      // every RAISE EXCEPTION of the guard names its SQLSTATE, and none is the plan's: the rehearsal cannot prove it
      const sqlstate = plan.gate?.guard.sqlstate;
      if (sqlstate && guard.raised.every((c) => c !== null) && !guard.raised.includes(sqlstate)) {
        report('error', 'guard-sqlstate', guard.at,
          `the guard of gated ${name} raises SQLSTATE ${[...new Set(guard.raised)].join(', ')}, but gate.guard.sqlstate is ${sqlstate}: a rehearsal proves a guard only by that error (its stage A fails); raise it with USING ERRCODE = '${sqlstate}', or set gate.guard.sqlstate in tiergate.yaml`);
      }
      if (!guard.locks) {
        report('warning', 'guard-without-lock', guard.at,
          `the guard of gated ${name} reads the gate without locking it: an approval revoked meanwhile is not seen; read it with SELECT … FOR SHARE`);
      }
    }
  }
  if (tier.kind === 'data') {
    const lastStmt = statements[statements.length - 1];
    const last = analyses[analyses.length - 1]?.block;
    if (!lastStmt || !isDo(lastStmt.ast) || statements.length < (tier.gated ? 2 : 1)) {
      report('error', 'data-without-assertion', lastStmt?.start ?? first,
        `${name} ends with ${statements.length < 2 && tier.gated ? 'its guard' : label(lastStmt)}, not with a DO block asserting its post-condition: end it with DO $$ … RAISE EXCEPTION … $$ checking the result${tier.post.length ? ` (${tier.post.map((p) => p.expr).join(', ')})` : ''}, so that a wrong result rolls the tier back`);
    } else if (last && !last.invalid && !last.raisesException && !last.asserts) {
      report('warning', 'data-without-assertion', last.at, `the last DO block of ${name} never RAISEs EXCEPTION nor ASSERTs: it cannot roll a wrong result back`);
    }
  }

  const created: RelName[] = [];
  const createdHere = (rel: RelName) => created.find((c) => c.name === rel.name && (c.schema === rel.schema || !c.schema || !rel.schema));
  const readOnly = tier.kind === 'preflight' || tier.kind === 'verify';
  const readOnlyWhy = `${tier.kind} tiers are read-only (they run in a read-only transaction${tier.kind === 'preflight' ? ', on the rehearsal\'s source too' : ''})`;
  for (const { effects } of analyses) {
    for (const e of effects) {
      switch (e.type) {
        case 'invalid':
          report('error', 'parse', e.at, `${e.message}: PostgreSQL would refuse the DO block when it runs`);
          break;
        case 'opaque':
          if (tier.kind === 'data') {
            report('warning', 'opaque-in-data', e.at,
              `${e.why} in ${name}: lint cannot see whether it changes the schema; apply and the rehearsal refuse the tier at run time if it changes an object of the plan's schemas (data tiers change rows only)`);
          }
          break;
        case 'transaction':
          report('error', 'non-transactional', e.at,
            `${e.what} inside a tier file breaks the tier's one transaction (tiergate begins and commits it, with the gate check, post-conditions and ledger row): remove it`);
          break;
        case 'non-transactional':
          report(e.severity, 'non-transactional', e.at, `${e.why}: ${e.severity === 'error' ? 'remove it from the tier or use a form that runs in a transaction' : 'do not use the new value in the same tier'}`);
          break;
        case 'create':
          created.push(e.rel);
          break;
        case 'write': {
          const mine = createdHere(e.rel);
          if (tier.kind === 'structure' && !mine && e.op !== 'REFRESH MATERIALIZED VIEW') {
            report('error', 'dml-in-structure', e.at,
              `${e.op} on '${e.rel.text}' in ${name}: structure tiers change the schema only (they are never gated); move the data change to a gated data tier (DML into a table this file creates is fine)`);
          }
          if (readOnly && !e.rel.temp && !mine?.temp) {
            report('error', 'write-in-readonly', e.at, `${e.op} on '${e.rel.text}' in ${name}: ${readOnlyWhy}; move the change to a structure or data tier`);
          }
          break;
        }
        case 'ddl':
          if (tier.kind === 'data' && !e.temp) {
            report('error', 'ddl-in-data', e.at, `${e.what} in ${name}: data tiers change rows only; move the DDL to a structure tier (temporary tables are fine)`);
          }
          if (readOnly) report('error', 'write-in-readonly', e.at, `${e.what} in ${name}: ${readOnlyWhy}; move it to a structure tier${e.temp ? ' (PostgreSQL refuses even temporary tables there)' : ''}`);
          break;
        case 'lock':
          if (readOnly && e.rowLock) report('error', 'write-in-readonly', e.at, `SELECT … ${e.rowLock} in ${name}: ${readOnlyWhy}, where PostgreSQL refuses row locks; read without ${e.rowLock}`);
          break;
        case 'sequence':
          if (readOnly) report('error', 'write-in-readonly', e.at, `${e.what} in ${name}: ${readOnlyWhy}, where PostgreSQL refuses ${e.what}; read the sequence's last_value instead`);
          break;
      }
    }
  }
  return findings;
}

function isDo(ast: unknown): boolean {
  return isObject(ast) && 'DoStmt' in ast;
}
