-- Tier 3 — Axis / topic values + containment (data, GATED on ospa >= 1)
--
-- What:   from the approved proposal OS-AXIS and this database's metadata:
--         the payload's axes (status 'proposed') and topics ('candidate');
--         containment rule CR-CONTAIN; one containment_assignment per
--         contained collection (its container and anchor); one ownership
--         (basis 'containment', its anchor's owner) per contained collection;
--         one collection_topic per governed collection (anchors: the payload's
--         topic; contained collections inherit their anchor's). Every row is
--         tagged PROD_T3. An amendment deletes the topic and containment
--         assignment of a collection Directus no longer has, as its payload's
--         "released" list records them.
-- Gate:   ospa >= 1: accountable approvals of the current payload (guard below,
--         the same definition as tiergate.yaml; the engine checks it too).
-- Post:   containment_gap = 0, asserted at the end in the same transaction.
-- Revert: tier 99 deletes every PROD_T3 row, every amendment's PROD_T3#N too
--         (and so CR-CONTAIN); tier 98 reverts one amendment's PROD_T3#N rows
--         and writes back the rows it released.

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
        RAISE EXCEPTION 'tiergate gate ospa is closed (% < 1): tier 3 refused', ospa
            USING ERRCODE = 'TG001',
                  HINT = 'tier 3 writes only once an active administrator who is not its author has approved the current payload of proposal OS-AXIS (in Directus, or tiergate approve)';
    END IF;
END
$guard$;

-- The payload must be self-consistent before anything is written from it
-- (set-based: the payload is read once per list, never per anchor).
DO $payload$
DECLARE
    bad text;
BEGIN
    WITH p AS (SELECT payload FROM os_proposals WHERE key = 'OS-AXIS'),
         topics AS (SELECT t.key FROM p CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'topics') AS t(key text)),
         anchors AS (SELECT a.collection, a.topic FROM p CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'anchors') AS a(collection text, topic text))
    SELECT string_agg(format('anchor %L names topic %L', a.collection, a.topic), '; ' ORDER BY a.collection)
      INTO bad
      FROM anchors a LEFT JOIN (SELECT DISTINCT key FROM topics) t ON t.key = a.topic
     WHERE t.key IS NULL;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'tier 3 refused: proposal OS-AXIS is inconsistent, topics missing from its payload: %', left(bad, 400)
            USING ERRCODE = 'TG003';
    END IF;
    WITH p AS (SELECT payload FROM os_proposals WHERE key = 'OS-AXIS'),
         axes AS (SELECT x.key FROM p CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'axes') AS x(key text)),
         topics AS (SELECT t.key, t.axis FROM p CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'topics') AS t(key text, axis text))
    SELECT string_agg(format('topic %L names axis %L', t.key, t.axis), '; ' ORDER BY t.key)
      INTO bad
      FROM topics t LEFT JOIN (SELECT DISTINCT key FROM axes) x ON x.key = t.axis
     WHERE x.key IS NULL;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'tier 3 refused: proposal OS-AXIS is inconsistent, axes missing from its payload: %', left(bad, 400)
            USING ERRCODE = 'TG003';
    END IF;
    -- a topic's label rule is a group of this Directus database: a row of
    -- directus_collections that collections are put in (`group`), a folder
    -- or a collection with a table, as Directus allows both (an amendment
    -- keeps a topic whose group Directus deleted since: its label rule then
    -- labels nothing, and the same payload writes the same rows again after
    -- a rollback)
    WITH p AS (SELECT payload FROM os_proposals WHERE key = 'OS-AXIS'),
         topics AS (SELECT t.key, t.directus_folder FROM p CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'topics') AS t(key text, directus_folder text))
    SELECT string_agg(format('topic %L names folder %L, which this Directus database does not have', t.key, t.directus_folder), '; ' ORDER BY t.key)
      INTO bad
      FROM topics t
      LEFT JOIN directus_collections dc ON dc.collection = t.directus_folder
     WHERE t.directus_folder IS NOT NULL AND dc.collection IS NULL
       AND NOT (SELECT p.payload ? 'amendment' FROM p);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'tier 3 refused: proposal OS-AXIS does not fit this Directus database: %', left(bad, 600)
            USING ERRCODE = 'TG003',
                  HINT = 'a topic''s directus_folder must name a folder of this Directus database, or a collection used as one (or be null): correct the payload';
    END IF;
END
$payload$;

-- Amendments (a payload with "amendment": N; propose writes it): every row
-- is tagged from the payload alone — PROD_T3, or PROD_T3#N for what an entry
-- with "added_in": N brought (an axis, a topic, an anchor and the collections
-- contained in it, a contained collection listed in "contained") — so the same payload always writes the same rows, and
-- tier 98 reverts amendment N alone. Only what is missing is written.
-- Released (amendments): the rows of a collection Directus no longer has —
-- or no longer has in the role they were written for ("role": a contained
-- collection Directus no longer relates to its container is an anchor now) —
-- as the payload's "released" list records them (propose records them as
-- they are, with "added_in": N; tier 98 writes amendment N's back), are
-- deleted, and what the payload says of the collection now is written below:
-- a full rollback and re-apply of the same payload gives back this state, and
-- rows that differ from the record (written since) stay.
WITH released AS (
    SELECT e.collection, e.role, t.topic, t.basis, t.tag
    FROM os_proposals p
    CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'released') AS e(collection text, role text, topics jsonb)
    CROSS JOIN LATERAL jsonb_to_recordset(coalesce(e.topics, '[]')) AS t(topic text, basis text, tag text)
    WHERE p.key = 'OS-AXIS'
)
DELETE FROM axis.collection_topic x
 USING released r
 WHERE x.collection = r.collection AND x.topic = r.topic AND x.basis = r.basis AND x.tag = r.tag
   AND NOT EXISTS (SELECT 1 FROM axis.v_governed_collection g WHERE g.collection = x.collection AND (r.role IS NULL OR g.role = r.role));

WITH released AS (
    SELECT e.collection, e.role, a.container, a.anchor, a.rule, a.tag
    FROM os_proposals p
    CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'released') AS e(collection text, role text, assignment jsonb)
    CROSS JOIN LATERAL jsonb_to_record(e.assignment) AS a(container text, anchor text, rule text, tag text)
    WHERE p.key = 'OS-AXIS' AND jsonb_typeof(e.assignment) = 'object'
)
DELETE FROM axis.containment_assignment x
 USING released r
 WHERE x.collection = r.collection AND x.container = r.container AND x.anchor IS NOT DISTINCT FROM r.anchor AND x.rule = r.rule AND x.tag = r.tag
   AND NOT EXISTS (SELECT 1 FROM axis.v_governed_collection g WHERE g.collection = x.collection AND (r.role IS NULL OR g.role = r.role));

INSERT INTO axis.axis (key, label, status, tag)
SELECT x.key, coalesce(x.label, x.key), 'proposed', 'PROD_T3' || coalesce('#' || x.added_in, '')
FROM os_proposals p
CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'axes') AS x(key text, label text, added_in integer)
WHERE p.key = 'OS-AXIS'
ON CONFLICT (key) DO NOTHING;

INSERT INTO axis.topic (key, axis, label, directus_folder, status, tag)
SELECT t.key, t.axis, coalesce(t.label, t.key), t.directus_folder, 'candidate', 'PROD_T3' || coalesce('#' || t.added_in, '')
FROM os_proposals p
CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'topics') AS t(key text, axis text, label text, directus_folder text, added_in integer)
WHERE p.key = 'OS-AXIS'
ON CONFLICT (key) DO NOTHING;

INSERT INTO axis.containment_rule (key, description, tag)
VALUES ('CR-CONTAIN',
        'a collection that is the many side of a junction relation (junction_field set) or of a delete-on-deselect relation '
        'is contained in that relation''s one side: it takes its container''s owner and topic',
        'PROD_T3')
ON CONFLICT (key) DO NOTHING;

-- Statistics follow the rows: each bulk write is followed by an ANALYZE of
-- its table (inside this transaction, so it counts the rows just written),
-- so that the statements, post-conditions and metrics after it are planned
-- for the table as it now is. Without it, a re-apply after tier 99 is planned
-- for statistics of the rows tier 99 deleted (at scale 100: seconds instead
-- of milliseconds for tier 4 and verify).
ANALYZE axis.axis, axis.topic, axis.containment_rule;

WITH anchor_in AS (
    SELECT DISTINCT ON (a.collection) a.collection, a.added_in
    FROM os_proposals p CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'anchors') AS a(collection text, added_in integer)
    WHERE p.key = 'OS-AXIS' ORDER BY a.collection, a.added_in
), contained_in AS (
    SELECT DISTINCT ON (c.collection) c.collection, c.added_in
    FROM os_proposals p CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'contained') AS c(collection text, added_in integer)
    WHERE p.key = 'OS-AXIS' ORDER BY c.collection, c.added_in
)
INSERT INTO axis.containment_assignment (collection, container, anchor, rule, tag)
SELECT c.collection, c.container, c.anchor, 'CR-CONTAIN', 'PROD_T3' || coalesce('#' || coalesce(ci.added_in, ai.added_in), '')
-- the rows of axis.v_containment_gap (tier 6), its filter applied to the
-- governed collections planned on their own (OFFSET 0): pushed into the view,
-- the filter on role left an estimate of one row, and the view's aggregates
-- were rescanned per contained collection (1.3 s at 6,500 collections)
FROM (SELECT g.collection, g.container, g.anchor
        FROM (SELECT * FROM axis.v_governed_collection OFFSET 0) g
       WHERE g.role = 'contained' AND NOT g.assigned AND NOT g.exempt) c
LEFT JOIN contained_in ci ON ci.collection = c.collection
LEFT JOIN anchor_in ai ON ai.collection = c.anchor;

ANALYZE axis.containment_assignment;

-- contained collections take the owner of their anchor (the container's owner)
WITH anchor_in AS (
    SELECT DISTINCT ON (a.collection) a.collection, a.added_in
    FROM os_proposals p CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'anchors') AS a(collection text, added_in integer)
    WHERE p.key = 'OS-AXIS' ORDER BY a.collection, a.added_in
), contained_in AS (
    SELECT DISTINCT ON (c.collection) c.collection, c.added_in
    FROM os_proposals p CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'contained') AS c(collection text, added_in integer)
    WHERE p.key = 'OS-AXIS' ORDER BY c.collection, c.added_in
)
INSERT INTO axis.ownership (collection, owner, basis, tag)
SELECT g.collection, o.owner, 'containment', 'PROD_T3' || coalesce('#' || coalesce(ci.added_in, ai.added_in), '')
FROM axis.v_governed_collection g
JOIN axis.ownership o ON o.collection = g.anchor
LEFT JOIN contained_in ci ON ci.collection = g.collection
LEFT JOIN anchor_in ai ON ai.collection = g.anchor
WHERE g.role = 'contained' AND NOT g.exempt
ON CONFLICT (collection) DO NOTHING;

ANALYZE axis.ownership;

-- every governed collection gets its anchor's payload topic
WITH contained_in AS (
    SELECT DISTINCT ON (c.collection) c.collection, c.added_in
    FROM os_proposals p CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'contained') AS c(collection text, added_in integer)
    WHERE p.key = 'OS-AXIS' ORDER BY c.collection, c.added_in
)
INSERT INTO axis.collection_topic (collection, topic, basis, tag)
SELECT g.collection, a.topic, CASE g.role WHEN 'anchor' THEN 'anchor' ELSE 'containment' END, 'PROD_T3' || coalesce('#' || coalesce(ci.added_in, a.added_in), '')
FROM axis.v_governed_collection g
JOIN (
    SELECT DISTINCT ON (a.collection) a.collection, a.topic, a.added_in
    FROM os_proposals p
    CROSS JOIN LATERAL ROWS FROM (jsonb_to_recordset(p.payload -> 'anchors') AS (collection text, topic text, added_in integer)) WITH ORDINALITY AS a(collection, topic, added_in, n)
    WHERE p.key = 'OS-AXIS' AND a.topic IS NOT NULL
    ORDER BY a.collection, a.n
) a ON a.collection = g.anchor
LEFT JOIN contained_in ci ON ci.collection = g.collection
WHERE NOT g.exempt
ON CONFLICT (collection, topic) DO NOTHING;

ANALYZE axis.collection_topic;

-- Post-condition: containment_gap = 0
DO $post$
DECLARE
    gap    bigint;
    sample text;
BEGIN
    SELECT count(*), string_agg(collection, ', ' ORDER BY collection) INTO gap, sample FROM axis.v_containment_gap;
    IF gap <> 0 THEN
        RAISE EXCEPTION 'tier 3 post-condition containment_gap = 0 failed: containment_gap = % (%)', gap, left(sample, 400)
            USING ERRCODE = 'TG002';
    END IF;
END
$post$;
