-- Up Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
--
-- Version 21: planner statistics refreshed by the statement that makes them wrong.
--
-- Why: grep, search, glob and ls choose their plan from the planner's statistics of `files` and
-- `chunks`, which autovacuum refreshes a minute or more after a bulk write, and only once a fifth
-- of a table changed. Until then a workspace filled by one upload is, to the planner, the few
-- rows (or the empty table) it had at the last ANALYZE. Measured on PostgreSQL 15, 12,000
-- node_modules files (53 MiB) uploaded through uploadFiles into a new schema: a rare literal took
-- 7.4 s right after the upload and 3.4 ms after ANALYZE; a common one capped at 100 matches
-- 25.3 s and 8.2 ms. The CLI's import ran ANALYZE itself (skipped, with a warning, for a role
-- that does not own the tables), a fork of 500 files or more ran it on `files`; uploadFiles, raw
-- SQL and a role restricted with grant_workspace had nothing.
--
-- What: an AFTER INSERT statement trigger on `files`, last of them (after the chunk trigger, so
-- the new chunks are in the table too). A statement of fewer than 50 rows and 8 MiB returns at
-- once: the cost of a single write is reading its one row of a transition table twice. For a
-- bigger one, for each workspace it wrote 50 rows (or 8 MiB) into: the planner's estimate of that
-- workspace's rows (EXPLAIN, as a search would be planned) against the rows it has, counted no
-- further than the estimate can be wrong by (and not at all past 10,000 estimated rows). More than twice the estimate (plus 50) means the statistics describe
-- an older, smaller workspace: ANALYZE both tables, in this transaction, so the statistics are
-- committed with the rows they describe (ANALYZE samples its own transaction's rows as live).
-- After the first batch of an upload into a new workspace the workspace is in the statistics
-- (its share of the table), which the planner scales by the table's current size: later batches
-- of the same upload do not analyze again unless the workspace outgrows its share.
--
-- Cost: up to a few hundred milliseconds when it runs (ANALYZE samples at most 30,000 rows of a
-- table, 0.3 s for 24,000 chunks here), once per workspace that outgrew its statistics and per
-- doubling of a table. Two uploads at once do not both analyze (a try-lock; the other goes on,
-- and its next bulk statement checks again; one that never comes leaves it to autovacuum), and
-- neither waits for autovacuum (SKIP_LOCKED). It runs as the owner (SECURITY DEFINER, EXECUTE
-- revoked from PUBLIC like every trigger function here): a restricted role's upload refreshes
-- statistics too. What a role can do with it, and what it cannot, is in SECURITY.md.
-- Released: never edit this file; add a new migration instead.

-- One analyzer at a time; the others go on (a later bulk write of theirs checks again). The
-- settings a writer could set for its session, and that ANALYZE would take from it, are pinned:
-- a statistics target of 1 wrote every workspace's statistics from a handful of rows, and a cost
-- delay held the upload (and the tables' ANALYZE lock) for minutes (found by review). ANALYZE
-- updates the tables' pg_class rows in place, which waits for an uncommitted GRANT on them (as
-- grant_workspace makes) and can deadlock with it: then, or when a table is locked by another
-- ANALYZE, this one is skipped, never the write.
CREATE FUNCTION statistics_analyze() RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
SET default_statistics_target = 100
SET vacuum_cost_delay = 0
SET client_min_messages = error
AS $$
BEGIN
  IF pg_try_advisory_xact_lock(hashtext('deepagents-backends:statistics:' || current_schema())) THEN
    BEGIN
      ANALYZE (SKIP_LOCKED) files, chunks;
    EXCEPTION WHEN deadlock_detected OR lock_not_available THEN
      NULL;
    END;
  END IF;
END
$$;

CREATE FUNCTION statistics_refresh() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path FROM CURRENT
SET jit = off
SET plan_cache_mode = force_custom_plan -- (the count below: planned for its workspace)
AS $$
DECLARE
  r record;
  v_plan json;
  v_estimate double precision;
  v_rows bigint;
BEGIN
  -- A bulk statement: 50 rows or more, or 8 MiB or more (an import of big files, 500 files or
  -- 16 MiB a batch, may write fewer than 50 rows a statement).
  IF (SELECT count(*) FROM (SELECT 1 FROM new_rows n LIMIT 50) s) < 50
     AND (SELECT coalesce(sum(n.size), 0) FROM new_rows n) < 8388608 THEN
    RETURN NULL;
  END IF;
  -- A table twice the size it had at its last ANALYZE (its pages now against the pages counted
  -- then; 64 pages or more: below that any plan is quick).
  IF EXISTS (SELECT 1 FROM pg_class c
             WHERE c.oid IN ('files'::regclass, 'chunks'::regclass)
               AND pg_relation_size(c.oid) / current_setting('block_size')::bigint
                   > greatest(2 * c.relpages::bigint, 64)) THEN
    PERFORM statistics_analyze();
    RETURN NULL;
  END IF;
  FOR r IN
    SELECT n.workspace, count(*) AS written FROM new_rows n
    GROUP BY n.workspace HAVING count(*) >= 50 OR sum(n.size) >= 8388608 ORDER BY n.workspace
  LOOP
    -- The literal in the statement, not a parameter: the estimate a search of it would get.
    EXECUTE format('EXPLAIN (FORMAT JSON) SELECT 1 FROM files f WHERE f.workspace = %L', r.workspace) INTO v_plan;
    v_estimate := (v_plan -> 0 -> 'Plan' ->> 'Plan Rows')::double precision;
    -- This statement's own rows may already be more than the estimate allows for; else count, no
    -- further than that, and not for a workspace the planner already takes for 10,000 rows or
    -- more (its plans are the big workspace's; counting it would cost every batch a scan).
    IF r.written > 2 * v_estimate + 50 THEN
      PERFORM statistics_analyze();
      RETURN NULL;
    END IF;
    CONTINUE WHEN v_estimate >= 10000;
    SELECT count(*) INTO v_rows
    FROM (SELECT 1 FROM files f WHERE f.workspace = r.workspace LIMIT (2 * v_estimate)::bigint + 51) s;
    IF v_rows > 2 * v_estimate + 50 THEN
      PERFORM statistics_analyze();
      RETURN NULL;
    END IF;
  END LOOP;
  RETURN NULL;
END
$$;

REVOKE EXECUTE ON FUNCTION statistics_analyze(), statistics_refresh() FROM PUBLIC;

-- (Named to fire after every other AFTER INSERT trigger on files: triggers fire in name order.)
CREATE TRIGGER files_zz_statistics AFTER INSERT ON files
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION statistics_refresh();

-- Down Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;

DROP TRIGGER files_zz_statistics ON files;
DROP FUNCTION statistics_refresh();
DROP FUNCTION statistics_analyze();
