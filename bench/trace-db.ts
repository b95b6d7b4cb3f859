/**
 * A timing wrapper around tiergate's database port: the engine runs
 * unchanged, and every query it sends is timed and sorted by what it is for.
 * This is how the benchmark splits an apply into the tier files' own SQL
 * and the engine's work (metrics, catalog and row snapshots, deltas, gate,
 * ledger), from the outside.
 */
import type { Db, Queryable } from '../src/db/port.js';
import type { Plan } from '../src/plan/load-plan.js';
import { splitStatements } from '../src/plan/lint.js';
import { queryInSavepoint } from '../src/probe/metrics.js';

export const CATEGORIES = ['tier SQL', 'metrics', 'catalog snapshots', 'row snapshots + deltas', 'gate', 'ledger, lock, transaction'] as const;
export type Category = (typeof CATEGORIES)[number] | 'other SQL';

export interface Trace {
  /** ms per category, summed over every query sent */
  byCategory: Record<string, number>;
  queries: number;
  /** the slowest engine queries (not the tier files'), summed by their first 100 characters */
  top: { sql: string; ms: number; count: number }[];
}

export class Tracer {
  private readonly tierStatements = new Set<string>();
  private readonly metricSql: Set<string>;
  private readonly gateSql: Set<string>;
  private log: { sql: string; ms: number; category: Category }[] = [];

  private constructor(plan: Plan) {
    this.metricSql = new Set(Object.values(plan.metrics));
    this.gateSql = new Set([plan.gate?.sql, plan.gate?.lock].filter((s): s is string => Boolean(s)));
  }

  static async forPlan(plan: Plan): Promise<Tracer> {
    const t = new Tracer(plan);
    for (const tier of plan.tiers) for (const s of await splitStatements(tier.sql)) t.tierStatements.add(s.sql);
    return t;
  }

  classify(sql: string): Category {
    // a plan query read in its savepoint, in one script (src/probe/metrics.ts inSavepoint), is classified as the query
    const inner = queryInSavepoint(sql);
    if (inner !== null && !/^execute tiergate_metric/.test(inner)) return this.classify(inner);
    if (this.tierStatements.has(sql)) return 'tier SQL';
    // (and the look-up of the relations a failed set's metrics name: src/probe/metrics.ts withoutRelations)
    if (this.metricSql.has(sql) || /tiergate_metric|^select to_regclass\(case when s is null/.test(sql)) return 'metrics';
    if (this.gateSql.has(sql)) return 'gate';
    if (/^(execute|prepare) tiergate_catalog_|where name = \$1\) as ok$/.test(sql)) return 'catalog snapshots';
    if (/tiergate_rows_|tiergate_hash|to_regclass\(w\.rel\)|^select \(select count\(\*\) from |to_regclass\(\$1\)|pg_proc p join pg_namespace|::regclass::text as q|quote_ident\(n\.nspname\) \|\| '\.' \|\| quote_ident\(c\.relname\) as q|count\(\*\)::int as n from/.test(sql)) {
      return 'row snapshots + deltas';
    }
    if (/^\s*(begin|commit|rollback)\b|advisory|tiergate\.(ledger|attempt)|set_config\('lock_timeout'|tiergate_assert|clone_mark|current_database\(\)/i.test(sql)) {
      return 'ledger, lock, transaction';
    }
    return 'other SQL';
  }

  /**
   * Wraps a Db (and the transactions it opens) so every query is timed. One
   * wrapper per connection object, however often it is wrapped: the engine
   * keys per-session state on that object (src/probe/metrics.ts: the metrics
   * prepared on a session), and a new wrapper per transaction made every
   * metric set PREPARE again, fail with 42P05 and roll back — work the
   * untraced engine never does.
   */
  wrap(db: Db): Db {
    const wrappers = new WeakMap<object, Queryable>();
    const wrapQ = <T extends Queryable>(q: T): T => {
      const known = wrappers.get(q);
      if (known) return known as T;
      const w = this.wrapOne(q, wrapQ);
      wrappers.set(q, w);
      return w;
    };
    return wrapQ(db);
  }

  private wrapOne<T extends Queryable>(q: T, wrapQ: <U extends Queryable>(q: U) => U): T {
    return new Proxy(q, {
      get: (target, prop, receiver) => {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (prop === 'query' || prop === 'exec') {
          return async (sql: string, ...args: unknown[]) => {
            const t = performance.now();
            try {
              return await (v as (...a: unknown[]) => Promise<unknown>).call(target, sql, ...args);
            } finally {
              this.log.push({ sql, ms: performance.now() - t, category: this.classify(sql) });
            }
          };
        }
        if (prop === 'transaction') {
          return (fn: (tx: Queryable) => Promise<unknown>, options: unknown) =>
            (v as (f: unknown, o: unknown) => Promise<unknown>).call(target, (tx: Queryable) => fn(wrapQ(tx)), options);
        }
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  }

  /** What was recorded since the last take (and forget it). */
  take(): Trace {
    const byCategory: Record<string, number> = Object.fromEntries([...CATEGORIES, 'other SQL'].map((c) => [c, 0]));
    const top = new Map<string, { ms: number; count: number }>();
    for (const q of this.log) {
      byCategory[q.category] = (byCategory[q.category] ?? 0) + q.ms;
      if (q.category === 'tier SQL') continue;
      const key = q.sql.replace(/\s+/g, ' ').trim().slice(0, 100);
      const e = top.get(key) ?? { ms: 0, count: 0 };
      e.ms += q.ms;
      e.count++;
      top.set(key, e);
    }
    const queries = this.log.length;
    this.log = [];
    return {
      byCategory,
      queries,
      top: [...top].map(([sql, e]) => ({ sql, ...e })).sort((a, b) => b.ms - a.ms).slice(0, 8),
    };
  }
}
