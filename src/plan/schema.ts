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
  rows: z.record(z.string().regex(/^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$/, 'expected schema.table'), z.union([Count, ChangeCounts])).optional(),
  /** metric: [before, after]; null means "n/a" (the objects do not exist). */
  metrics: z.record(Identifier, z.tuple([z.number().nullable(), z.number().nullable()])).optional(),
  /** objects per kind: a number is "added − removed"; an object names each count. */
  objects: z.partialRecord(ObjectKind, z.union([Count, ChangeCounts])).optional(),
});
export type Expect = z.infer<typeof Expect>;

export const Tier = z.strictObject({
  id: z.number().int().nonnegative(),
  name: z.string().min(1),
  kind: TierKind,
  file: z.string().min(1),
  /** data tiers are gated unless `gated: false`; structure tiers are never gated. */
  gated: z.boolean().optional(),
  requires: z.array(z.number().int()).optional(),
  /** post-conditions: `metric op number`, checked inside the tier's transaction. */
  post: z.array(z.string().min(1)).optional(),
  expect: Expect.optional(),
  /** rollback tiers only: the tiers it reverts, in the order it reverts them. */
  reverts: z.array(z.number().int()).optional(),
  lock_timeout: Duration.optional(),
  statement_timeout: Duration.optional(),
});
export type TierSpec = z.infer<typeof Tier>;

export const PlanFile = z.strictObject({
  plan: Identifier.or(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'expected a plan name (a-z, 0-9, - and _)')),
  database: z.string().min(1).optional(),
  schemas: z.array(Identifier).min(1).default(['public']),
  defaults: z
    .strictObject({ lock_timeout: Duration.default('5s'), statement_timeout: Duration.default('5min') })
    .default({ lock_timeout: '5s', statement_timeout: '5min' }),
  gate: z
    .strictObject({
      name: Identifier,
      /** SQL returning one number. */
      sql: z.string().min(1),
      /** SQL run first in a gated tier's transaction that locks the rows the gate counts (FOR SHARE). */
      lock: z.string().min(1).optional(),
      min: z.number().int().default(1),
    })
    .optional(),
  metrics: z.record(Identifier, z.string().min(1)).default({}),
  rehearsal: z
    .strictObject({
      /** SQL that opens the gate on a tiergate clone (never on a source or a production target). */
      open_gate: z.string().min(1).optional(),
    })
    .optional(),
  tiers: z.array(Tier).min(1),
});
export type PlanFile = z.infer<typeof PlanFile>;
