-- Tier 98 — Rollback of one amendment: what tiers 4, 3, 2 wrote for the
-- current payload of proposal OS-AXIS, amendment N (in that order)
--
-- What:   an amendment is a payload with "amendment": N (tiergate propose
--         writes it, with "amends": the sha256 of the payload it amends);
--         what its entries brought ("added_in": N) tiers 2, 3 and 4 tag
--         PROD_T2#N / PROD_T3#N / PROD_T4#N, the owners it released are
--         tagged RELEASED#N:<tag>, and the topics, containment assignments and
--         reconcile decisions it released (of collections Directus no longer
--         has) were deleted as its "released" list records them (entries with
--         "added_in": N). This file reverts exactly that:
--         reverts 4: statuses it changed go back to previous_status; its
--         reconcile decisions are deleted;
--         reverts 3: its collection_topic, containment ownership,
--         containment_assignment, topic and axis rows are deleted;
--         reverts 2: its anchor owners are deleted; the owners it released
--         get their tag back; the rows it released, and the released
--         owners it dropped ("returned"), are written back.
--         What the first payload and other amendments wrote stays: the
--         findings amendment N closed come back.
-- Gate:   none (rollback is never gated).
-- Post:   none of the amendment's rows remain, asserted at the end in the same
--         transaction (tiergate.yaml: amendment_rows = 0).
-- Revert: apply again (the gated tiers are pending for this payload once more).
--         The whole rollout: tier 99.

-- only an amendment can be reverted alone: the first payload is reverted by tier 99
DO $amendment$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM os_proposals p WHERE p.key = 'OS-AXIS' AND jsonb_typeof(p.payload -> 'amendment') = 'number') THEN
        RAISE EXCEPTION 'tier 98 refused: the current payload of proposal OS-AXIS is not an amendment (it has no "amendment": N)'
            USING ERRCODE = 'TG004',
                  HINT = 'tier 98 reverts one amendment; the rollout itself is reverted by tier 99 (tiergate rollback)';
    END IF;
END
$amendment$;

-- revert 4: statuses back, decisions deleted (the table is tier 6's: it may be gone after tier 99)
UPDATE axis.topic t SET status = t.previous_status, previous_status = NULL, status_tag = NULL
  FROM os_proposals p
 WHERE p.key = 'OS-AXIS' AND t.status_tag = 'PROD_T4#' || (p.payload ->> 'amendment');
UPDATE axis.axis x SET status = x.previous_status, previous_status = NULL, status_tag = NULL
  FROM os_proposals p
 WHERE p.key = 'OS-AXIS' AND x.status_tag = 'PROD_T4#' || (p.payload ->> 'amendment');
DO $decisions$
BEGIN
    IF to_regclass('axis.reconcile_decision') IS NOT NULL THEN
        DELETE FROM axis.reconcile_decision d USING os_proposals p
         WHERE p.key = 'OS-AXIS' AND d.tag = 'PROD_T4#' || (p.payload ->> 'amendment');
    END IF;
END
$decisions$;

-- revert 3, then 2: the amendment's rows deleted (what refers to a topic or an axis first)
DELETE FROM axis.collection_topic x USING os_proposals p
 WHERE p.key = 'OS-AXIS' AND x.tag = 'PROD_T3#' || (p.payload ->> 'amendment');
DELETE FROM axis.containment_assignment x USING os_proposals p
 WHERE p.key = 'OS-AXIS' AND x.tag = 'PROD_T3#' || (p.payload ->> 'amendment');
DELETE FROM axis.ownership x USING os_proposals p
 WHERE p.key = 'OS-AXIS' AND x.tag IN ('PROD_T3#' || (p.payload ->> 'amendment'), 'PROD_T2#' || (p.payload ->> 'amendment'));
DELETE FROM axis.topic x USING os_proposals p
 WHERE p.key = 'OS-AXIS' AND x.tag = 'PROD_T3#' || (p.payload ->> 'amendment');
DELETE FROM axis.axis x USING os_proposals p
 WHERE p.key = 'OS-AXIS' AND x.tag = 'PROD_T3#' || (p.payload ->> 'amendment');

-- the rows it released are written back as its payload's "released" list
-- records them (tiers 3 and 4 deleted them), for collections Directus still
-- does not have (in the role they were written for)
WITH released AS (
    SELECT e.collection, e.role, t.topic, t.basis, t.tag
    FROM os_proposals p
    CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'released') AS e(collection text, role text, topics jsonb, added_in integer)
    CROSS JOIN LATERAL jsonb_to_recordset(coalesce(e.topics, '[]')) AS t(topic text, basis text, tag text)
    WHERE p.key = 'OS-AXIS' AND e.added_in::text = p.payload ->> 'amendment'
)
INSERT INTO axis.collection_topic (collection, topic, basis, tag)
SELECT r.collection, r.topic, r.basis, r.tag FROM released r
 WHERE NOT EXISTS (SELECT 1 FROM axis.v_governed_collection g WHERE g.collection = r.collection AND (r.role IS NULL OR g.role = r.role))
ON CONFLICT DO NOTHING;
WITH released AS (
    SELECT e.collection, e.role, a.container, a.anchor, a.rule, a.tag
    FROM os_proposals p
    CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'released') AS e(collection text, role text, assignment jsonb, added_in integer)
    CROSS JOIN LATERAL jsonb_to_record(e.assignment) AS a(container text, anchor text, rule text, tag text)
    WHERE p.key = 'OS-AXIS' AND e.added_in::text = p.payload ->> 'amendment' AND jsonb_typeof(e.assignment) = 'object'
)
INSERT INTO axis.containment_assignment (collection, container, anchor, rule, tag)
SELECT r.collection, r.container, r.anchor, r.rule, r.tag FROM released r
 WHERE NOT EXISTS (SELECT 1 FROM axis.v_governed_collection g WHERE g.collection = r.collection AND (r.role IS NULL OR g.role = r.role))
ON CONFLICT DO NOTHING;
DO $released_decisions$
BEGIN
    IF to_regclass('axis.reconcile_decision') IS NOT NULL THEN
        WITH released AS (
            SELECT e.collection, e.role, d.topic, d.reconcile_flag, d.decision, d.rationale, d.tag
            FROM os_proposals p
            CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'released') AS e(collection text, role text, decisions jsonb, added_in integer)
            CROSS JOIN LATERAL jsonb_to_recordset(coalesce(e.decisions, '[]')) AS d(topic text, reconcile_flag text, decision text, rationale text, tag text)
            WHERE p.key = 'OS-AXIS' AND e.added_in::text = p.payload ->> 'amendment'
        )
        INSERT INTO axis.reconcile_decision (collection, topic, reconcile_flag, decision, rationale, tag)
        -- (every one: a decision tier 4 did not delete is there, and stays)
        SELECT r.collection, r.topic, r.reconcile_flag, r.decision, r.rationale, r.tag FROM released r
        ON CONFLICT DO NOTHING;
    END IF;
END
$released_decisions$;

-- the released owners it dropped (their collection was back: its "returned"
-- list records them) are written back, where the collection has no owner now
INSERT INTO axis.ownership (collection, owner, basis, tag)
SELECT DISTINCT ON (e.collection) e.collection, e.owner, e.basis, e.tag
FROM os_proposals p
CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'returned') AS e(collection text, owner text, basis text, tag text, added_in integer)
WHERE p.key = 'OS-AXIS' AND e.added_in::text = p.payload ->> 'amendment'
ORDER BY e.collection
ON CONFLICT (collection) DO NOTHING;

-- the owners it released own again
UPDATE axis.ownership x SET tag = substr(x.tag, length('RELEASED#' || (p.payload ->> 'amendment') || ':') + 1)
  FROM os_proposals p
 WHERE p.key = 'OS-AXIS' AND starts_with(x.tag, 'RELEASED#' || (p.payload ->> 'amendment') || ':');

ANALYZE axis.ownership, axis.collection_topic, axis.containment_assignment, axis.topic, axis.axis;

-- Post-condition: nothing of the amendment remains (tags ending #N, owners released by N)
DO $post$
DECLARE
    left_over text;
BEGIN
    WITH n AS (SELECT payload ->> 'amendment' AS n FROM os_proposals WHERE key = 'OS-AXIS'),
    counts AS (
        SELECT 'axis.axis' AS t, count(*) AS c FROM axis.axis x, n WHERE x.tag ~ ('#' || n.n || '$') OR x.status_tag ~ ('#' || n.n || '$')
        UNION ALL SELECT 'axis.topic', count(*) FROM axis.topic x, n WHERE x.tag ~ ('#' || n.n || '$') OR x.status_tag ~ ('#' || n.n || '$')
        UNION ALL SELECT 'axis.collection_topic', count(*) FROM axis.collection_topic x, n WHERE x.tag ~ ('#' || n.n || '$')
        UNION ALL SELECT 'axis.ownership', count(*) FROM axis.ownership x, n WHERE x.tag ~ ('#' || n.n || '$') OR starts_with(x.tag, 'RELEASED#' || n.n || ':')
        UNION ALL SELECT 'axis.containment_assignment', count(*) FROM axis.containment_assignment x, n WHERE x.tag ~ ('#' || n.n || '$')
    )
    SELECT string_agg(t || '=' || c, ', ') INTO left_over FROM counts WHERE c > 0;
    IF left_over IS NOT NULL THEN
        RAISE EXCEPTION 'tier 98 post-condition failed: rows of the amendment remain (%)', left_over USING ERRCODE = 'TG002';
    END IF;
    -- and what it released is back: every topic it recorded, of a collection Directus still does not have
    SELECT string_agg(DISTINCT e.collection, ', ') INTO left_over
      FROM os_proposals p
      CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'released') AS e(collection text, role text, topics jsonb, added_in integer)
      CROSS JOIN LATERAL jsonb_to_recordset(coalesce(e.topics, '[]')) AS t(topic text, basis text, tag text)
     WHERE p.key = 'OS-AXIS' AND e.added_in::text = p.payload ->> 'amendment'
       AND NOT EXISTS (SELECT 1 FROM axis.collection_topic x WHERE x.collection = e.collection AND x.topic = t.topic AND x.basis = t.basis AND x.tag = t.tag)
       AND NOT EXISTS (SELECT 1 FROM axis.v_governed_collection g WHERE g.collection = e.collection AND (e.role IS NULL OR g.role = e.role));
    IF left_over IS NOT NULL THEN
        RAISE EXCEPTION 'tier 98 post-condition failed: topics the amendment released are not back (%)', left_over USING ERRCODE = 'TG002';
    END IF;
END
$post$;
