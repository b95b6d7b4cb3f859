-- Tier 99 — Rollback of tiers 6, 4, 3 (in that order)
--
-- What:   reverts 6: drops v_governance_finding, restores the tier-1
--         definitions of the 5 base views (CREATE OR REPLACE: same columns, so
--         anything depending on them survives) and tier 5's
--         fn_governance_scan(), drops reconcile_decision and with it tier 4's
--         PROD_T4 decisions;
--         reverts 4: every status changed under PROD_T4 goes back to
--         previous_status;
--         reverts 3: deletes every PROD_T3 row (collection_topic,
--         containment ownership, containment_assignment, CR-CONTAIN, topics,
--         axes).
--         Tiers 1, 2 and 5 are left intact (tier 2's PROD_T2 owners stay).
--         Safe to run when some of 6, 4, 3 were never applied.
-- Gate:   none (rollback is never gated).
-- Post:   no PROD_T3 / PROD_T4 rows remain in schema axis, asserted at the end
--         in the same transaction.
-- Revert: re-apply tiers 6, 3, 4: natural keys and content-derived rows make
--         the result equal to the first full apply.

DROP VIEW IF EXISTS axis.v_governance_finding;

-- the tier-1 definitions, verbatim (a test checks they equal tier 1's)
CREATE OR REPLACE VIEW axis.v_governed_collection AS
WITH RECURSIVE
user_collection AS (
    SELECT dc.collection::text AS collection, dc."group"::text AS folder, coalesce(fc.field_count, 0) AS field_count
    FROM directus_collections dc
    JOIN pg_catalog.pg_class c
      ON c.relname = dc.collection::name
     AND c.relkind IN ('r', 'p')
     AND c.relnamespace = (SELECT t.relnamespace FROM pg_catalog.pg_class t WHERE t.oid = 'directus_collections'::regclass)
    LEFT JOIN (
        SELECT f.collection, count(*)::integer AS field_count
        FROM directus_fields f
        GROUP BY f.collection
    ) fc ON fc.collection = dc.collection
    WHERE dc.collection NOT LIKE 'directus\_%'
      -- the governance proposals and their approvals are the substrate's own, not governed by it
      -- (compared as text: PostgreSQL prints a varchar NOT IN list in a form that
      -- it prints differently once reloaded, and a dump-restored clone must show
      -- the definition this file creates)
      AND dc.collection::text NOT IN ('os_proposals', 'os_proposal_approvals')
),
-- the containing relation of each contained collection: one whose one side is
-- another user collection, preferring one with one_field set, then the
-- smallest id (hash-aggregated: no sort, whatever the database's collation);
-- the many side is checked by the final join
containing AS (
    SELECT r.many_collection::text AS collection, r.one_collection::text AS container
    FROM (
        SELECT r.many_collection, coalesce(min(r.id) FILTER (WHERE r.one_field IS NOT NULL), min(r.id)) AS id
        FROM directus_relations r
        JOIN user_collection o ON o.collection = r.one_collection
        WHERE (r.junction_field IS NOT NULL OR r.one_deselect_action = 'delete')
          AND r.one_collection <> r.many_collection
        GROUP BY r.many_collection
    ) pick
    JOIN directus_relations r ON r.id = pick.id
),
-- containers that are contained themselves: followed up to the anchor (a cycle
-- ends without one). Each side is joined through GROUP BY on its key: a CTE
-- has no statistics, and without it the estimates of this recursion reach
-- hundreds of millions of rows, which makes PostgreSQL JIT-compile the plan
-- (seconds) on every read of the view.
nested AS (
    SELECT c.collection, up.container AS node, 2 AS depth
    FROM containing c
    JOIN (SELECT collection, min(container) AS container FROM containing GROUP BY collection) up ON up.collection = c.container
    UNION ALL
    SELECT n.collection, up.container, n.depth + 1
    FROM nested n
    JOIN (SELECT collection, min(container) AS container FROM containing GROUP BY collection) up ON up.collection = n.node
    WHERE n.depth < 32
),
nested_anchor AS (
    SELECT n.collection, min(n.node) AS anchor
    FROM nested n
    WHERE n.node NOT IN (SELECT x.collection FROM containing x)
    GROUP BY n.collection
),
projected AS (
    SELECT DISTINCT ct.collection
    FROM axis.collection_topic ct
    JOIN axis.topic t ON t.key = ct.topic AND t.status = 'active'
    JOIN axis.axis a ON a.key = t.axis AND a.status = 'ratified'
    WHERE ct.tag NOT LIKE 'RELEASED#%'
)
SELECT u.collection,
       CASE WHEN c.collection IS NULL THEN 'anchor' ELSE 'contained' END AS role,
       c.container,
       CASE WHEN c.collection IS NULL THEN u.collection
            WHEN up.collection IS NULL THEN c.container
            ELSE na.anchor END AS anchor,
       u.folder,
       u.field_count,
       false AS exempt,
       o.owner,
       a.collection IS NOT NULL AS assigned,
       p.collection IS NOT NULL AS projected
FROM user_collection u
-- (a CTE has no statistics: joined through GROUP BY on the key, the planner
-- knows each side is unique and keeps its row estimates, hence its plan, sane)
LEFT JOIN (SELECT collection, min(container) AS container FROM containing GROUP BY collection) c ON c.collection = u.collection
LEFT JOIN (SELECT collection FROM containing GROUP BY collection) up ON up.collection = c.container
LEFT JOIN (SELECT collection, min(anchor) AS anchor FROM nested_anchor GROUP BY collection) na ON na.collection = u.collection
-- (an owner an amendment released, tag RELEASED#…, owns nothing: tiers 2 and 3)
LEFT JOIN axis.ownership o ON o.collection = u.collection AND o.tag NOT LIKE 'RELEASED#%'
LEFT JOIN axis.containment_assignment a ON a.collection = u.collection AND a.tag NOT LIKE 'RELEASED#%'
LEFT JOIN projected p ON p.collection = u.collection;

CREATE OR REPLACE VIEW axis.v_owner_gap AS
SELECT g.collection, g.folder, g.field_count
FROM axis.v_governed_collection g
WHERE g.role = 'anchor' AND g.owner IS NULL;

CREATE OR REPLACE VIEW axis.v_containment_gap AS
SELECT g.collection, g.container, g.anchor, g.folder
FROM axis.v_governed_collection g
WHERE g.role = 'contained' AND NOT g.assigned;

CREATE OR REPLACE VIEW axis.v_reconcile_collection_topic_vs_label AS
SELECT ct.collection,
       dc."group"::text AS folder,
       ct.topic,
       t.axis,
       coalesce(same_axis.key, any_axis.key) AS label_topic,
       coalesce(same_axis.axis, any_axis.axis) AS label_axis,
       CASE
           WHEN same_axis.key IS NULL AND any_axis.key IS NULL THEN 'no_label_rule'
           WHEN same_axis.key = ct.topic THEN 'match'
           WHEN same_axis.key IS NOT NULL THEN 'divergent'
           ELSE 'orthogonal_facet'
       END AS reconcile_flag,
       NULL::text AS decision,
       false AS decided
FROM axis.collection_topic ct
JOIN axis.topic t ON t.key = ct.topic
JOIN directus_collections dc ON dc.collection = ct.collection
LEFT JOIN axis.topic same_axis ON same_axis.directus_folder = dc."group" AND same_axis.axis = t.axis
LEFT JOIN (
    SELECT DISTINCT ON (r.directus_folder) r.directus_folder, r.key, r.axis
    FROM axis.topic r
    WHERE r.directus_folder IS NOT NULL
    ORDER BY r.directus_folder, r.key
) any_axis ON any_axis.directus_folder = dc."group";

CREATE OR REPLACE VIEW axis.v_projection_gap AS
SELECT g.collection, g.role, g.folder
FROM axis.v_governed_collection g
WHERE NOT g.projected;

-- tier 5's scan function, verbatim (tier 6 replaced it)
CREATE OR REPLACE FUNCTION axis.fn_governance_scan() RETURNS axis.scan_run
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

DROP TABLE IF EXISTS axis.reconcile_decision;

-- revert 4: statuses back
-- (every amendment's too: tags PROD_T4#N, PROD_T3#N; an owner an amendment
-- released, RELEASED#N:…, stays released: it owns nothing)
UPDATE axis.topic SET status = previous_status, previous_status = NULL, status_tag = NULL WHERE status_tag ~ '^PROD_T4(#|$)';
UPDATE axis.axis  SET status = previous_status, previous_status = NULL, status_tag = NULL WHERE status_tag ~ '^PROD_T4(#|$)';

-- revert 3: its rows, referencing rows first
DELETE FROM axis.collection_topic       WHERE tag ~ '^PROD_T3(#|$)';
DELETE FROM axis.ownership              WHERE tag ~ '^PROD_T3(#|$)';
DELETE FROM axis.containment_assignment WHERE tag ~ '^PROD_T3(#|$)';
DELETE FROM axis.containment_rule       WHERE tag ~ '^PROD_T3(#|$)';
DELETE FROM axis.topic                  WHERE tag ~ '^PROD_T3(#|$)';
DELETE FROM axis.axis                   WHERE tag ~ '^PROD_T3(#|$)';

-- statistics follow the rows (see tier 3): a re-apply of tiers 3 and 4 is
-- planned for the tables as this tier leaves them, not as they were
ANALYZE axis.collection_topic, axis.ownership, axis.containment_assignment, axis.containment_rule, axis.topic, axis.axis;

-- Post-condition: no PROD_T3 / PROD_T4 rows remain, tier 6's objects are gone
DO $post$
DECLARE
    left_over text;
BEGIN
    SELECT string_agg(format('%s: %s', t, n), ', ' ORDER BY t) INTO left_over
      FROM (
        SELECT 'axis.axis' AS t, count(*) AS n FROM axis.axis WHERE tag ~ '^PROD_T[34](#|$)' OR status_tag ~ '^PROD_T[34](#|$)'
        UNION ALL SELECT 'axis.topic', count(*) FROM axis.topic WHERE tag ~ '^PROD_T[34](#|$)' OR status_tag ~ '^PROD_T[34](#|$)'
        UNION ALL SELECT 'axis.collection_topic', count(*) FROM axis.collection_topic WHERE tag ~ '^PROD_T[34](#|$)'
        UNION ALL SELECT 'axis.ownership', count(*) FROM axis.ownership WHERE tag ~ '^PROD_T[34](#|$)'
        UNION ALL SELECT 'axis.containment_rule', count(*) FROM axis.containment_rule WHERE tag ~ '^PROD_T[34](#|$)'
        UNION ALL SELECT 'axis.containment_assignment', count(*) FROM axis.containment_assignment WHERE tag ~ '^PROD_T[34](#|$)'
      ) c
     WHERE n > 0;
    IF left_over IS NOT NULL THEN
        RAISE EXCEPTION 'tier 99 post-condition failed: PROD_T3/PROD_T4 rows remain (%)', left_over USING ERRCODE = 'TG002';
    END IF;
    IF to_regclass('axis.reconcile_decision') IS NOT NULL OR to_regclass('axis.v_governance_finding') IS NOT NULL THEN
        RAISE EXCEPTION 'tier 99 post-condition failed: tier 6 objects remain' USING ERRCODE = 'TG002';
    END IF;
END
$post$;
