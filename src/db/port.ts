/**
 * The narrow database port. The engine, probe and rehearsal talk to a target
 * only through this interface; only `db/` imports `pg` or PGlite.
 */

export interface QueryResult<R = Record<string, unknown>> {
  rows: R[];
  rowCount: number;
}

/** Something SQL can be sent to: a connection, or a transaction on one. */
export interface Queryable {
  /** One statement with `$1…` parameters (extended protocol). */
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<QueryResult<R>>;
  /**
   * A whole script, possibly many statements, no parameters (simple
   * protocol): one round trip. Each statement's result, in order; the first
   * that fails stops the script and is thrown (what ran before it stays run).
   */
  exec<R = Record<string, unknown>>(script: string): Promise<QueryResult<R>[]>;
}

export interface TransactionOptions {
  readOnly?: boolean;
}

export interface Capabilities {
  /** `pg` or `pglite`: for display and evidence only, never for branching. */
  readonly driver: 'pg' | 'pglite';
  /** only one connection exists: failure records are written on it, after ROLLBACK */
  readonly singleConnection: boolean;
  /** `pg_dump` / `pg_restore` can reach this target */
  readonly pgDump: boolean;
  /** server_version_num */
  readonly serverVersion: number;
  /**
   * The storage's own id when the server's system identifier cannot tell two
   * databases apart: a PGlite directory tiergate made (copies of one initdb
   * share a system identifier). Null for a server.
   */
  readonly instance: string | null;
}

export interface Db extends Queryable {
  /** the target's URL with any password redacted */
  readonly displayUrl: string;
  readonly capabilities: Capabilities;
  /**
   * Runs `fn` inside BEGIN … COMMIT; ROLLBACK if it throws (the error is rethrown).
   * Nested calls are not supported: use savepoints through `query`.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /** A second, independent connection to the same target (the same one on single-connection targets). */
  sibling(): Promise<Db>;
  /** Is the connection still usable? (false after the server dropped it) */
  alive(): boolean;
  /**
   * Bounds how long the client waits for any answer (a silent network
   * partition, where nothing arrives and nothing closes): past `ms` the
   * connection counts as lost. Only network adapters need it; null: no bound.
   */
  setResponseTimeout?(ms: number | null): void;
  /**
   * Asks the server to cancel the statement this connection is running, if
   * it runs one that is not COMMIT or ROLLBACK (from a connection of its
   * own): Ctrl-C during a tier's long statement or its wait for a lock.
   * Resolves once the server has sent the signal (or had nothing to
   * cancel). Absent on an embedded database, whose statements run on this
   * thread and cannot be interrupted.
   */
  cancelStatement?(): Promise<void>;
  close(): Promise<void>;
}
