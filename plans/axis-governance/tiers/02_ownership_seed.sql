-- Tier 2 — Ownership seed (data, GATED on ospa >= 1)
--
-- What:   one axis.ownership row (basis 'anchor', tag PROD_T2) per anchor the
--         approved proposal names, with the proposal's owner. Anchors come from
--         this database's own metadata (axis.v_governed_collection); payload
--         entries naming no anchor are left to v_governance_finding.
-- Gate:   ospa >= 1 (guard below; the engine checks it too).
-- Post:   owner_gap = 0, asserted at the end in the same transaction: every
--         anchor of this database has an owner, so an anchor the proposal
--         forgot aborts the tier and nothing is written.
-- Revert: not reverted by tier 99 (kept, as the seed's base packages keep it).
--         By hand: DELETE FROM axis.ownership WHERE tag = 'PROD_T2';

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
        RAISE EXCEPTION 'tiergate gate ospa is closed (% < 1): tier 2 refused', ospa
            USING ERRCODE = 'TG001',
                  HINT = 'tier 2 writes only once proposal OS-AXIS is approved: an os_proposal_approvals row carrying its current payload_sha256';
    END IF;
END
$guard$;

INSERT INTO axis.ownership (collection, owner, basis, tag)
SELECT DISTINCT ON (g.collection) g.collection, a.owner, 'anchor', 'PROD_T2'
FROM os_proposals p
CROSS JOIN LATERAL ROWS FROM (jsonb_to_recordset(p.payload -> 'anchors') AS (collection text, owner text)) WITH ORDINALITY AS a(collection, owner, n)
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
        RAISE EXCEPTION 'tier 2 post-condition owner_gap = 0 failed: owner_gap = % (% anchors without owner: %)',
                        gap, anchors, left(sample, 400)
            USING ERRCODE = 'TG002',
                  HINT = 'every anchor needs an owner in the payload of OS-AXIS; a new proposal must name the anchors listed';
    END IF;
END
$post$;
