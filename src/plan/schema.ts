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

/** `+30`, `0`, `-2`: a signed count (YAML reads `+30` as 30). */
const Count = z.number().int();

const ChangeCounts = z.strictObject({
  added: Count.nonnegative().optional(),
  removed: Count.nonnegative().optional(),
  changed: Count.nonnegative().optional(),
});
export type ChangeCounts = z.infer<typeof ChangeCounts>;

export const ObjectKind = z.enum(['tables', 'views', 'functions', 'sequences', 'indexes', 'constraints']);
export type ObjectKind = z.infer<typeof ObjectKind>;

const Expect = z.strictObject({
  /** rows per relation: a number is "added − removed"; an object names each count. */
  rows: z
    .record(z.string().regex(/^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$/, 'expected schema.table'), z.union([Count, ChangeCounts]))
    .describe('rows per schema.table: a number is added − removed; an object names each count')
    .optional(),
  /** metric: [before, after]; null means "n/a" (the objects do not exist). */
  metrics: z
    .record(Identifier, z.tuple([z.number().nullable(), z.number().nullable()]))
    .describe('metric: [before, after]; null means n/a (its objects do not exist)')
    .optional(),
  /** objects per kind: a number is "added − removed"; an object names each count. */
  objects: z
    .partialRecord(ObjectKind, z.union([Count, ChangeCounts]))
    .describe('objects per kind: a number is added − removed; an object names each count')
    .optional(),
}).describe('what the tier changes: enforced in rehearsal, reported (not enforced) in production');
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
    })
    .describe('the approval gate of gated tiers: a query returning one number, and its minimum')
    .optional(),
  metrics: z.record(Identifier, z.string().min(1)).default({}).describe('named SQL queries returning one number, used by post and expect'),
  rehearsal: z
    .strictObject({
      /** SQL that opens the gate on a tiergate clone (never on a source or a production target). */
      open_gate: z.string().min(1).describe('SQL that opens the gate on a tiergate clone (never on a source or a production target)').optional(),
    })
    .optional(),
  tiers: z.array(Tier).min(1).describe('the tiers, in the order they run'),
});
export type PlanFile = z.infer<typeof PlanFile>;
