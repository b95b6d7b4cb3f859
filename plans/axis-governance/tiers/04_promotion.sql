-- Tier 4 — Promotion (data, GATED on ospa >= 1)
--
-- What:   reconcile decisions re-derived from THIS database: one 'keep_topic'
--         decision (tag PROD_T4) per undecided orthogonal_facet / no_label_rule
--         flag of axis.v_reconcile_collection_topic_vs_label (a divergent flag
--         is decided only when the payload lists it under "decide": a person's
--         decision the approvers approve); then the axes the
--         proposal's anchors are projected on are ratified and their topics
--         activated. Every status changed keeps previous_status and
--         status_tag = 'PROD_T4' ('PROD_T4#N' for what amendment N brought;
--         only what is not decided or active yet is written; a flag an
--         amendment lists under "decide" is tagged with that amendment; the
--         decisions of a collection Directus no longer has, as an amendment's
--         "released" list records them, are deleted).
-- Gate:   ospa >= 1: accountable approvals of the current payload (guard below,
--         the same definition as tiergate.yaml; the engine checks it too).
-- Post:   divergent = 0 and projection_gap = 0, asserted at the end in the same
--         transaction (a folder contradicting a topic aborts the tier: nothing
--         is written).
-- Revert: tier 99 sets status back to previous_status where status_tag is
--         'PROD_T4' or an amendment's 'PROD_T4#N', and drops reconcile_decision
--         (with its rows); tier 98 reverts amendment N's and writes back the
--         decisions it released.

-- Gate guard: ospa = the distinct accountable approvers of proposal OS-AXIS's
-- current payload (tiergate.yaml, gate: the same definition): an approval
-- counts when it approves the payload as it is now and its approver is an
-- active Directus user holding an admin (or the approver) policy who is not
-- the proposal's author. Everything it counts is locked FOR SHARE first: no
-- approval can be revoked, no approver suspended or stripped of a policy, and
-- the payload cannot change, until this transaction ends.
DO $guard$
DECLARE
    ospa integer;
BEGIN
    PERFORM 1 FROM os_proposals p WHERE p.key = 'OS-AXIS' FOR SHARE;
    PERFORM 1 FROM os_proposal_approvals a
     WHERE a.proposal IN (SELECT id FROM os_proposals WHERE key = 'OS-AXIS') FOR SHARE;
    PERFORM 1 FROM directus_users u
     WHERE u.id IN (SELECT a.approver FROM os_proposal_approvals a JOIN os_proposals p ON p.id = a.proposal WHERE p.key = 'OS-AXIS') FOR SHARE;
    PERFORM 1 FROM directus_access ac
     WHERE ac."user" IN (SELECT a.approver FROM os_proposal_approvals a JOIN os_proposals p ON p.id = a.proposal WHERE p.key = 'OS-AXIS')
        OR ac.role IN (SELECT u.role FROM directus_users u JOIN os_proposal_approvals a ON a.approver = u.id JOIN os_proposals p ON p.id = a.proposal WHERE p.key = 'OS-AXIS')
       FOR SHARE;
    PERFORM 1 FROM directus_policies po
     WHERE po.id IN (SELECT ac.policy FROM directus_access ac
                      WHERE ac."user" IN (SELECT a.approver FROM os_proposal_approvals a JOIN os_proposals p ON p.id = a.proposal WHERE p.key = 'OS-AXIS')
                         OR ac.role IN (SELECT u.role FROM directus_users u JOIN os_proposal_approvals a ON a.approver = u.id JOIN os_proposals p ON p.id = a.proposal WHERE p.key = 'OS-AXIS'))
       FOR SHARE;
    SELECT count(DISTINCT a.approver) INTO ospa
      FROM os_proposals p
      JOIN os_proposal_approvals a ON a.proposal = p.id AND a.payload_sha256 = p.payload_sha256
      JOIN directus_users u ON u.id = a.approver AND u.status = 'active'
     WHERE p.key = 'OS-AXIS'
       AND p.payload_sha256 = encode(sha256(convert_to(p.payload::text, 'UTF8')), 'hex')
       AND u.id::text IS DISTINCT FROM (to_jsonb(p) ->> 'user_created')
       AND EXISTS (
           WITH RECURSIVE r(id) AS (SELECT u.role UNION SELECT x.parent FROM directus_roles x JOIN r ON x.id = r.id WHERE x.parent IS NOT NULL)
           SELECT 1 FROM directus_access ac JOIN directus_policies po ON po.id = ac.policy
            WHERE (ac."user" = u.id OR ac.role IN (SELECT id FROM r))
              AND (po.admin_access OR po.id::text IN (coalesce(p.payload ->> 'approver_policy', ''), 'e5a8b6f2-1c3d-4a7e-9f00-7e5700a0e001')));
    IF ospa < 1 THEN
        RAISE EXCEPTION 'tiergate gate ospa is closed (% < 1): tier 4 refused', ospa
            USING ERRCODE = 'TG001',
                  HINT = 'tier 4 writes only once an active administrator who is not its author has approved the current payload of proposal OS-AXIS (in Directus, or tiergate approve)';
    END IF;
END
$guard$;

-- Released (amendments): the reconcile decisions of a collection Directus no
-- longer has (or no longer has in that role), and keep_topic decisions that
-- no longer decide anything (the collection moved: its flag for that topic is
-- another now, or none), as the payload's "released" list records them, are
-- deleted; its flags are decided below as the payload's (tier 98 writes
-- amendment N's back; see tier 3).
WITH released AS (
    SELECT e.collection, e.role, d.topic, d.reconcile_flag, d.decision, d.rationale, d.tag
    FROM os_proposals p
    CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'released') AS e(collection text, role text, decisions jsonb)
    CROSS JOIN LATERAL jsonb_to_recordset(coalesce(e.decisions, '[]')) AS d(topic text, reconcile_flag text, decision text, rationale text, tag text)
    WHERE p.key = 'OS-AXIS'
)
DELETE FROM axis.reconcile_decision x
 USING released r
 WHERE x.collection = r.collection AND x.topic IS NOT DISTINCT FROM r.topic AND x.reconcile_flag IS NOT DISTINCT FROM r.reconcile_flag
   AND x.decision = r.decision AND x.rationale = r.rationale AND x.tag = r.tag
   AND (NOT EXISTS (SELECT 1 FROM axis.v_governed_collection g WHERE g.collection = x.collection AND (r.role IS NULL OR g.role = r.role))
        OR (x.decision = 'keep_topic'
            AND NOT EXISTS (SELECT 1 FROM axis.v_reconcile_collection_topic_vs_label v
                             WHERE v.collection = x.collection AND v.topic = x.topic AND v.reconcile_flag = x.reconcile_flag)));

WITH anchor_in AS (
    SELECT DISTINCT ON (a.collection) a.collection, a.added_in
    FROM os_proposals p CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'anchors') AS a(collection text, added_in integer)
    WHERE p.key = 'OS-AXIS' ORDER BY a.collection, a.added_in
), contained_in AS (
    SELECT DISTINCT ON (c.collection) c.collection, c.added_in
    FROM os_proposals p CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'contained') AS c(collection text, added_in integer)
    WHERE p.key = 'OS-AXIS' ORDER BY c.collection, c.added_in
-- flags an amendment decides (its payload's "decide": a governed collection moved
-- to a folder without a label rule since it was governed): tagged with that
-- amendment, so that tier 98 reverts them with it. A divergent flag is decided
-- only there: a person lists it, the approvers approve keeping its topic.
), decide_in AS (
    SELECT DISTINCT ON (d.collection, d.topic) d.collection, d.topic, d.added_in
    FROM os_proposals p CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'decide') AS d(collection text, topic text, added_in integer)
    WHERE p.key = 'OS-AXIS' ORDER BY d.collection, d.topic, d.added_in
)
INSERT INTO axis.reconcile_decision (collection, topic, reconcile_flag, decision, rationale, tag)
SELECT r.collection, r.topic, r.reconcile_flag, 'keep_topic',
       CASE r.reconcile_flag
           WHEN 'divergent' THEN format('folder %L labels topic %L on the same axis %L: keeps topic %L, as the approved payload decides',
                                        r.folder, r.label_topic, r.axis, r.topic)
           WHEN 'orthogonal_facet' THEN format('folder %L labels topic %L on axis %L, a facet orthogonal to axis %L: keeps topic %L',
                                               r.folder, r.label_topic, r.label_axis, r.axis, r.topic)
           -- (the words of the revisions it replaces: a rehearsal re-applies it on a target that applied one, and must find the same rows)
           ELSE format('%s has no label rule: keeps topic %L',
                       CASE WHEN r.folder IS NULL THEN 'no folder' ELSE format('folder %L', r.folder) END, r.topic)
       END,
       'PROD_T4' || coalesce('#' || coalesce(di.added_in, ci.added_in, ai.added_in), '')
FROM axis.v_reconcile_collection_topic_vs_label r
LEFT JOIN axis.v_governed_collection g ON g.collection = r.collection
LEFT JOIN decide_in di ON di.collection = r.collection AND di.topic = r.topic
LEFT JOIN contained_in ci ON ci.collection = r.collection
LEFT JOIN anchor_in ai ON ai.collection = g.anchor
WHERE (r.reconcile_flag IN ('orthogonal_facet', 'no_label_rule') OR (r.reconcile_flag = 'divergent' AND di.collection IS NOT NULL))
  AND NOT r.decided;

-- statistics follow the rows (see tier 3)
ANALYZE axis.reconcile_decision;

-- the projection axes: those the proposal's anchors' topics lie on
-- (amendments: the status tag is the payload's — PROD_T4, or PROD_T4#N when
-- every anchor on the axis was added by amendments, the first of them N — so
-- the same payload always writes the same rows and tier 98 reverts N alone)
-- (the payload is read once, its status tag computed per axis: a subquery per
-- updated row read it again for each, 2 ms a topic at 3,000 anchors)
UPDATE axis.axis x
   SET previous_status = x.status, status = 'ratified', status_tag = s.status_tag
  FROM (SELECT t.axis, CASE WHEN bool_or(a.added_in IS NULL) THEN 'PROD_T4' ELSE 'PROD_T4#' || min(a.added_in) END AS status_tag
          FROM os_proposals p
         CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'topics') AS t(key text, axis text)
          JOIN LATERAL jsonb_to_recordset(p.payload -> 'anchors') AS a(topic text, added_in integer) ON a.topic = t.key
         WHERE p.key = 'OS-AXIS'
         GROUP BY t.axis) s
 WHERE x.status <> 'ratified'
   AND x.key = s.axis;

-- and every topic on those axes
UPDATE axis.topic t
   SET previous_status = t.status, status = 'active', status_tag = s.status_tag
  FROM (SELECT pt.axis, CASE WHEN bool_or(a.added_in IS NULL) THEN 'PROD_T4' ELSE 'PROD_T4#' || min(a.added_in) END AS status_tag
          FROM os_proposals p
         CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'topics') AS pt(key text, axis text)
          JOIN LATERAL jsonb_to_recordset(p.payload -> 'anchors') AS a(topic text, added_in integer) ON a.topic = pt.key
         WHERE p.key = 'OS-AXIS'
         GROUP BY pt.axis) s
 WHERE t.status <> 'active'
   AND t.axis = s.axis;

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
                  HINT = 'a folder labels another topic than the one the proposal gives: move the collection back in Directus, or keep its topic by listing it under "decide" in the payload (tiergate propose drafts the entry)';
    END IF;
    SELECT count(*), string_agg(collection, ', ' ORDER BY collection) INTO n, sample FROM axis.v_projection_gap;
    IF n <> 0 THEN
        RAISE EXCEPTION 'tier 4 post-condition projection_gap = 0 failed: projection_gap = % (%)', n, left(sample, 400)
            USING ERRCODE = 'TG002';
    END IF;
END
$post$;
