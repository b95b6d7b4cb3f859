/**
 * tiergate's error taxonomy. Every error carries data; the CLI renders it and
 * chooses the exit code from its `exitCode` (the only place that exits).
 */

/**
 * 0 success; 1 a tier or check failed; 2 bad usage, plan, configuration or
 * evidence (nothing touched); 3 NO-GO; 4 another rollout holds the lock;
 * 5 declined at the confirmation prompt (nothing changed); 130 interrupted
 * (Ctrl-C).
 */
export type ExitCode = 0 | 1 | 2 | 3 | 4 | 5 | 130;

export abstract class TiergateError extends Error {
  abstract readonly exitCode: ExitCode;
  /** a short machine-readable kind, used in `--json` output */
  abstract readonly kind: string;
}

/** One problem in a plan, with its path (`tiers[3].requires[0]`). */
export interface PlanIssue {
  path: string;
  message: string;
}

/** The plan is invalid: nothing was touched (exit 2). */
export class PlanError extends TiergateError {
  readonly exitCode = 2;
  readonly kind = 'plan';
  constructor(
    readonly planDir: string,
    readonly issues: PlanIssue[],
  ) {
    super(
      `plan '${planDir}' is invalid (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n` +
        issues.map((i) => `  - ${i.path ? i.path + ': ' : ''}${i.message}`).join('\n'),
    );
  }
}

/** Bad usage or configuration: a flag, a URL, an option combination (exit 2). */
export class UsageError extends TiergateError {
  readonly exitCode = 2;
  readonly kind = 'usage';
}

/** Another rollout holds the lock of this target and plan (exit 4). */
export class LockHeldError extends TiergateError {
  readonly exitCode = 4;
  readonly kind = 'lock-held';
  /** @param subject what is locked, e.g. `the rollout lock of plan 'axis-governance' on postgres://…` */
  constructor(
    readonly subject: string,
    readonly holder: string,
  ) {
    super(`${subject} is held by another run (${holder}); wait for it to finish, or stop it, then run again`);
  }
}

/** An applied tier's file changed since it was applied (exit 1, nothing touched). */
export class DriftError extends TiergateError {
  readonly exitCode = 1;
  readonly kind = 'drift';
  constructor(
    readonly plan: string,
    /** `revertedBy`: the rollback tiers whose `reverts:` name the tier (none: nothing of the plan undoes it) */
    readonly drifted: { tier: number; name: string; file: string; applied: string; current: string; revertedBy?: number[] }[],
  ) {
    const reverted = drifted.filter((d) => d.revertedBy?.length);
    const kept = drifted.filter((d) => !d.revertedBy?.length);
    const tiers = (ds: typeof drifted) => ds.map((d) => d.tier).join(', ');
    super(
      drifted
        .map(
          (d) =>
            `tier ${d.tier} '${d.name}' was applied from ${d.file} with sha256 ${d.applied}, but the file now has sha256 ${d.current}`,
        )
        .join('\n') +
        `\nnothing was changed. An applied tier's file must not be edited: restore it (git checkout); or, when the new file does the same thing (a faster statement, a comment), list the applied sha256 under the tier's replaces: in tiergate.yaml (README: Revising an applied file).` +
        (reverted.length
          ? ` To change what tier ${tiers(reverted)} does, restore it, roll it back (tiergate rollback: ${reverted.map((d) => `tier ${d.tier} is reverted by rollback tier ${d.revertedBy!.join(' or ')}`).join(', ')}), then edit it.`
          : '') +
        (kept.length
          ? ` No rollback tier of the plan reverts tier ${tiers(kept)}: to change what it does, restore it and make the change in a new tier of the plan.`
          : ''),
    );
  }
}

/** The database refused us before any tier ran: connection, authentication, permissions (exit 2). */
/**
 * What a connection refused for want of a password says (src/db/pg-adapter.ts), and where one goes: one text,
 * which the fleet says again for a worker (src/fleet/targets.ts fleetPasswordMessage).
 */
export const NO_PASSWORD_GIVEN =
  'the server asks for a password and none was given; put it in the URL (postgres://user:PASSWORD@host/db, percent-encoded), in PGPASSWORD or in ~/.pgpass (a fleet target: the variable its password_env names)';

export class ConnectionError extends TiergateError {
  readonly exitCode = 2;
  readonly kind = 'connection';
  constructor(
    message: string,
    /** the server's SQLSTATE when it refused (28P01 bad password, 3D000 no such database); null: no answer */
    readonly sqlstate: string | null = null,
  ) {
    super(message);
  }
}

/** The target is not the database the plan expects, or a refused operation on it (exit 2). */
export class TargetError extends TiergateError {
  readonly exitCode = 2;
  readonly kind = 'target';
}

/** Everything PostgreSQL reported about a failed statement, plus where it is in the plan. */
export interface SqlFailure {
  message: string;
  sqlstate: string | null;
  detail: string | null;
  hint: string | null;
  where: string | null;
  /** plan-relative file of the failing statement, when known */
  file: string | null;
  line: number | null;
  column: number | null;
  /** the failing SQL line (or statement's first line), for a code frame */
  excerpt: string | null;
}

/** A database error normalised from `pg` or PGlite. */
export class DbError extends Error {
  constructor(
    message: string,
    readonly sqlstate: string | null,
    readonly detail: string | null,
    readonly hint: string | null,
    readonly position: number | null,
    readonly where: string | null,
  ) {
    super(message);
  }
}

/**
 * A DbError of one step tiergate took (a metric's read, one of its own
 * statements after a tier's file): the step in words before the server's.
 */
export class DbStepError extends DbError {
  constructor(
    readonly step: string,
    cause: DbError,
  ) {
    super(`${step}: ${cause.message}`, cause.sqlstate, cause.detail, cause.hint, null, cause.where);
  }
}

/**
 * The connection was lost while COMMIT was on its way: the server may or may
 * not have committed (SQLSTATE 08007, transaction_resolution_unknown). The
 * engine resolves it from the ledger on a new connection when it can.
 */
export class CommitInDoubtError extends DbError {
  constructor(readonly lost: DbError) {
    super(`${lost.message} — while COMMIT was on its way: the server may or may not have committed`, '08007', lost.detail, lost.hint, null, lost.where);
  }
}

/**
 * tiergate's own bookkeeping (the ledger, the gate) waited its lock_timeout
 * for a lock another session holds: nothing was changed (exit 1).
 */
export class BlockedError extends TiergateError {
  readonly exitCode = 1;
  readonly kind = 'blocked';
}

/** The operator answered no at the confirmation prompt: nothing was changed (exit 5). */
export class DeclinedError extends TiergateError {
  readonly exitCode = 5;
  readonly kind = 'declined';
}

/** Ctrl-C: the run stopped; the message says in what state it left the target (exit 130). */
export class InterruptedError extends TiergateError {
  readonly exitCode = 130;
  readonly kind = 'interrupted';
}

/**
 * `apply --evidence` refused the evidence before touching anything: another
 * database or cluster, the embedded sample's, a changed gate subject, too
 * old, edited, unsigned where a signature is required (exit 2).
 */
export class EvidenceRefusedError extends TiergateError {
  readonly exitCode = 2;
  readonly kind = 'evidence-refused';
}
