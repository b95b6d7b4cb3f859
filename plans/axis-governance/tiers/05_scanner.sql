-- Tier 5 — Scanner / candidate (structure)
--
-- What:   tables axis.scan_run and axis.drift_state, and the function
--         axis.fn_governance_scan(): one scan records every metric of the plan
--         that exists so far (axis_tables, owner_gap, containment_gap,
--         divergent, projection_gap; tier 6 replaces the function with one that
--         adds critical and emittable) plus `candidates` in scan_run, upserts
--         drift_state (value, previous value, when it changed) and returns the
--         scan_run row.
--         A candidate is a user collection that is not governed yet: no
--         axis.ownership row (and not exempted by a tier-6 decision). A
--         collection created in Directus after the rollout is one.
-- Gate:   none (structure, ratification-independent).
-- Post:   none in the file: tiergate.yaml expects 2 tables and 1 function more (axis_tables + 2).
-- Revert: not reverted by tier 99 (kept). By hand: DROP FUNCTION
--         axis.fn_governance_scan(); DROP TABLE axis.drift_state, axis.scan_run.
--
-- Set-based: every data step is one statement; no row loops. A scan reads
-- Directus's metadata once: one pass over v_governed_collection gives every
-- metric and the candidates.
-- Usage:  SELECT * FROM axis.fn_governance_scan();

CREATE TABLE axis.scan_run (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    candidates       integer NOT NULL,
    -- the first 100 candidates by name: enough to act on, bounded at any scale
    candidate_sample text[] NOT NULL,
    metrics          jsonb NOT NULL
);

CREATE TABLE axis.drift_state (
    metric         text PRIMARY KEY,
    value          numeric NOT NULL,
    previous_value numeric,
    changed_at     timestamptz NOT NULL,
    observed_at    timestamptz NOT NULL,
    scan_run       bigint NOT NULL REFERENCES axis.scan_run (id)
);
CREATE INDEX drift_state_scan_run_idx ON axis.drift_state (scan_run);

CREATE FUNCTION axis.fn_governance_scan() RETURNS axis.scan_run
LANGUAGE plpgsql
-- Directus's tables resolve as they did when the tier ran (its schema)
SET search_path FROM CURRENT
-- one scan hashes every collection, relation and field once: let it do so in
-- memory (tens of MB at 65,000 collections) rather than spill to temp files,
-- and do not JIT-compile plans that run in well under a second
SET work_mem = '64MB'
SET jit = off
AS $fn$
DECLARE
    started  timestamptz := clock_timestamp();
    metrics  jsonb;
    n        integer;
    sample   text[];
    run      axis.scan_run;
BEGIN
    -- the plan's metrics, with the plan's definitions: the gap views are
    -- filters over v_governed_collection, applied here in one pass over it
    -- (exempt is false until tier 6 makes decisions)
    SELECT jsonb_build_object(
               'axis_tables',     (SELECT count(*) FROM pg_catalog.pg_class c
                                    WHERE c.relnamespace = 'axis'::regnamespace AND c.relkind IN ('r', 'p')),
               'owner_gap',       coalesce(sum(g.field_count) FILTER (WHERE g.role = 'anchor' AND g.owner IS NULL AND NOT g.exempt), 0),
               'containment_gap', count(*) FILTER (WHERE g.role = 'contained' AND NOT g.assigned AND NOT g.exempt),
               'divergent',       (SELECT count(DISTINCT r.collection) FROM axis.v_reconcile_collection_topic_vs_label r
                                    WHERE r.reconcile_flag <> 'match' AND NOT r.decided),
               'projection_gap',  count(*) FILTER (WHERE NOT g.projected AND NOT g.exempt)),
           count(*) FILTER (WHERE g.owner IS NULL AND NOT g.exempt),
           (array_agg(g.collection ORDER BY g.collection COLLATE "C") FILTER (WHERE g.owner IS NULL AND NOT g.exempt))[1:100]
      INTO metrics, n, sample
      FROM axis.v_governed_collection g;

    metrics := metrics || jsonb_build_object('candidates', n);

    INSERT INTO axis.scan_run (started_at, finished_at, candidates, candidate_sample, metrics)
    VALUES (started, clock_timestamp(), n, coalesce(sample, '{}'), metrics)
    RETURNING * INTO run;

    INSERT INTO axis.drift_state AS d (metric, value, previous_value, changed_at, observed_at, scan_run)
    SELECT e.key, (e.value #>> '{}')::numeric, NULL, run.finished_at, run.finished_at, run.id
      FROM jsonb_each(metrics) AS e
    ON CONFLICT (metric) DO UPDATE
       SET previous_value = CASE WHEN d.value IS DISTINCT FROM excluded.value THEN d.value ELSE d.previous_value END,
           changed_at     = CASE WHEN d.value IS DISTINCT FROM excluded.value THEN excluded.changed_at ELSE d.changed_at END,
           value          = excluded.value,
           observed_at    = excluded.observed_at,
           scan_run       = excluded.scan_run;

    RETURN run;
END
$fn$;

COMMENT ON FUNCTION axis.fn_governance_scan() IS
    'records every governance metric in axis.scan_run, upserts axis.drift_state, counts candidates (user collections with no owner); returns the scan_run row';
