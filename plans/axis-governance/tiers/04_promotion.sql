-- Tier 4 — Promotion (data, GATED on ospa >= 1)
--
-- What:   reconcile decisions re-derived from THIS database: one 'keep_topic'
--         decision (tag PROD_T4) per undecided orthogonal_facet / no_label_rule
--         flag of axis.v_reconcile_collection_topic_vs_label (a divergent flag
--         is never decided here: it needs a person); then the axes the
--         proposal's anchors are projected on are ratified and their topics
--         activated. Every status changed keeps previous_status and
--         status_tag = 'PROD_T4'.
-- Gate:   ospa >= 1 (guard below; the engine checks it too).
-- Post:   divergent = 0 and projection_gap = 0, asserted at the end in the same
--         transaction (a folder contradicting a topic aborts the tier: nothing
--         is written).
-- Revert: tier 99 sets status back to previous_status where status_tag =
--         'PROD_T4' and drops reconcile_decision (with its PROD_T4 rows).

-- Gate guard: ospa = approvals of proposal OS-AXIS whose payload_sha256 is the
-- proposal's current one (and that one is the hash of its payload). The
-- proposal and its approvals are locked FOR SHARE first, so no approval can be
-- revoked, and the payload cannot change, until this transaction ends.
DO $guard$
DECLARE
    ospa integer;
BEGIN
    PERFORM 1 FROM os_proposals p WHERE p.key = 'OS-AXIS' FOR SHARE;
    PERFORM 1 FROM os_proposal_approvals a JOIN os_proposals p ON p.id = a.proposal
     WHERE p.key = 'OS-AXIS' FOR SHARE OF a;
    SELECT count(*) INTO ospa
      FROM os_proposal_approvals a
      JOIN os_proposals p ON p.id = a.proposal
     WHERE p.key = 'OS-AXIS'
       AND a.payload_sha256 = p.payload_sha256
       AND p.payload_sha256 = encode(sha256(convert_to(p.payload::text, 'UTF8')), 'hex');
    IF ospa < 1 THEN
        RAISE EXCEPTION 'tiergate gate ospa is closed (% < 1): tier 4 refused', ospa
            USING ERRCODE = 'TG001',
                  HINT = 'tier 4 writes only once proposal OS-AXIS is approved: an os_proposal_approvals row carrying its current payload_sha256';
    END IF;
END
$guard$;

INSERT INTO axis.reconcile_decision (collection, topic, reconcile_flag, decision, rationale, tag)
SELECT r.collection, r.topic, r.reconcile_flag, 'keep_topic',
       CASE r.reconcile_flag
           WHEN 'orthogonal_facet' THEN format('folder %L labels topic %L on axis %L, a facet orthogonal to axis %L: keeps topic %L',
                                               r.folder, r.label_topic, r.label_axis, r.axis, r.topic)
           ELSE format('%s has no label rule: keeps topic %L',
                       CASE WHEN r.folder IS NULL THEN 'no folder' ELSE format('folder %L', r.folder) END, r.topic)
       END,
       'PROD_T4'
FROM axis.v_reconcile_collection_topic_vs_label r
WHERE r.reconcile_flag IN ('orthogonal_facet', 'no_label_rule')
  AND NOT r.decided;

-- statistics follow the rows (see tier 3)
ANALYZE axis.reconcile_decision;

-- the projection axes: those the proposal's anchors' topics lie on
UPDATE axis.axis x
   SET previous_status = x.status, status = 'ratified', status_tag = 'PROD_T4'
 WHERE x.status <> 'ratified'
   AND x.key IN (SELECT t.axis
                   FROM os_proposals p
                  CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'topics') AS t(key text, axis text)
                  JOIN LATERAL jsonb_to_recordset(p.payload -> 'anchors') AS a(topic text) ON a.topic = t.key
                  WHERE p.key = 'OS-AXIS');

-- and every topic on those axes
UPDATE axis.topic t
   SET previous_status = t.status, status = 'active', status_tag = 'PROD_T4'
 WHERE t.status <> 'active'
   AND t.axis IN (SELECT pt.axis
                    FROM os_proposals p
                   CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'topics') AS pt(key text, axis text)
                    JOIN LATERAL jsonb_to_recordset(p.payload -> 'anchors') AS a(topic text) ON a.topic = pt.key
                   WHERE p.key = 'OS-AXIS');

ANALYZE axis.axis, axis.topic;

-- Post-conditions: divergent = 0, projection_gap = 0
DO $post$
DECLARE
    n      bigint;
    sample text;
BEGIN
    SELECT count(DISTINCT collection), string_agg(format('%s (%s in folder %s)', collection, reconcile_flag, coalesce(folder, '-')), ', ' ORDER BY collection)
      INTO n, sample
      FROM axis.v_reconcile_collection_topic_vs_label
     WHERE reconcile_flag <> 'match' AND NOT decided;
    IF n <> 0 THEN
        RAISE EXCEPTION 'tier 4 post-condition divergent = 0 failed: divergent = % (%)', n, left(sample, 400)
            USING ERRCODE = 'TG002',
                  HINT = 'a folder contradicts the topic the proposal gives: move the collection or decide it in axis.reconcile_decision';
    END IF;
    SELECT count(*), string_agg(collection, ', ' ORDER BY collection) INTO n, sample FROM axis.v_projection_gap;
    IF n <> 0 THEN
        RAISE EXCEPTION 'tier 4 post-condition projection_gap = 0 failed: projection_gap = % (%)', n, left(sample, 400)
            USING ERRCODE = 'TG002';
    END IF;
END
$post$;
