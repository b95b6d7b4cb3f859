-- Tier 90 — Verify (read-only)
--
-- What:   one assertion per concern, each its own statement, so every failing
--         concern is reported (SQLSTATE TG004, with counts and a few keys):
--         the substrate is complete (tiers 1, 5, 6), the approved payload
--         still hashes to its payload_sha256, no owner gap, no containment
--         gap, nothing divergent, no projection gap, no critical finding, no
--         emittable finding.
-- Gate:   none (read-only; safe in a READ ONLY transaction).
-- Post:   critical = 0 and emittable = 0 (and the four gaps 0).
-- Revert: nothing to revert: it writes nothing.

DO $substrate$
DECLARE
    missing text;
BEGIN
    SELECT string_agg(o, ', ' ORDER BY o) INTO missing
      FROM unnest(ARRAY['axis.v_owner_gap', 'axis.v_containment_gap', 'axis.v_reconcile_collection_topic_vs_label',
                        'axis.v_projection_gap', 'axis.v_governance_finding', 'axis.reconcile_decision', 'axis.scan_run']) AS o
     WHERE to_regclass(o) IS NULL;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'verify: the axis substrate is incomplete, missing %', missing
            USING ERRCODE = 'TG004', HINT = 'apply the structure tiers 1, 5 and 6';
    END IF;
END
$substrate$;

DO $payload_integrity$
DECLARE
    stored text; computed text;
BEGIN
    SELECT payload_sha256::text, encode(sha256(convert_to(payload::text, 'UTF8')), 'hex') INTO stored, computed
      FROM os_proposals WHERE key = 'OS-AXIS';
    IF stored IS DISTINCT FROM computed THEN
        RAISE EXCEPTION 'verify: proposal OS-AXIS has payload_sha256 % but its payload hashes to %: the payload changed after it was approved', stored, computed
            USING ERRCODE = 'TG004';
    END IF;
END
$payload_integrity$;

DO $owner_gap$
DECLARE
    gap bigint; n bigint; sample text;
BEGIN
    IF to_regclass('axis.v_owner_gap') IS NULL THEN RETURN; END IF;  -- reported by the substrate check
    SELECT coalesce(sum(field_count), 0), count(*), string_agg(collection, ', ' ORDER BY collection) INTO gap, n, sample FROM axis.v_owner_gap;
    IF gap <> 0 THEN
        RAISE EXCEPTION 'verify: owner_gap = % (expected 0): % no owner: %', gap, CASE WHEN n = 1 THEN '1 anchor has' ELSE n || ' anchors have' END, left(sample, 300)
            USING ERRCODE = 'TG004';
    END IF;
    -- anchors Directus has no field rows for (a table registered as it was), which owner_gap does not count
    IF n <> 0 THEN
        RAISE EXCEPTION 'verify: % no owner (no field rows in Directus, so owner_gap does not count %): %',
                        CASE WHEN n = 1 THEN '1 anchor has' ELSE n || ' anchors have' END, CASE WHEN n = 1 THEN 'it' ELSE 'them' END, left(sample, 300)
            USING ERRCODE = 'TG004';
    END IF;
END
$owner_gap$;

DO $containment_gap$
DECLARE
    n bigint; sample text;
BEGIN
    IF to_regclass('axis.v_containment_gap') IS NULL THEN RETURN; END IF;
    SELECT count(*), string_agg(collection, ', ' ORDER BY collection) INTO n, sample FROM axis.v_containment_gap;
    IF n <> 0 THEN
        RAISE EXCEPTION 'verify: containment_gap = % (expected 0): %', n, left(sample, 300) USING ERRCODE = 'TG004';
    END IF;
END
$containment_gap$;

DO $divergent$
DECLARE
    n bigint; sample text;
BEGIN
    IF to_regclass('axis.v_reconcile_collection_topic_vs_label') IS NULL THEN RETURN; END IF;
    SELECT count(DISTINCT collection), string_agg(format('%s (%s)', collection, reconcile_flag), ', ' ORDER BY collection) INTO n, sample
      FROM axis.v_reconcile_collection_topic_vs_label
     WHERE reconcile_flag <> 'match' AND NOT decided;
    IF n <> 0 THEN
        RAISE EXCEPTION 'verify: divergent = % (expected 0): %', n, left(sample, 300) USING ERRCODE = 'TG004';
    END IF;
END
$divergent$;

DO $projection_gap$
DECLARE
    n bigint; sample text;
BEGIN
    IF to_regclass('axis.v_projection_gap') IS NULL THEN RETURN; END IF;
    SELECT count(*), string_agg(collection, ', ' ORDER BY collection) INTO n, sample FROM axis.v_projection_gap;
    IF n <> 0 THEN
        RAISE EXCEPTION 'verify: projection_gap = % (expected 0): %', n, left(sample, 300) USING ERRCODE = 'TG004';
    END IF;
END
$projection_gap$;

DO $critical$
DECLARE
    n bigint; sample text;
BEGIN
    IF to_regclass('axis.v_governance_finding') IS NULL THEN RETURN; END IF;
    SELECT count(*), string_agg(key, ', ' ORDER BY key) INTO n, sample FROM axis.v_governance_finding WHERE severity = 'critical';
    IF n <> 0 THEN
        RAISE EXCEPTION 'verify: critical = % (expected 0): %', n, left(sample, 300) USING ERRCODE = 'TG004';
    END IF;
END
$critical$;

DO $emittable$
DECLARE
    n bigint; sample text;
BEGIN
    IF to_regclass('axis.v_governance_finding') IS NULL THEN RETURN; END IF;
    SELECT count(*), string_agg(key, ', ' ORDER BY key) INTO n, sample FROM axis.v_governance_finding WHERE emittable;
    IF n <> 0 THEN
        RAISE EXCEPTION 'verify: emittable = % (expected 0): %', n, left(sample, 300) USING ERRCODE = 'TG004';
    END IF;
END
$emittable$;
