-- Tier 6 — Detector / reconcile / UI-API read views (structure)
--
-- What:   +1 table axis.reconcile_decision; the 5 base views of tier 1
--         replaced by decision-aware definitions (same columns); +1 view
--         axis.v_governance_finding, the one read view a UI or API serves
--         (key, collection, severity, emittable, detail).
--         A decision settles a collection: 'keep_topic' accepts a non-matching
--         reconcile flag for (collection, topic) as long as the flag stays the
--         one decided; 'exempt' takes a collection out of governance (it is
--         listed by v_governed_collection with exempt = true and by no gap).
-- Gate:   none (structure, ratification-independent).
-- Post:   axis_tables = 9.
-- Revert: tier 99 restores the tier-1 view definitions and drops
--         v_governance_finding and reconcile_decision.
--
-- Severity model of v_governance_finding (one row per finding; key = kind:collection):
--   critical  the ratified proposal is not (yet) honoured: it names a collection
--             that does not exist (payload_dangling), its payload no longer
--             matches its payload_sha256 (payload_integrity), a named anchor has
--             no owner (owner_gap), or a collection the rollout has taken on
--             (owned or named) lacks its containment (containment_gap) or an
--             active topic on a ratified axis (projection_gap). Not emittable:
--             the rollout's own tiers close these; verify fails on them.
--   warning   drift a person must act on, emittable (sent as a notification):
--             a collection nobody owns and the proposal does not name
--             (candidate: e.g. created in Directus after the rollout), a folder
--             that contradicts the collection's topic, undecided (divergent),
--             an ownership row whose collection is gone (orphaned_ownership).
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
       ex.collection IS NOT NULL AS exempt
FROM user_collection u
LEFT JOIN containing c ON c.collection = u.collection
LEFT JOIN root r ON r.collection = u.collection
LEFT JOIN field_count fc ON fc.collection = u.collection
LEFT JOIN axis.reconcile_decision ex ON ex.collection = u.collection AND ex.topic IS NULL AND ex.decision = 'exempt';

CREATE OR REPLACE VIEW axis.v_owner_gap AS
SELECT g.collection, g.folder, g.field_count
FROM axis.v_governed_collection g
WHERE g.role = 'anchor'
  AND NOT g.exempt
  AND NOT EXISTS (SELECT 1 FROM axis.ownership o WHERE o.collection = g.collection);

CREATE OR REPLACE VIEW axis.v_containment_gap AS
SELECT g.collection, g.container, g.anchor, g.folder
FROM axis.v_governed_collection g
WHERE g.role = 'contained'
  AND NOT g.exempt
  AND NOT EXISTS (SELECT 1 FROM axis.containment_assignment a WHERE a.collection = g.collection);

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
WHERE NOT g.exempt
  AND NOT EXISTS (
    SELECT 1
    FROM axis.collection_topic ct
    JOIN axis.topic t ON t.key = ct.topic AND t.status = 'active'
    JOIN axis.axis a ON a.key = t.axis AND a.status = 'ratified'
    WHERE ct.collection = g.collection
);

CREATE VIEW axis.v_governance_finding AS
WITH proposal AS (
    SELECT p.payload, p.payload_sha256::text AS payload_sha256,
           encode(sha256(convert_to(p.payload::text, 'UTF8')), 'hex') AS computed_sha256
    FROM os_proposals p
    WHERE p.key = 'OS-AXIS'
),
named AS (
    SELECT DISTINCT ON (a.collection) a.collection, a.owner, a.topic
    FROM proposal p
    CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'anchors') AS a(collection text, owner text, topic text)
    WHERE a.collection IS NOT NULL
    ORDER BY a.collection
),
g AS MATERIALIZED (
    SELECT g.collection, g.role, g.container, g.folder, g.field_count, g.exempt,
           o.owner, n.collection IS NOT NULL AS named, n.owner AS named_owner
    FROM axis.v_governed_collection g
    LEFT JOIN axis.ownership o ON o.collection = g.collection
    LEFT JOIN named n ON n.collection = g.collection
)
SELECT 'payload_dangling:' || n.collection AS key, n.collection, 'critical'::text AS severity, false AS emittable,
       format('proposal OS-AXIS names %L as an anchor (owner %L, topic %L), but this Directus database has no collection of that name',
              n.collection, n.owner, n.topic) AS detail
FROM named n
WHERE NOT EXISTS (SELECT 1 FROM g WHERE g.collection = n.collection)
UNION ALL
SELECT 'payload_integrity:OS-AXIS', NULL, 'critical', false,
       format('proposal OS-AXIS: payload_sha256 is %s but its payload hashes to %s; approvals of it do not count until both agree',
              p.payload_sha256, p.computed_sha256)
FROM proposal p
WHERE p.payload_sha256 <> p.computed_sha256
UNION ALL
SELECT 'owner_gap:' || g.collection, g.collection, 'critical', false,
       format('anchor %L (%s fields) has no owner; proposal OS-AXIS names owner %L (tier 2 seeds it)', g.collection, g.field_count, g.named_owner)
FROM g
WHERE g.role = 'anchor' AND g.named AND g.owner IS NULL AND NOT g.exempt
UNION ALL
SELECT 'candidate:' || g.collection, g.collection, 'warning', true,
       format('%s collection %L%s is not governed: it has no owner and proposal OS-AXIS does not name it',
              g.role, g.collection, CASE WHEN g.container IS NOT NULL THEN format(' (contained in %L)', g.container) ELSE '' END)
FROM g
WHERE g.owner IS NULL AND NOT g.named AND NOT g.exempt
UNION ALL
SELECT 'containment_gap:' || c.collection, c.collection, 'critical', false,
       format('contained collection %L (in %L) is owned but has no containment assignment (tier 3 assigns it)', c.collection, c.container)
FROM axis.v_containment_gap c
JOIN g ON g.collection = c.collection AND (g.owner IS NOT NULL OR g.named)
UNION ALL
SELECT 'projection_gap:' || pg.collection, pg.collection, 'critical', false,
       format('%s %L has no active topic on a ratified axis (tiers 3 and 4 project it)', pg.role, pg.collection)
FROM axis.v_projection_gap pg
JOIN g ON g.collection = pg.collection AND (g.owner IS NOT NULL OR g.named)
UNION ALL
SELECT 'divergent:' || r.collection || '/' || r.topic, r.collection, 'warning', true,
       format('%L is in folder %L, the label of topic %L, but its topic is %L on the same axis %L: move it, or decide',
              r.collection, r.folder, r.label_topic, r.topic, r.axis)
FROM axis.v_reconcile_collection_topic_vs_label r
WHERE r.reconcile_flag = 'divergent' AND NOT r.decided
UNION ALL
SELECT 'reconcile_pending:' || r.collection || '/' || r.topic, r.collection, 'info', false,
       format('%L (topic %L) is %s%s; undecided (tier 4 decides)', r.collection, r.topic, r.reconcile_flag,
              CASE WHEN r.label_topic IS NOT NULL THEN format(' to folder %L, label of %L on axis %L', r.folder, r.label_topic, r.label_axis) ELSE '' END)
FROM axis.v_reconcile_collection_topic_vs_label r
WHERE r.reconcile_flag IN ('orthogonal_facet', 'no_label_rule') AND NOT r.decided
UNION ALL
SELECT 'orphaned_ownership:' || o.collection, o.collection, 'warning', true,
       format('ownership of %L (owner %L) names no Directus collection: it was dropped or renamed', o.collection, o.owner)
FROM axis.ownership o
WHERE NOT EXISTS (SELECT 1 FROM g WHERE g.collection = o.collection);

COMMENT ON VIEW axis.v_governance_finding IS
    'one row per governance finding (key, collection, severity critical|warning|info, emittable, detail): the read view a UI or API serves';
