/** What a statement or an object is, in words, for effects and messages: `CREATE TABLE`, `a DO block`. */
import type { TransactionStmt } from 'libpg-query';
import { isObject } from './parse-script.js';

/** `INSERT`, `CREATE TABLE`, `a DO block`: what a statement is, for messages. */
export function statementLabel(ast: unknown): string {
  const key = isObject(ast) ? Object.keys(ast)[0] : undefined;
  if (!key) return 'a statement';
  return STATEMENT_LABELS[key] ?? ddlLabel(key);
}

const STATEMENT_LABELS: Record<string, string> = {
  DoStmt: 'a DO block',
  CreateStmt: 'CREATE TABLE',
  IndexStmt: 'CREATE INDEX',
  ViewStmt: 'CREATE VIEW',
  DropStmt: 'DROP',
  VariableSetStmt: 'SET',
  VariableShowStmt: 'SHOW',
  TransactionStmt: 'a transaction command',
  CreateTableAsStmt: 'CREATE TABLE AS',
  DefineStmt: 'CREATE',
};

/** `CREATE DATABASE`, `CREATE TRIGGER`: a DDL statement by its node type (`CreatedbStmt`, `CreateTrigStmt`). */
export function ddlLabel(key: string): string {
  return DDL_LABELS[key] ?? key.replace(/Stmt$/, '').replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase();
}

const DDL_LABELS: Record<string, string> = {
  CreatedbStmt: 'CREATE DATABASE',
  DropdbStmt: 'DROP DATABASE',
  CreateTableSpaceStmt: 'CREATE TABLESPACE',
  DropTableSpaceStmt: 'DROP TABLESPACE',
  AlterSystemStmt: 'ALTER SYSTEM',
  CreateSubscriptionStmt: 'CREATE SUBSCRIPTION',
  DropSubscriptionStmt: 'DROP SUBSCRIPTION',
  CommentStmt: 'COMMENT',
  CreateTrigStmt: 'CREATE TRIGGER',
  CreateEnumStmt: 'CREATE TYPE … AS ENUM',
  CompositeTypeStmt: 'CREATE TYPE',
  CreateRangeStmt: 'CREATE TYPE … AS RANGE',
  RuleStmt: 'CREATE RULE',
  CreatePLangStmt: 'CREATE LANGUAGE',
  SecLabelStmt: 'SECURITY LABEL',
  AlterOwnerStmt: 'ALTER … OWNER TO',
  CreateForeignTableStmt: 'CREATE FOREIGN TABLE',
  CreateStatsStmt: 'CREATE STATISTICS',
  AlterStatsStmt: 'ALTER STATISTICS',
  CreateEventTrigStmt: 'CREATE EVENT TRIGGER',
  AlterEventTrigStmt: 'ALTER EVENT TRIGGER',
  GrantRoleStmt: 'GRANT role',
  AlterDefaultPrivilegesStmt: 'ALTER DEFAULT PRIVILEGES',
};

export function objectLabel(t: string | undefined): string {
  if (!t) return 'OBJECT';
  if (t === 'OBJECT_MATVIEW') return 'MATERIALIZED VIEW';
  if (t === 'OBJECT_TABCONSTRAINT') return 'TABLE … CONSTRAINT';
  return t.replace(/^OBJECT_/, '').replace(/_/g, ' ');
}

export function transactionLabel(t: TransactionStmt): string {
  const labels: Record<string, string> = {
    TRANS_STMT_BEGIN: 'BEGIN',
    TRANS_STMT_START: 'START TRANSACTION',
    TRANS_STMT_COMMIT: 'COMMIT',
    TRANS_STMT_ROLLBACK: 'ROLLBACK',
    TRANS_STMT_SAVEPOINT: 'SAVEPOINT',
    TRANS_STMT_RELEASE: 'RELEASE SAVEPOINT',
    TRANS_STMT_ROLLBACK_TO: 'ROLLBACK TO SAVEPOINT',
    TRANS_STMT_PREPARE: 'PREPARE TRANSACTION',
    TRANS_STMT_COMMIT_PREPARED: 'COMMIT PREPARED',
    TRANS_STMT_ROLLBACK_PREPARED: 'ROLLBACK PREPARED',
  };
  return labels[t.kind ?? ''] ?? 'transaction control';
}
