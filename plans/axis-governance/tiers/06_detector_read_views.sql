-- Tier 6 — Detector / reconcile / UI-API read views (structure)
--
-- What:   +1 table axis.reconcile_decision; the 5 base views of tier 1
--         replaced by decision-aware definitions (same columns); +1 view
--         axis.v_governance_finding, the one read view a UI or API serves
--         (key, collection, severity, emittable, detail); tier 5's
--         axis.fn_governance_scan() replaced by one that also records critical
--         and emittable.
--         A decision settles a collection: 'keep_topic' accepts a non-matching
--         reconcile flag for (collection, topic) as long as the flag stays the
--         one decided; 'exempt' takes a collection out of governance (it is
--         listed by v_governed_collection with exempt = true and by no gap).
-- Gate:   none (structure, ratification-independent).
-- Post:   none in the file: tiergate.yaml expects 1 table and 1 view more, 5 views and the scan replaced.
-- Revert: tier 99 restores the tier-1 view definitions and tier 5's function,
--         and drops v_governance_finding and reconcile_decision.
--
-- Severity model of v_governance_finding (one row per finding; key = kind:collection):
--   critical  the ratified proposal is not (yet) honoured: it names a collection
--             that does not exist (payload_dangling), a named anchor has
--             no owner (owner_gap), or a collection the rollout has taken on
--             (owned or named) lacks its containment (containment_gap) or an
--             active topic on a ratified axis (projection_gap). Not emittable:
--             the rollout's own tiers close these; verify fails on them.
--   warning   drift a person must act on, emittable (sent as a notification):
--             a collection nobody owns and the proposal does not name
--             (candidate: e.g. created in Directus after the rollout), a folder
--             that contradicts the collection's topic, undecided (divergent),
--             an ownership row whose collection is gone (orphaned_ownership;
--             an amendment releases it: tag RELEASED#…, no longer an owner).
--   info      an undecided orthogonal_facet / no_label_rule flag
--             (reconcile_pending); tier 4 decides them. Not emittable.

CREATE TABLE axis.reconcile_decision (
    collection     text NOT NULL,
    topic          text,
    reconcile_flag text CHECK (reconcile_flag IN ('divergent', 'orthogonal_facet', 'no_label_rule')),
    decision       text NOT NULL CHECK (decision IN ('keep_topic', 'exempt')),
    rationale      text NOT NULL,
    tag            text NOT NULL,
    decided_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reconcile_decision_key UNIQUE NULLS NOT DISTINCT (collection, topic),
    CONSTRAINT reconcile_decision_shape CHECK (
        CASE decision WHEN 'exempt' THEN topic IS NULL AND reconcile_flag IS NULL
                      ELSE topic IS NOT NULL AND reconcile_flag IS NOT NULL END)
);

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
       ex.collection IS NOT NULL AS exempt,
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
LEFT JOIN projected p ON p.collection = u.collection
LEFT JOIN axis.reconcile_decision ex ON ex.collection = u.collection AND ex.topic IS NULL AND ex.decision = 'exempt';

CREATE OR REPLACE VIEW axis.v_owner_gap AS
SELECT g.collection, g.folder, g.field_count
FROM axis.v_governed_collection g
WHERE g.role = 'anchor' AND g.owner IS NULL AND NOT g.exempt;

CREATE OR REPLACE VIEW axis.v_containment_gap AS
SELECT g.collection, g.container, g.anchor, g.folder
FROM axis.v_governed_collection g
WHERE g.role = 'contained' AND NOT g.assigned AND NOT g.exempt;

-- A 'keep_topic' decision counts only while the flag is still the one decided:
-- a collection moved to another folder after the decision is undecided again.
CREATE OR REPLACE VIEW axis.v_reconcile_collection_topic_vs_label AS
SELECT x.collection, x.folder, x.topic, x.axis, x.label_topic, x.label_axis, x.reconcile_flag,
       coalesce(ex.decision, keep.decision) AS decision,
       (ex.decision IS NOT NULL OR keep.decision IS NOT NULL) AS decided
FROM (
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
           END AS reconcile_flag
    FROM axis.collection_topic ct
    JOIN axis.topic t ON t.key = ct.topic
    JOIN directus_collections dc ON dc.collection = ct.collection
    LEFT JOIN axis.topic same_axis ON same_axis.directus_folder = dc."group" AND same_axis.axis = t.axis
    LEFT JOIN (
        SELECT DISTINCT ON (r.directus_folder) r.directus_folder, r.key, r.axis
        FROM axis.topic r
        WHERE r.directus_folder IS NOT NULL
        ORDER BY r.directus_folder, r.key
    ) any_axis ON any_axis.directus_folder = dc."group"
) x
LEFT JOIN axis.reconcile_decision keep
       ON keep.collection = x.collection AND keep.topic = x.topic
      AND keep.decision = 'keep_topic' AND keep.reconcile_flag = x.reconcile_flag
LEFT JOIN axis.reconcile_decision ex
       ON ex.collection = x.collection AND ex.topic IS NULL AND ex.decision = 'exempt';

CREATE OR REPLACE VIEW axis.v_projection_gap AS
SELECT g.collection, g.role, g.folder
FROM axis.v_governed_collection g
WHERE NOT g.projected AND NOT g.exempt;

-- The finding view reads v_governed_collection once (g) and the reconcile view
-- once, so that a scan costs two passes over Directus's metadata in all; its gap
-- conditions are those of the gap views above. (Whether the payload still
-- hashes to its payload_sha256 is a verify concern and a gate condition, not a
-- finding: hashing the payload on every read would cost more than the rest.)
CREATE VIEW axis.v_governance_finding AS
WITH named AS (
    SELECT a.collection, min(a.owner) AS owner, min(a.topic) AS topic
    FROM os_proposals p
    CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'anchors') AS a(collection text, owner text, topic text)
    WHERE p.key = 'OS-AXIS' AND a.collection IS NOT NULL
    GROUP BY a.collection
),
-- every user collection, every payload name and every owned name, once: a
-- payload name with no collection is dangling, an owner with none is orphaned
-- (FULL JOINs in the one pass, rather than anti joins against it)
g AS MATERIALIZED (
    SELECT coalesce(g.collection, n.collection, o.collection) AS collection,
           g.collection IS NOT NULL AS present,
           g.role, g.container, g.field_count, coalesce(g.exempt, false) AS exempt, g.owner, g.assigned, g.projected,
           n.collection IS NOT NULL AS named, n.owner AS named_owner, n.topic AS named_topic,
           o.owner AS recorded_owner
    FROM axis.v_governed_collection g
    FULL JOIN named n ON n.collection = g.collection
    FULL JOIN (SELECT collection, owner FROM axis.ownership WHERE tag NOT LIKE 'RELEASED#%') o ON o.collection = coalesce(g.collection, n.collection)
)
SELECT 'payload_dangling:' || g.collection AS key, g.collection, 'critical'::text AS severity, false AS emittable,
       format('proposal OS-AXIS names %L as an anchor (owner %L, topic %L), but this Directus database has no collection of that name',
              g.collection, g.named_owner, g.named_topic) AS detail
FROM g
WHERE NOT g.present AND g.named
UNION ALL
SELECT 'owner_gap:' || g.collection, g.collection, 'critical', false,
       format('anchor %L (%s fields) has no owner; proposal OS-AXIS names owner %L (tier 2 seeds it)', g.collection, g.field_count, g.named_owner)
FROM g
WHERE g.present AND g.role = 'anchor' AND g.owner IS NULL AND NOT g.exempt AND g.named
UNION ALL
SELECT 'candidate:' || g.collection, g.collection, 'warning', true,
       format('%s collection %L%s is not governed: it has no owner and proposal OS-AXIS does not name it',
              g.role, g.collection, CASE WHEN g.container IS NOT NULL THEN format(' (contained in %L)', g.container) ELSE '' END)
FROM g
WHERE g.present AND g.owner IS NULL AND NOT g.exempt AND NOT g.named
UNION ALL
SELECT 'containment_gap:' || g.collection, g.collection, 'critical', false,
       format('contained collection %L (in %L) is owned but has no containment assignment (tier 3 assigns it)', g.collection, g.container)
FROM g
WHERE g.present AND g.role = 'contained' AND NOT g.assigned AND NOT g.exempt AND (g.owner IS NOT NULL OR g.named)
UNION ALL
SELECT 'projection_gap:' || g.collection, g.collection, 'critical', false,
       format('%s %L has no active topic on a ratified axis (tiers 3 and 4 project it)', g.role, g.collection)
FROM g
WHERE g.present AND NOT g.projected AND NOT g.exempt AND (g.owner IS NOT NULL OR g.named)
UNION ALL
SELECT 'orphaned_ownership:' || g.collection, g.collection, 'warning', true,
       format('ownership of %L (owner %L) names no Directus collection: it was dropped or renamed', g.collection, g.recorded_owner)
FROM g
WHERE NOT g.present AND g.recorded_owner IS NOT NULL
UNION ALL
SELECT CASE r.reconcile_flag WHEN 'divergent' THEN 'divergent:' ELSE 'reconcile_pending:' END || r.collection || '/' || r.topic,
       r.collection,
       CASE r.reconcile_flag WHEN 'divergent' THEN 'warning' ELSE 'info' END,
       r.reconcile_flag = 'divergent',
       CASE r.reconcile_flag
           WHEN 'divergent' THEN format('%L is in folder %L, the label of topic %L, but its topic is %L on the same axis %L: move it, or decide',
                                        r.collection, r.folder, r.label_topic, r.topic, r.axis)
           ELSE format('%L (topic %L) is %s%s; undecided (tier 4 decides)', r.collection, r.topic, r.reconcile_flag,
                       CASE WHEN r.label_topic IS NOT NULL THEN format(' to folder %L, label of %L on axis %L', r.folder, r.label_topic, r.label_axis) ELSE '' END)
       END
FROM axis.v_reconcile_collection_topic_vs_label r
WHERE r.reconcile_flag <> 'match' AND NOT r.decided;

COMMENT ON VIEW axis.v_governance_finding IS
    'one row per governance finding (key, collection, severity critical|warning|info, emittable, detail): the read view a UI or API serves';

-- The scan, decision- and finding-aware: tier 5's function replaced (tier 99
-- restores it). One pass over every collection, payload name and owner gives
-- the plan's metrics, the candidates and the counts of v_governance_finding
-- (critical, emittable): the conditions below are those of the gap views and
-- of the finding view above, counted instead of listed, so that a scan reads
-- Directus's metadata once (under 2 s at 65,000 collections).
CREATE OR REPLACE FUNCTION axis.fn_governance_scan() RETURNS axis.scan_run
LANGUAGE plpgsql
-- Directus's tables resolve as they did when the tier ran (its schema)
SET search_path FROM CURRENT
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
    WITH named AS (
        SELECT a.collection, min(a.owner) AS owner
        FROM os_proposals p
        CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'anchors') AS a(collection text, owner text)
        WHERE p.key = 'OS-AXIS' AND a.collection IS NOT NULL
        GROUP BY a.collection
    ),
    g AS (
        SELECT g.collection, g.role, g.field_count, g.exempt, g.owner, g.assigned, g.projected, n.collection IS NOT NULL AS named
        FROM axis.v_governed_collection g
        LEFT JOIN named n ON n.collection = g.collection
    ),
    r AS (
        SELECT count(DISTINCT r.collection) AS divergent, count(*) FILTER (WHERE r.reconcile_flag = 'divergent') AS divergent_findings
        FROM axis.v_reconcile_collection_topic_vs_label r
        WHERE r.reconcile_flag <> 'match' AND NOT r.decided
    )
    SELECT jsonb_build_object(
               'axis_tables',     (SELECT count(*) FROM pg_catalog.pg_class c
                                    WHERE c.relnamespace = 'axis'::regnamespace AND c.relkind IN ('r', 'p')),
               'owner_gap',       coalesce(sum(g.field_count) FILTER (WHERE g.role = 'anchor' AND g.owner IS NULL AND NOT g.exempt), 0),
               'containment_gap', count(*) FILTER (WHERE g.role = 'contained' AND NOT g.assigned AND NOT g.exempt),
               'divergent',       min(r.divergent),
               'projection_gap',  count(*) FILTER (WHERE NOT g.projected AND NOT g.exempt),
               -- payload_dangling: payload names that are no collection (every collection is in g once)
               'critical',        (SELECT count(*) FROM named) - count(*) FILTER (WHERE g.named)
                                + count(*) FILTER (WHERE g.role = 'anchor' AND g.owner IS NULL AND NOT g.exempt AND g.named)     -- owner_gap
                                + count(*) FILTER (WHERE g.role = 'contained' AND NOT g.assigned AND NOT g.exempt
                                                     AND (g.owner IS NOT NULL OR g.named))                                     -- containment_gap
                                + count(*) FILTER (WHERE NOT g.projected AND NOT g.exempt AND (g.owner IS NOT NULL OR g.named)), -- projection_gap
               'emittable',       count(*) FILTER (WHERE g.owner IS NULL AND NOT g.exempt AND NOT g.named)                     -- candidate
                                -- orphaned_ownership: owners of no collection (ownership is keyed by collection)
                                + (SELECT count(*) FROM axis.ownership WHERE tag NOT LIKE 'RELEASED#%') - count(*) FILTER (WHERE g.owner IS NOT NULL)
                                + min(r.divergent_findings)),                                                                  -- divergent
           count(*) FILTER (WHERE g.owner IS NULL AND NOT g.exempt),
           (array_agg(g.collection ORDER BY g.collection COLLATE "C") FILTER (WHERE g.owner IS NULL AND NOT g.exempt))[1:100]
      INTO metrics, n, sample
      FROM g CROSS JOIN r;

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
