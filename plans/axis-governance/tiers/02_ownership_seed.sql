-- Tier 2 — Ownership seed (data, GATED on ospa >= 1)
--
-- What:   one axis.ownership row (basis 'anchor', tag PROD_T2) per anchor the
--         approved proposal names, with the proposal's owner. Anchors come from
--         this database's own metadata (axis.v_governed_collection). The
--         payload must fit this database, or nothing is written: every anchor
--         it names is a collection of this database that is not contained in
--         another, named once, with an owner (else SQLSTATE TG003 names each
--         entry and why).
-- Gate:   ospa >= 1: accountable approvals of the current payload (guard below,
--         the same definition as tiergate.yaml; the engine checks it too).
-- Post:   owner_gap = 0, asserted at the end in the same transaction: every
--         anchor of this database has an owner, so an anchor the proposal
--         forgot aborts the tier and nothing is written.
-- Revert: not reverted by tier 99 (kept, as the seed's base packages keep it).
--         Tier 98 reverts one amendment (its PROD_T2#N rows, its releases).
--         By hand: DELETE FROM axis.ownership WHERE tag ~ '^PROD_T2(#|$)';

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
        RAISE EXCEPTION 'tiergate gate ospa is closed (% < 1): tier 2 refused', ospa
            USING ERRCODE = 'TG001',
                  HINT = 'tier 2 writes only once an active administrator who is not its author has approved the current payload of proposal OS-AXIS (in Directus, or tiergate approve)';
    END IF;
END
$guard$;

-- The payload's anchors must fit this database before anything is written
-- from them (set-based: the payload and the metadata are read once).
DO $payload$
DECLARE
    bad   text;
    found integer;
BEGIN
    WITH named AS (
        SELECT a.collection, a.owner, a.ord
        FROM os_proposals p
        CROSS JOIN LATERAL ROWS FROM (jsonb_to_recordset(p.payload -> 'anchors') AS (collection text, owner text)) WITH ORDINALITY AS a(collection, owner, ord)
        WHERE p.key = 'OS-AXIS'
    ),
    problems AS (
        SELECT e.ord, CASE
                   WHEN e.collection IS NULL OR e.collection = '' THEN format('anchor entry %s names no collection', e.ord)
                   WHEN g.collection IS NULL THEN format('%L is not a collection of this Directus database (no directus_collections row with a table)', e.collection)
                   WHEN g.role = 'contained' THEN format('%L is contained in %L (a junction, translations or composition child): it takes its container''s owner, so it cannot be an anchor', e.collection, g.container)
                   WHEN e.owner IS NULL OR btrim(e.owner) = '' THEN format('anchor %L has no owner', e.collection)
                   WHEN count(*) OVER (PARTITION BY e.collection) > 1 THEN format('anchor %L is named %s times', e.collection, count(*) OVER (PARTITION BY e.collection))
               END AS problem
        FROM named e
        LEFT JOIN axis.v_governed_collection g ON g.collection = e.collection
    )
    SELECT count(*), string_agg(problem, '; ' ORDER BY ord) INTO found, bad FROM problems WHERE problem IS NOT NULL;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'tier 2 refused: proposal OS-AXIS does not fit this Directus database (% problem%): %', found, CASE WHEN found = 1 THEN '' ELSE 's' END, left(bad, 900)
            USING ERRCODE = 'TG003',
                  HINT = 'the proposal must name this database''s own anchors: correct the payload (a new proposal needs new approvals), or rehearse against the right database';
    END IF;
END
$payload$;

-- Amendments. A payload with "amendment": N amends an earlier one (propose
-- writes it, with "amends": that payload's sha256); its anchor entries
-- carry "added_in": the amendment that added them (none: the first payload).
-- Every row is tagged from the payload alone — PROD_T2, or PROD_T2#N for an
-- anchor added in amendment N — so the same payload always writes the same
-- rows, and tier 98 reverts amendment N alone. An owner (of an anchor or of
-- a contained collection) whose collection Directus no longer has, and which
-- the payload no longer names, is released by amendment N: re-tagged
-- RELEASED#N:<its tag>, owning nothing (tier 98 restores it). A released row
-- whose collection is back is dropped first; so is, as the payload's
-- "returned" list records it (tier 98 writes it back), the owner a contained
-- collection had when Directus no longer relates it to its container (an
-- anchor now, which the payload names), and the owner an anchor had when
-- Directus now contains it (tier 3 gives it its container's owner).
DELETE FROM axis.ownership o
 WHERE o.tag LIKE 'RELEASED#%'
   AND EXISTS (SELECT 1 FROM axis.v_governed_collection g WHERE g.collection = o.collection);

DELETE FROM axis.ownership o
 USING os_proposals p
 CROSS JOIN LATERAL jsonb_to_recordset(p.payload -> 'returned') AS e(collection text, owner text, basis text, tag text)
 WHERE p.key = 'OS-AXIS'
   AND o.collection = e.collection AND o.owner = e.owner AND o.basis = e.basis AND o.tag = e.tag
   AND CASE o.basis
         WHEN 'containment' THEN EXISTS (SELECT 1 FROM jsonb_to_recordset(p.payload -> 'anchors') AS a(collection text, owner text) WHERE a.collection = o.collection AND a.owner IS NOT NULL)
                             AND EXISTS (SELECT 1 FROM axis.v_governed_collection g WHERE g.collection = o.collection AND g.role = 'anchor')
         ELSE NOT EXISTS (SELECT 1 FROM jsonb_to_recordset(p.payload -> 'anchors') AS a(collection text) WHERE a.collection = o.collection)
              AND EXISTS (SELECT 1 FROM axis.v_governed_collection g WHERE g.collection = o.collection AND g.role = 'contained')
       END;

UPDATE axis.ownership o
   SET tag = 'RELEASED#' || (p.payload ->> 'amendment') || ':' || o.tag
  FROM os_proposals p
 WHERE p.key = 'OS-AXIS'
   AND p.payload ? 'amendment'
   AND o.tag NOT LIKE 'RELEASED#%'
   AND NOT EXISTS (SELECT 1 FROM axis.v_governed_collection g WHERE g.collection = o.collection)
   AND NOT EXISTS (SELECT 1 FROM jsonb_to_recordset(p.payload -> 'anchors') AS a(collection text) WHERE a.collection = o.collection);

INSERT INTO axis.ownership (collection, owner, basis, tag)
SELECT DISTINCT ON (g.collection) g.collection, a.owner, 'anchor', 'PROD_T2' || coalesce('#' || a.added_in, '')
FROM os_proposals p
CROSS JOIN LATERAL ROWS FROM (jsonb_to_recordset(p.payload -> 'anchors') AS (collection text, owner text, added_in integer)) WITH ORDINALITY AS a(collection, owner, added_in, n)
JOIN axis.v_governed_collection g ON g.collection = a.collection AND g.role = 'anchor' AND NOT g.exempt
WHERE p.key = 'OS-AXIS'
  AND a.owner IS NOT NULL
ORDER BY g.collection, a.n
ON CONFLICT (collection) DO NOTHING;

-- statistics follow the rows (see tier 3)
ANALYZE axis.ownership;

-- Post-condition: owner_gap = 0
DO $post$
DECLARE
    gap     bigint;
    anchors bigint;
    sample  text;
BEGIN
    SELECT coalesce(sum(field_count), 0), count(*), string_agg(collection, ', ' ORDER BY collection)
      INTO gap, anchors, sample
      FROM axis.v_owner_gap;
    IF gap <> 0 THEN
        RAISE EXCEPTION 'tier 2 post-condition owner_gap = 0 failed: owner_gap = % (% without an owner: %)',
                        gap, CASE WHEN anchors = 1 THEN '1 anchor' ELSE anchors || ' anchors' END, left(sample, 400)
            USING ERRCODE = 'TG002',
                  HINT = 'every anchor needs an owner in the payload of OS-AXIS; a new proposal must name the anchors listed';
    END IF;
    -- an anchor Directus has no field rows for (a table registered as it was: "configure unmanaged collection")
    -- adds nothing to owner_gap, which counts field rows: it is named here all the same
    IF anchors <> 0 THEN
        RAISE EXCEPTION 'tier 2 post-condition failed: % without an owner (no field rows in Directus, so owner_gap does not count %): %',
                        CASE WHEN anchors = 1 THEN '1 anchor' ELSE anchors || ' anchors' END, CASE WHEN anchors = 1 THEN 'it' ELSE 'them' END, left(sample, 400)
            USING ERRCODE = 'TG002',
                  HINT = 'every anchor needs an owner in the payload of OS-AXIS; a new proposal must name the anchors listed';
    END IF;
END
$post$;
