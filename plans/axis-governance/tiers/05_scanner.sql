-- Tier 5 — Scanner / candidate (structure)
--
-- What:   tables axis.scan_run and axis.drift_state, and the function
--         axis.fn_governance_scan(): one scan records every metric of the plan
--         (axis_tables, owner_gap, containment_gap, divergent, projection_gap,
--         and critical / emittable once tier 6's v_governance_finding exists)
--         plus `candidates` in scan_run, upserts drift_state (value, previous
--         value, when it changed) and returns the scan_run row.
--         A candidate is a user collection that is not governed yet: no
--         axis.ownership row (and not exempted by a tier-6 decision). A
--         collection created in Directus after the rollout is one.
-- Gate:   none (structure, ratification-independent).
-- Post:   axis_tables = 8.
-- Revert: not reverted by tier 99 (kept). By hand: DROP FUNCTION
--         axis.fn_governance_scan(); DROP TABLE axis.drift_state, axis.scan_run.
--
-- Set-based: every data step is one statement over the tier-1/6 views (which
-- join the catalog, relations and field counts once each); no row loops.
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
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    started  timestamptz := clock_timestamp();
    metrics  jsonb;
    findings jsonb := '{}';
    n        integer;
    sample   text[];
    run      axis.scan_run;
BEGIN
    -- the plan's metrics, with the plan's definitions
    SELECT jsonb_build_object(
               'axis_tables',     (SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = 'axis'),
               'owner_gap',       (SELECT coalesce(sum(field_count), 0) FROM axis.v_owner_gap),
               'containment_gap', (SELECT count(*) FROM axis.v_containment_gap),
               'divergent',       (SELECT count(DISTINCT collection) FROM axis.v_reconcile_collection_topic_vs_label
                                    WHERE reconcile_flag <> 'match' AND NOT decided),
               'projection_gap',  (SELECT count(*) FROM axis.v_projection_gap))
      INTO metrics;

    SELECT count(*), (array_agg(g.collection ORDER BY g.collection))[1:100]
      INTO n, sample
      FROM axis.v_governed_collection g
     WHERE NOT g.exempt
       AND NOT EXISTS (SELECT 1 FROM axis.ownership o WHERE o.collection = g.collection);

    -- critical / emittable come from tier 6's finding view; before tier 6 they
    -- are not recorded (a metric whose objects do not exist is n/a, not 0)
    IF to_regclass('axis.v_governance_finding') IS NOT NULL THEN
        EXECUTE 'SELECT jsonb_build_object(''critical'', count(*) FILTER (WHERE severity = ''critical''),
                                           ''emittable'', count(*) FILTER (WHERE emittable))
                   FROM axis.v_governance_finding'
           INTO findings;
    END IF;
    metrics := metrics || findings || jsonb_build_object('candidates', n);

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
