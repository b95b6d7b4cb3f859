-- Tier 1 — Base axis substrate (structure)
--
-- What:   creates schema axis with 6 empty tables (axis, topic, collection_topic,
--         ownership, containment_rule, containment_assignment) and the 5 base
--         views that show the honest gaps of this Directus database:
--         v_governed_collection, v_owner_gap, v_containment_gap,
--         v_reconcile_collection_topic_vs_label, v_projection_gap.
--         Everything is derived from Directus's own metadata
--         (directus_collections / directus_fields / directus_relations);
--         no collection is named here.
-- Gate:   none (structure, ratification-independent).
-- Post:   axis_tables = 6.
-- Revert: not reverted by tier 99 (kept). By hand, on a database where no
--         later tier ran: DROP SCHEMA axis CASCADE.
--
-- Derived notions (../../../shared/design/axis-governance.md):
--   user collection  a directus_collections row with a table (relkind r/p) in
--                    the schema of directus_collections, name not 'directus_%', and not
--                    the governance's own os_proposals / os_proposal_approvals.
--   contained        a user collection that is the many_collection of a
--                    relation with junction_field set (M2M, translations) or
--                    one_deselect_action = 'delete' (composition), whose
--                    one_collection is another user collection: its container,
--                    preferring relations with one_field set, then the
--                    smallest relation id. `anchor` follows containers up to
--                    the first collection that is not contained.
--   anchor           a user collection that is not contained.
--   label            the collection's Directus folder (directus_collections.group);
--                    a topic with directus_folder = F is the label rule of F.
--
-- The views keep one column set from tier 1 on; tier 6 replaces their
-- definitions with decision-aware ones (CREATE OR REPLACE), tier 99 restores
-- these. Columns tier 6 fills are constant here (exempt = false, decision = NULL,
-- decided = false).

CREATE SCHEMA axis;
COMMENT ON SCHEMA axis IS 'axis governance substrate (tiergate plan axis-governance)';

CREATE TABLE axis.axis (
    key             text PRIMARY KEY,
    label           text NOT NULL,
    status          text NOT NULL DEFAULT 'proposed' CHECK (status IN ('proposed', 'ratified', 'retired')),
    previous_status text,
    status_tag      text,
    tag             text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON COLUMN axis.axis.status_tag IS 'tag of the tier that last changed status; previous_status is the status before it (rollback by tag)';

CREATE TABLE axis.topic (
    key             text PRIMARY KEY,
    axis            text NOT NULL REFERENCES axis.axis (key),
    label           text NOT NULL,
    directus_folder text,
    status          text NOT NULL DEFAULT 'candidate' CHECK (status IN ('candidate', 'active', 'retired')),
    previous_status text,
    status_tag      text,
    tag             text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
-- a folder is the label rule of at most one topic per axis
CREATE UNIQUE INDEX topic_label_rule_key ON axis.topic (directus_folder, axis);
CREATE INDEX topic_axis_idx ON axis.topic (axis);

CREATE TABLE axis.collection_topic (
    collection text NOT NULL,
    topic      text NOT NULL REFERENCES axis.topic (key),
    basis      text NOT NULL CHECK (basis IN ('anchor', 'containment')),
    tag        text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (collection, topic)
);
CREATE INDEX collection_topic_topic_idx ON axis.collection_topic (topic);

CREATE TABLE axis.ownership (
    collection text PRIMARY KEY,
    owner      text NOT NULL,
    basis      text NOT NULL CHECK (basis IN ('anchor', 'containment')),
    tag        text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE axis.containment_rule (
    key         text PRIMARY KEY,
    description text NOT NULL,
    tag         text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE axis.containment_assignment (
    collection text PRIMARY KEY,
    container  text NOT NULL,
    anchor     text,
    rule       text NOT NULL REFERENCES axis.containment_rule (key),
    tag        text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX containment_assignment_rule_idx ON axis.containment_assignment (rule);

-- Every user collection, its role and its governance state: the one place the
-- derivation lives (the gap views are filters over it, and the scan reads it
-- once). Set-based: the catalog, relations, field counts and the axis tables
-- are each read once and hash-joined; no correlated subqueries.
CREATE VIEW axis.v_governed_collection AS
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

-- Anchors without an owner; owner_gap = sum(field_count).
CREATE VIEW axis.v_owner_gap AS
SELECT g.collection, g.folder, g.field_count
FROM axis.v_governed_collection g
WHERE g.role = 'anchor' AND g.owner IS NULL;

-- Contained collections without a containment assignment.
CREATE VIEW axis.v_containment_gap AS
SELECT g.collection, g.container, g.anchor, g.folder
FROM axis.v_governed_collection g
WHERE g.role = 'contained' AND NOT g.assigned;

-- Each collection topic against the label of the collection's folder.
CREATE VIEW axis.v_reconcile_collection_topic_vs_label AS
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

-- Governed collections without an active topic on a ratified axis.
CREATE VIEW axis.v_projection_gap AS
SELECT g.collection, g.role, g.folder
FROM axis.v_governed_collection g
WHERE NOT g.projected;
