-- Tier 99 — Rollback of tiers 6, 4, 3 (in that order)
--
-- What:   reverts 6: drops v_governance_finding, restores the tier-1
--         definitions of the 5 base views (CREATE OR REPLACE: same columns, so
--         anything depending on them survives), drops reconcile_decision and
--         with it tier 4's PROD_T4 decisions;
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

-- the tier-1 definitions, verbatim
CREATE OR REPLACE VIEW axis.v_governed_collection AS
WITH RECURSIVE
user_collection AS (
    SELECT dc.collection::text AS collection, dc."group"::text AS folder
    FROM directus_collections dc
    JOIN pg_catalog.pg_class c
      ON c.relname = dc.collection::name
     AND c.relkind IN ('r', 'p')
     AND c.relnamespace = (SELECT t.relnamespace FROM pg_catalog.pg_class t WHERE t.oid = 'directus_collections'::regclass)
    WHERE dc.collection NOT LIKE 'directus\_%'
),
containing AS (
    SELECT DISTINCT ON (r.many_collection) r.many_collection::text AS collection, r.one_collection::text AS container
    FROM directus_relations r
    JOIN user_collection m ON m.collection = r.many_collection
    JOIN user_collection o ON o.collection = r.one_collection
    WHERE (r.junction_field IS NOT NULL OR r.one_deselect_action = 'delete')
      AND r.one_collection <> r.many_collection
    ORDER BY r.many_collection, r.one_field IS NULL, r.id
),
chain AS (
    SELECT collection, container AS node, 1 AS depth FROM containing
    UNION ALL
    SELECT ch.collection, c.container, ch.depth + 1
    FROM chain ch JOIN containing c ON c.collection = ch.node
    WHERE ch.depth < 32
),
root AS (
    SELECT ch.collection, ch.node AS anchor
    FROM chain ch
    WHERE NOT EXISTS (SELECT 1 FROM containing c WHERE c.collection = ch.node)
),
field_count AS (
    SELECT f.collection::text AS collection, count(*)::integer AS field_count
    FROM directus_fields f
    GROUP BY f.collection
)
SELECT u.collection,
       CASE WHEN c.collection IS NULL THEN 'anchor' ELSE 'contained' END AS role,
       c.container,
       CASE WHEN c.collection IS NULL THEN u.collection ELSE r.anchor END AS anchor,
       u.folder,
       coalesce(fc.field_count, 0) AS field_count,
       false AS exempt
FROM user_collection u
LEFT JOIN containing c ON c.collection = u.collection
LEFT JOIN root r ON r.collection = u.collection
LEFT JOIN field_count fc ON fc.collection = u.collection;

CREATE OR REPLACE VIEW axis.v_owner_gap AS
SELECT g.collection, g.folder, g.field_count
FROM axis.v_governed_collection g
WHERE g.role = 'anchor'
  AND NOT EXISTS (SELECT 1 FROM axis.ownership o WHERE o.collection = g.collection);

CREATE OR REPLACE VIEW axis.v_containment_gap AS
SELECT g.collection, g.container, g.anchor, g.folder
FROM axis.v_governed_collection g
WHERE g.role = 'contained'
  AND NOT EXISTS (SELECT 1 FROM axis.containment_assignment a WHERE a.collection = g.collection);

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
WHERE NOT EXISTS (
    SELECT 1
    FROM axis.collection_topic ct
    JOIN axis.topic t ON t.key = ct.topic AND t.status = 'active'
    JOIN axis.axis a ON a.key = t.axis AND a.status = 'ratified'
    WHERE ct.collection = g.collection
);

DROP TABLE IF EXISTS axis.reconcile_decision;

-- revert 4: statuses back
UPDATE axis.topic SET status = previous_status, previous_status = NULL, status_tag = NULL WHERE status_tag = 'PROD_T4';
UPDATE axis.axis  SET status = previous_status, previous_status = NULL, status_tag = NULL WHERE status_tag = 'PROD_T4';

-- revert 3: its rows, referencing rows first
DELETE FROM axis.collection_topic       WHERE tag = 'PROD_T3';
DELETE FROM axis.ownership              WHERE tag = 'PROD_T3';
DELETE FROM axis.containment_assignment WHERE tag = 'PROD_T3';
DELETE FROM axis.containment_rule       WHERE tag = 'PROD_T3';
DELETE FROM axis.topic                  WHERE tag = 'PROD_T3';
DELETE FROM axis.axis                   WHERE tag = 'PROD_T3';

-- Post-condition: no PROD_T3 / PROD_T4 rows remain, tier 6's objects are gone
DO $post$
DECLARE
    left_over text;
BEGIN
    SELECT string_agg(format('%s: %s', t, n), ', ' ORDER BY t) INTO left_over
      FROM (
        SELECT 'axis.axis' AS t, count(*) AS n FROM axis.axis WHERE tag IN ('PROD_T3', 'PROD_T4') OR status_tag IN ('PROD_T3', 'PROD_T4')
        UNION ALL SELECT 'axis.topic', count(*) FROM axis.topic WHERE tag IN ('PROD_T3', 'PROD_T4') OR status_tag IN ('PROD_T3', 'PROD_T4')
        UNION ALL SELECT 'axis.collection_topic', count(*) FROM axis.collection_topic WHERE tag IN ('PROD_T3', 'PROD_T4')
        UNION ALL SELECT 'axis.ownership', count(*) FROM axis.ownership WHERE tag IN ('PROD_T3', 'PROD_T4')
        UNION ALL SELECT 'axis.containment_rule', count(*) FROM axis.containment_rule WHERE tag IN ('PROD_T3', 'PROD_T4')
        UNION ALL SELECT 'axis.containment_assignment', count(*) FROM axis.containment_assignment WHERE tag IN ('PROD_T3', 'PROD_T4')
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
