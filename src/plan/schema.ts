import { z } from 'zod';

/**
 * The one schema of `tiergate.yaml`: the source of the plan's TypeScript types
 * and of its published JSON Schema (`schema/plan.schema.json`).
 * Unknown keys are errors everywhere (`z.strictObject`).
 */

/** A PostgreSQL duration as `SET lock_timeout` accepts it: `5s`, `250ms`, `5min`, `1h`, `0`. */
export const Duration = z
  .string()
  .regex(/^(0|\d+(\.\d+)?\s*(us|ms|s|min|h|d))$/, 'expected a duration such as 250ms, 5s, 5min, 1h')
  .describe('a PostgreSQL duration (250ms, 5s, 5min, 1h)');

const Identifier = z
  .string()
  .regex(/^[a-z_][a-z0-9_]*$/, 'expected a lower-case identifier (letters, digits, _)');

export const TierKind = z.enum(['preflight', 'structure', 'data', 'verify', 'rollback']);
export type TierKind = z.infer<typeof TierKind>;

/**
 * An expected count: a whole number (`+30`, `0`; YAML reads `+30` as 30), an
 * expression over figures read before the tier (`approved_anchors`,
 * `containment_gap + 1`), or `any`.
 */
const CountExpr = z
  .union([z.number().int(), z.string().min(1)])
  .describe("a whole number, an expression over the plan's metrics (their values before the tier) and figures (e.g. approved_anchors, containment_gap + 1), or any");

/** One named count (added, removed, changed): never negative. */
const PartExpr = z
  .union([z.number().int().nonnegative(), z.string().min(1)])
  .describe('a whole number ≥ 0, an expression over metrics and figures, or any');

const ChangeCounts = z.strictObject({
  added: PartExpr.optional(),
  removed: PartExpr.optional(),
  changed: PartExpr.optional(),
});
export type ChangeCounts = z.infer<typeof ChangeCounts>;
export type CountExpectation = z.infer<typeof CountExpr> | ChangeCounts;

export const ObjectKind = z.enum(['schemas', 'tables', 'views', 'functions', 'sequences', 'indexes', 'constraints', 'triggers', 'policies', 'rules', 'types', 'extensions']);
export type ObjectKind = z.infer<typeof ObjectKind>;

/** A metric's expected value: a number, null (n/a: its objects do not exist), `any`, or an expression. */
const MetricExpr = z
  .union([z.number(), z.null(), z.string().min(1)])
  .describe('a number, null (n/a), any, or an expression over metrics (before the tier) and figures');
export type MetricExpectation = [z.infer<typeof MetricExpr>, z.infer<typeof MetricExpr>] | 'unchanged';

const Expect = z
  .strictObject({
    /** rows per relation: a count is "added − removed"; an object names each count. */
    rows: z
      .record(z.string().regex(/^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$/, 'expected schema.table'), z.union([CountExpr, ChangeCounts]))
      .describe('rows per schema.table: a count is added − removed; an object names each count')
      .optional(),
    /** metric: [before, after], or `unchanged`. */
    metrics: z
      .record(Identifier, z.union([z.tuple([MetricExpr, MetricExpr]), z.literal('unchanged')]))
      .describe('metric: [before, after] (each a number, null for n/a, any, or an expression), or unchanged')
      .optional(),
    /** objects per kind: a count is "added − removed"; an object names each count. */
    objects: z
      .partialRecord(ObjectKind, z.union([CountExpr, ChangeCounts]))
      .describe('objects per kind: a count is added − removed; an object names each count')
      .optional(),
  })
  .describe(
    "what is true of the tier in every environment: counts and metrics as numbers or as expressions over the figures read in the tier's transaction before it runs; enforced in rehearsal, reported in production",
  );
export type Expect = z.infer<typeof Expect>;

export const Tier = z.strictObject({
  id: z.number().int().nonnegative().describe('the tier id (0, 1, … 90, 99), recorded in the ledger'),
  name: z.string().min(1),
  kind: TierKind.describe(
    'preflight: read-only checks; structure: DDL, never gated; data: gated row changes; verify: read-only assertions; rollback: reverts the tiers named in reverts',
  ),
  file: z.string().min(1).describe('the SQL file, relative to the plan folder: plain PostgreSQL, runnable with psql -1 -f'),
  /** data tiers are gated unless `gated: false`; structure tiers are never gated. */
  gated: z.boolean().describe('data tiers are gated unless gated: false; structure tiers are never gated').optional(),
  requires: z.array(z.number().int()).describe('tiers that must be applied first (listed earlier in tiers)').optional(),
  /** post-conditions: `metric op number`, checked inside the tier's transaction. */
  post: z
    .array(z.string().min(1))
    .describe("post-conditions 'metric op number' (owner_gap = 0), checked inside the tier's transaction before COMMIT")
    .optional(),
  expect: Expect.optional(),
  /** rollback tiers only: the tiers it reverts, in the order it reverts them. */
  reverts: z.array(z.number().int()).describe('rollback tiers only: the tiers it reverts, in the order it reverts them').optional(),
  /** rollback tiers only: `all` (default) reverts the tiers; `subject` reverts only what they wrote for the gate's current subject (one amendment). */
  scope: z
    .enum(['all', 'subject'])
    .describe("rollback tiers only: all (default) reverts the named tiers; subject reverts only what they wrote for the gate's current subject (one amendment), leaving what they wrote for earlier subjects")
    .optional(),
  /** structure and data tiers: sha256 of earlier revisions of the file that do the same (a target that applied one is not drifted). */
  replaces: z
    .array(z.string().regex(/^[0-9a-f]{64}$/, 'expected a sha256: 64 lowercase hex digits'))
    .describe(
      "structure and data tiers: the sha256 of earlier revisions of this tier's file that do the same thing (a faster statement, a comment); a target that applied one of them is not drifted, and its ledger keeps the sha256 it applied",
    )
    .optional(),
  lock_timeout: Duration.optional(),
  statement_timeout: Duration.optional(),
});
export type TierSpec = z.infer<typeof Tier>;

export const PlanFile = z.strictObject({
  plan: Identifier.or(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'expected a plan name (a-z, 0-9, - and _)')),
  database: z.string().min(1).describe('the database name the target must have (current_database())').optional(),
  schemas: z.array(Identifier).min(1).default(['public']).describe('the schemas the plan reads and changes'),
  defaults: z
    .strictObject({ lock_timeout: Duration.default('5s'), statement_timeout: Duration.default('5min') })
    .default({ lock_timeout: '5s', statement_timeout: '5min' })
    .describe("timeouts set for every tier, unless the tier sets its own"),
  gate: z
    .strictObject({
      name: Identifier,
      /** SQL returning one number. */
      sql: z.string().min(1).describe('SQL returning one number (e.g. the approvals of the proposal)'),
      /** SQL run first in a gated tier's transaction that locks the rows the gate counts (FOR SHARE). */
      lock: z.string().min(1).describe("SQL run first in a gated tier's transaction, locking the rows the gate counts (FOR SHARE)").optional(),
      min: z.number().int().default(1).describe('the gate is open when the query returns at least min'),
      /** SQL returning one text: what an approval approves (e.g. the payload's sha256). */
      subject: z
        .string()
        .min(1)
        .describe("SQL returning one text: what the approvals approve (e.g. the proposal payload's sha256); evidence and the ledger record it")
        .optional(),
      /** One row per approval: id, approver, at, subject, why (null when it counts). */
      approvals: z
        .string()
        .min(1)
        .describe('SQL listing every approval: columns id, approver, at, subject, why (null when it counts, else why it does not); status, the evidence and the ledger show it')
        .optional(),
      /** `tiergate approve`: records an approval; $1 the approver (--as), $2 what is approved (--proposal). */
      approve: z
        .strictObject({
          sql: z.string().min(1).describe('SQL recording an approval by $1 (tiergate approve --as) of $2 (--proposal), returning the new approval\'s id'),
          proposal: z.string().min(1).describe('the default $2'),
        })
        .describe('how tiergate approve records an approval (for trials and teams without an approval screen)')
        .optional(),
      /** What to do when the gate is closed, in words (shown with NO-GO). */
      when_closed: z.string().min(1).describe('what to do when the gate is closed, shown with a NO-GO verdict (e.g. who must approve what, and how)').optional(),
      /** How the gated files' own guard fails: only that error proves the guard in rehearsal. */
      guard: z
        .strictObject({
          sqlstate: z.string().regex(/^[0-9A-Z]{5}$/, 'expected a 5-character SQLSTATE such as TG001').default('P0001'),
          message: z.string().min(1).describe("text the guard's error message contains").optional(),
        })
        .default({ sqlstate: 'P0001' })
        .describe("the error the gated files' guard raises (SQLSTATE, and text its message contains): in rehearsal only that error proves the guard"),
    })
    .describe('the approval gate of gated tiers: a query returning one number, and its minimum')
    .optional(),
  metrics: z.record(Identifier, z.string().min(1)).default({}).describe('named SQL queries returning one number, read before and after every tier, used by post and expect'),
  figures: z
    .record(Identifier, z.string().min(1))
    .default({})
    .describe("named SQL queries returning one number, read in a tier's transaction before it runs when its expect uses them"),
  evidence: z
    .strictObject({
      required: z.boolean().default(false).describe('apply refuses to run without --evidence (a rehearsal of this target)'),
      signed: z.boolean().default(false).describe('the evidence must carry a valid signature made with TIERGATE_EVIDENCE_KEY'),
    })
    .describe('what production demands of its evidence')
    .optional(),
  rehearsal: z
    .strictObject({
      /** SQL that opens the gate on a tiergate clone (never on a source or a production target). */
      open_gate: z.string().min(1).describe('SQL that opens the gate on a tiergate clone (never on a source or a production target)').optional(),
      /** SQL that closes an open gate inside a rehearsal's guard proof (rolled back with it). */
      close_gate: z
        .string()
        .min(1)
        .describe("SQL run inside the rolled-back transaction of a guard proof when the clone's gate is open: it closes the gate for that proof only")
        .optional(),
    })
    .optional(),
  amend: z
    .strictObject({
      /** SQL run by `tiergate scan` first, in its own transaction (e.g. a scanner that records its run). */
      scan: z.string().min(1).describe('SQL tiergate scan runs first, in its own committed transaction (e.g. the scanner function recording its run)').optional(),
      /** One row per finding: kind, subject, severity (critical | warning), detail. */
      findings: z
        .string()
        .min(1)
        .describe('SQL listing what governance misses on this database: columns kind, item, severity (critical or warning), detail'),
      /** One row: payload (the drafted payload, JSON) and suggestions (a JSON array of {item, field, value, reason}). */
      draft: z
        .string()
        .min(1)
        .describe('SQL drafting an amended payload from the approved one and the findings: one row with columns payload (JSON) and suggestions (a JSON array of {item, action, owner, topic, reason})'),
      /** Rows of `problem` (text): what is wrong with the payload $1 (JSON text); none: it may be submitted. */
      check: z
        .string()
        .min(1)
        .describe('SQL listing what is wrong with the payload $1 (JSON text) before propose --submit writes it: one row per problem, column problem; none: it may be submitted')
        .optional(),
      /** Writes $1 (the payload as JSON text) as the new subject: what `propose --submit` runs; returns the new subject. */
      submit: z
        .string()
        .min(1)
        .describe('SQL writing $1 (a payload, JSON text) as the proposal to approve, returning one text: the new gate subject (propose --submit)'),
      /** Records $1 (who drafted the payload just submitted, as `propose --submit --as` names them) as the proposal's author; returns a row when it did. */
      author: z
        .string()
        .min(1)
        .describe("SQL recording $1 (propose --submit --as: who drafted the payload just submitted) as the proposal's author, whom the gate does not count as an approver; returns a row when recorded, none when $1 names no one")
        .optional(),
    })
    .describe('day two: what tiergate scan finds and how tiergate propose drafts and submits an amendment')
    .optional(),
  tiers: z.array(Tier).min(1).describe('the tiers, in the order they run'),
});
export type PlanFile = z.infer<typeof PlanFile>;
