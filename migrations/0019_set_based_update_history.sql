-- Up Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
--
-- Version 19: the history of UPDATEs kept per statement, like that of INSERTs and DELETEs (0009).
--
-- Why (BENCHMARKS.md "Cost of the write paths"): 0008's row trigger (history_record) kept each
-- replaced version in PL/pgSQL, one file at a time: find its version row, read both bodies,
-- compute the delta, write it, then record the new version, each step a function call with its
-- own statements. An upload of 500 files over themselves took 1.94-1.97x as long with history as
-- without (issue 13 asks <= 1.25x). history_updated does the same work in one statement per
-- UPDATE statement, planned once per session.
--
-- How old and new rows pair: by key, (workspace, path), through a FULL JOIN of the transition
-- tables. A FULL JOIN is never a nested loop (PostgreSQL runs it as a hash or merge join only),
-- so the planner's few-row estimate of a transition table cannot make it quadratic. A key with
-- both rows is an update when the version rose; a key with only an old row was renamed away by
-- raw SQL (its version is deleted, its bytes kept whole, as by a DELETE); a key with only a new
-- row was renamed into (created). A rename chain (a -> b while b -> c) pairs b's old row with
-- its new one: an update of b, which is what the change log (changes_stage, also by key) says.
-- 0008's row trigger called it a delete and a create of b, which the log never stamped.
--
-- The trigger is named to fire before files_chunks_update (AFTER triggers of one event fire in
-- name order): a row without its text inline reads it from its chunk set, which chunks_update
-- may re-cut or collect.
--
-- Released: never edit this file; add a new migration instead.

-- A replaced version whose bytes cannot be read any more: an error, never a version kept without
-- them. (Raw SQL only: one statement that deletes a file and updates another sharing its chunk
-- set, through a WITH, fires the DELETE's triggers first, which collect the set; found by review.)
CREATE FUNCTION history_body_lost(p_path text, p_version bigint) RETURNS bytea
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
AS $function$
BEGIN
  RAISE EXCEPTION 'cannot keep version % of "%" in its history: its text is gone (deleted by the same statement)',
    p_version, p_path
    USING ERRCODE = 'DA010', DETAIL = p_path;
END
$function$;

CREATE FUNCTION history_updated()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
  v_tag text := nullif(current_setting('deepagents_backends.tag', true), '');
  v_on text[];
  v_all boolean;
BEGIN
  -- The workspaces of the statement that keep history (a settings read each, not one per row),
  -- and whether that is all of them (the rows are then not filtered: a generic plan compares each
  -- row with every element of an array parameter, rows x workspaces).
  SELECT array_agg(w.workspace) FILTER (WHERE w.enabled), bool_and(w.enabled) INTO v_on, v_all
  FROM (SELECT d.workspace, history_enabled(d.workspace) AS enabled
        FROM (SELECT DISTINCT r.workspace
              FROM (SELECT o.workspace FROM old_rows o UNION ALL SELECT n.workspace FROM new_rows n) r) d
        OFFSET 0) w;
  IF v_on IS NULL THEN
    RETURN NULL;
  END IF;
  -- Linear in the rows whatever plan it keeps: the pairing is a FULL JOIN (hash or merge), each
  -- version row is found by a key probe, and the two CTEs are materialized, so each body and each
  -- delta is computed once (OFFSET 0 keeps a lateral's column from being computed once per use).
  WITH pairs AS MATERIALIZED (
    SELECT coalesce(o.workspace, n.workspace) AS workspace, coalesce(o.path, n.path) AS path,
           o.version AS old_version, o.modified_at AS old_at, o.size AS old_size, o.mime_type AS old_mime,
           o.chunk_set IS NOT NULL AS old_is_text, o.hash AS old_hash,
           n.version AS new_version, n.modified_at AS new_at, n.size AS new_size, n.mime_type AS new_mime,
           n.chunk_set IS NOT NULL AS new_is_text, n.hash AS new_hash,
           n.path IS NULL OR n.version > o.version AS replaced,
           -- The bodies, where a version is replaced: the old one to keep, the new one to diff with.
           CASE WHEN n.path IS NULL OR n.version > o.version
                THEN coalesce(file_body(file_text(o.content, o.chunk_set), o.bytes),
                              history_body_lost(o.path, o.version)) END AS old_body,
           CASE WHEN n.version > o.version
                THEN file_body(file_text(n.content, n.chunk_set), n.bytes) END AS new_body
    FROM old_rows o FULL JOIN new_rows n ON n.workspace = o.workspace AND n.path = o.path
    WHERE v_all OR coalesce(o.workspace, n.workspace) = ANY (v_on)
  ), kept AS MATERIALIZED (
    -- Each replaced version whose bytes are not kept yet (normally: the live one had none), with
    -- whether a row records it, kept as a reverse delta against the new version where that is
    -- small and the chain below it short enough, else whole. Delta or whole is decided from this
    -- path's own versions only (by whether a blob of these bytes exists anywhere, a tenant could
    -- learn what other workspaces hold; 0008).
    SELECT p.workspace, p.path, p.old_version, p.old_at, p.old_size, p.old_mime, p.old_is_text, p.old_hash,
           v.recorded, d.is_delta, CASE WHEN d.is_delta THEN c.depth ELSE 0 END AS depth,
           CASE WHEN d.is_delta THEN d.prefix END AS delta_prefix,
           CASE WHEN d.is_delta THEN d.suffix END AS delta_suffix,
           CASE WHEN d.is_delta THEN substr(p.old_body, d.prefix + 1, length(p.old_body) - d.prefix - d.suffix) END
             AS delta_middle,
           CASE WHEN NOT d.is_delta THEN p.old_body END AS whole
    FROM pairs p
    LEFT JOIN LATERAL (
      SELECT true AS recorded, v.blob IS NOT NULL OR v.delta_middle IS NOT NULL AS has_body FROM file_versions v
      WHERE v.workspace = p.workspace AND v.path = p.path AND v.version = p.old_version AND NOT v.deleted LIMIT 1
    ) v ON true
    -- The depth a delta would have: one more than the deltas just below it (those of the
    -- previous kept version; raw SQL may leave gaps).
    CROSS JOIN LATERAL (
      SELECT CASE WHEN p.new_body IS NOT NULL THEN
               coalesce((SELECT CASE WHEN q.delta_middle IS NOT NULL THEN q.depth END FROM file_versions q
                         WHERE q.workspace = p.workspace AND q.path = p.path AND q.version < p.old_version
                           AND NOT q.deleted
                         ORDER BY q.version DESC LIMIT 1), 0) + 1 END AS depth
      OFFSET 0
    ) c
    CROSS JOIN LATERAL (
      SELECT x.prefix, x.suffix,
             coalesce(length(p.old_body) - x.prefix - x.suffix <= length(p.old_body) / 2 + 64, false) AS is_delta
      FROM (SELECT CASE WHEN c.depth <= history_max_depth(greatest(length(p.old_body), length(p.new_body)))
                        THEN bytes_common_prefix(p.old_body, p.new_body) END AS prefix
            OFFSET 0) w
      CROSS JOIN LATERAL (
        SELECT w.prefix,
               CASE WHEN w.prefix IS NOT NULL
                    THEN bytes_common_suffix(p.old_body, p.new_body,
                                             least(length(p.old_body), length(p.new_body)) - w.prefix) END AS suffix
        OFFSET 0
      ) x
      OFFSET 0
    ) d
    WHERE p.replaced AND v.has_body IS NOT TRUE
  ), stored AS (
    -- Each body kept whole, stored once by its SHA-256 (a file's hash is that of its body) and in
    -- hash order (the lock order of blobs); an existing blob is touched, which locks it against
    -- history_collect_blobs (see the end of this file).
    INSERT INTO blobs AS b (hash, data)
    SELECT DISTINCT ON (k.old_hash) k.old_hash, k.whole FROM kept k WHERE NOT k.is_delta ORDER BY k.old_hash
    ON CONFLICT (hash) DO UPDATE SET hash = b.hash
  ), recorded_late AS (
    -- A version written before history was kept for it: recorded now, as there all along.
    INSERT INTO file_versions (workspace, path, version, op, change_id, at, size, mime_type, is_text, hash, tag,
                               blob, delta_prefix, delta_suffix, delta_middle, depth)
    SELECT k.workspace, k.path, k.old_version, CASE WHEN k.old_version = 1 THEN 'create' ELSE 'update' END, 0,
           k.old_at, k.old_size, k.old_mime, k.old_is_text, k.old_hash, v_tag,
           CASE WHEN NOT k.is_delta THEN k.old_hash END, k.delta_prefix, k.delta_suffix, k.delta_middle, k.depth
    FROM kept k WHERE k.recorded IS NULL
    ORDER BY k.workspace, k.path
    ON CONFLICT (workspace, path, version, deleted) DO NOTHING
  ), recorded AS (
    UPDATE file_versions v
       SET blob = CASE WHEN NOT k.is_delta THEN k.old_hash END,
           hash = CASE WHEN NOT k.is_delta THEN k.old_hash ELSE v.hash END,
           delta_prefix = k.delta_prefix, delta_suffix = k.delta_suffix, delta_middle = k.delta_middle,
           depth = k.depth
      FROM kept k
     WHERE k.recorded AND v.workspace = k.workspace AND v.path = k.path AND v.version = k.old_version
       AND NOT v.deleted
  ), renamed_away AS (
    INSERT INTO file_versions (workspace, path, version, deleted, op, size, tag)
    SELECT p.workspace, p.path, p.old_version, true, 'delete', p.old_size, v_tag
    FROM pairs p WHERE p.new_version IS NULL
    ORDER BY p.workspace, p.path
    ON CONFLICT (workspace, path, version, deleted) DO UPDATE
      SET change_id = NULL, at = excluded.at, size = excluded.size, tag = excluded.tag
  )
  -- The new versions (stamped with their change ids at commit, as every version).
  INSERT INTO file_versions AS v (workspace, path, version, op, change_id, at, size, mime_type, is_text, hash, tag)
  SELECT p.workspace, p.path, p.new_version, CASE WHEN p.old_version IS NULL THEN 'create' ELSE 'update' END, NULL,
         p.new_at, p.new_size, p.new_mime, p.new_is_text, p.new_hash, v_tag
  FROM pairs p
  WHERE p.new_version IS NOT NULL AND (p.old_version IS NULL OR p.new_version > p.old_version)
  ORDER BY p.workspace, p.path
  ON CONFLICT (workspace, path, version, deleted) DO UPDATE
    SET op = excluded.op, change_id = excluded.change_id, at = excluded.at, size = excluded.size,
        mime_type = excluded.mime_type, is_text = excluded.is_text, hash = excluded.hash, tag = excluded.tag,
        blob = NULL, delta_prefix = NULL, delta_suffix = NULL, delta_middle = NULL, depth = 0;
  RETURN NULL;
END
$function$;
-- Only the trigger runs it (as the owner): attached to a table of its own, a role would run it as
-- the owner on rows it made up.
REVOKE EXECUTE ON FUNCTION history_updated(), history_body_lost(text, bigint) FROM PUBLIC;

DROP TRIGGER files_history ON files;
CREATE TRIGGER files_a_history_updated AFTER UPDATE ON files
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION history_updated();
DROP FUNCTION history_record();
DROP FUNCTION history_retire(files, files);
DROP FUNCTION history_capture(files, text, bigint, timestamptz);

-- Blob references without a foreign key. Its check was one query per version row made to name a
-- blob: 27 us a file of a 2,000-file delete with history (188 ms against 134 without it, history
-- off 54; measured side by side). What it guaranteed, that no version names a blob that is gone,
-- holds without it:
-- 1. Only the owner's code writes file_versions: roles are granted SELECT on it (history_grant).
-- 2. Each statement that makes a version name a blob upserts that blob itself (INSERT ... ON
--    CONFLICT DO UPDATE: an existing blob is locked until commit; one a collector deleted
--    meanwhile is inserted again): history_deleted, history_updated, and prune_history's keyframes
--    (blob_keep).
-- 3. fs_fork with history copies version rows naming blobs under the prune lock, shared;
--    prune_history and set_history, the only callers of history_collect_blobs, take it
--    exclusively. That orders READ COMMITTED transactions only (a REPEATABLE READ snapshot is
--    taken before the lock is granted), so fs_fork also locks the blobs it names (FOR KEY SHARE,
--    as the key's check did: a blob deleted after its snapshot is a serialization failure), and
--    history_collect_blobs collects only under READ COMMITTED (below).
-- 4. history_collect_blobs skips locked blobs and deletes only those no version names.
-- A reference broken anyway (by the owner's raw SQL) is an error when read (version_data, DA010),
-- never other bytes. test/reliability/history-races.test.ts races collection against writers.
ALTER TABLE file_versions DROP CONSTRAINT file_versions_blob_fkey;

-- Room for updates on each page of versions: a version row is updated twice after it is written
-- (stamped with its change id at commit, given its bytes when it is replaced), and with room on
-- its page such an update can be HOT (no new index entries) — not when it is kept whole, which
-- sets the indexed blob. A 10 KB write with history: 2.11 ms at 80% against 2.19 full (history
-- off: 1.88; medians of 600, side by side); in a mixed workload 40% of updates were HOT against
-- 25%. The price: pages of rows never updated (deletions, forks' copies) are up to 25% larger.
ALTER TABLE file_versions SET (fillfactor = 80);

-- (Only its comment changes: the foreign key it mentioned is gone.)
CREATE OR REPLACE FUNCTION history_deleted()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
DECLARE
  v_tag text := nullif(current_setting('deepagents_backends.tag', true), '');
  v_on text[];
BEGIN
  SELECT array_agg(w.workspace) INTO v_on
  FROM (SELECT DISTINCT o.workspace FROM old_rows o OFFSET 0) w WHERE history_enabled(w.workspace); -- (as above)
  IF v_on IS NULL THEN
    RETURN NULL;
  END IF;
  -- A version written before history was kept for it: recorded now, as there all along.
  INSERT INTO file_versions (workspace, path, version, op, change_id, at, size, mime_type, is_text, hash, tag)
  SELECT o.workspace, o.path, o.version, CASE WHEN o.version = 1 THEN 'create' ELSE 'update' END, 0,
         o.modified_at, o.size, o.mime_type, o.chunk_set IS NOT NULL, o.hash, v_tag
  FROM old_rows o
  WHERE o.workspace = ANY (v_on)
    AND NOT EXISTS (SELECT 1 FROM file_versions v WHERE v.workspace = o.workspace AND v.path = o.path
                                                     AND v.version = o.version AND NOT v.deleted)
  ORDER BY o.workspace, o.path COLLATE "C"
  ON CONFLICT (workspace, path, version, deleted) DO NOTHING;
  -- The bytes of each version not kept yet (the live one, normally), stored once by SHA-256 and
  -- in hash order (the lock order of blobs); an existing blob is touched, which locks it against
  -- prune_history's collection, as blob_keep does, or inserts it again if a collector deleted it
  -- meanwhile: no version names a blob that is gone (0019, which dropped the foreign key).
  WITH kept AS MATERIALIZED (
    SELECT o.workspace, o.path, o.version, o.hash, k.body
    FROM old_rows o
    JOIN file_versions v ON v.workspace = o.workspace AND v.path = o.path AND v.version = o.version AND NOT v.deleted
    CROSS JOIN LATERAL (SELECT file_body(file_text(o.content, o.chunk_set), o.bytes) AS body) k
    WHERE o.workspace = ANY (v_on) AND v.blob IS NULL AND v.delta_middle IS NULL
  ), stored AS (
    INSERT INTO blobs AS b (hash, data)
    SELECT DISTINCT ON (k.hash) k.hash, k.body FROM kept k ORDER BY k.hash
    ON CONFLICT (hash) DO UPDATE SET hash = b.hash
  )
  UPDATE file_versions v SET blob = k.hash, hash = k.hash, depth = 0
  FROM kept k
  WHERE v.workspace = k.workspace AND v.path = k.path AND v.version = k.version AND NOT v.deleted;
  INSERT INTO file_versions (workspace, path, version, deleted, op, size, tag)
  SELECT o.workspace, o.path, o.version, true, 'delete', o.size, v_tag
  FROM old_rows o
  WHERE o.workspace = ANY (v_on)
  ORDER BY o.workspace, o.path COLLATE "C"
  ON CONFLICT (workspace, path, version, deleted) DO UPDATE
    SET change_id = NULL, at = excluded.at, size = excluded.size, tag = excluded.tag;
  RETURN NULL;
END
$function$;


-- (Collection and forks with history under the isolation levels that a prune lock does not
-- order: see the comments in each, and the end of the blob argument above; found by review.)
CREATE OR REPLACE FUNCTION history_collect_blobs()
 RETURNS bigint
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
AS $function$
DECLARE
  v_free bytea[];
  v_count bigint;
BEGIN
  -- Only a READ COMMITTED caller collects (a later one sweeps what is left): an older snapshot may
  -- not see a version that names a blob, committed by a fork after it was taken (0019: no foreign
  -- key stops the delete).
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RETURN 0;
  END IF;
  SELECT coalesce(array_agg(s.hash), '{}') INTO v_free FROM (
    SELECT b.hash FROM blobs b
    WHERE NOT EXISTS (SELECT 1 FROM file_versions v WHERE v.blob = b.hash)
    FOR UPDATE SKIP LOCKED
  ) s;
  DELETE FROM blobs b
  WHERE b.hash = ANY (v_free) AND NOT EXISTS (SELECT 1 FROM file_versions v WHERE v.blob = b.hash);
  GET DIAGNOSTICS v_count = ROW_COUNT;
  RETURN v_count;
END
$function$;


CREATE OR REPLACE FUNCTION fs_fork(p_source text, p_target text, p_at bigint, p_history boolean DEFAULT false)
 RETURNS TABLE(files bigint, bytes bigint, versions bigint)
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
DECLARE
  v_position bigint;
  v_workspace text;
  v_files bigint;
  v_bytes bigint;
  v_versions bigint := 0;
  v_marked boolean := false;
  v_locked bigint;
BEGIN
  IF p_source = p_target THEN
    RAISE EXCEPTION 'cannot fork workspace "%" into itself', p_source USING ERRCODE = 'DA013';
  END IF;
  -- Under row-level security a workspace without a grant looks empty; say so instead.
  IF row_security_active('files') THEN
    FOREACH v_workspace IN ARRAY ARRAY[p_source, p_target] LOOP
      IF NOT EXISTS (SELECT 1 FROM workspace_grants g WHERE g.workspace = v_workspace OR g.workspace IS NULL) THEN
        RAISE EXCEPTION 'permission denied for workspace "%"', v_workspace
          USING ERRCODE = 'insufficient_privilege', DETAIL = v_workspace;
      END IF;
    END LOOP;
  END IF;
  IF p_history THEN
    IF NOT (has_table_privilege('file_versions', 'INSERT') AND has_table_privilege('tombstones', 'INSERT')) THEN
      RAISE EXCEPTION 'copying history into workspace "%" needs INSERT on file_versions and tombstones', p_target
        USING ERRCODE = 'DA015', DETAIL = p_target;
    END IF;
  END IF;
  -- One fork into a workspace at a time: a second waits here, then finds the files.
  PERFORM pg_advisory_xact_lock(hashtext('deepagents-backends:fork:' || current_schema() || E'\n' || p_target)::bigint);
  IF EXISTS (SELECT 1 FROM files f WHERE f.workspace = p_target) THEN
    RAISE EXCEPTION 'cannot fork into workspace "%": it has files', p_target USING ERRCODE = 'DA014', DETAIL = p_target;
  END IF;
  IF NOT p_history THEN
    -- A new target's change log and history start at the fork (0017): a horizon, and no change
    -- or version row per copied file. A target that had files, a log or history once keeps them,
    -- and is logged file by file as before.
    BEGIN
      INSERT INTO fork_marks (workspace) VALUES (p_target);
      v_marked := true;
    EXCEPTION WHEN SQLSTATE 'DA017' THEN
      v_marked := false;
    END;
  END IF;
  IF p_history OR p_at IS NOT NULL THEN
    -- prune_history and set_history take this lock exclusively: no version or blob named below
    -- goes away, and the target's history setting holds. (Taken before any row lock: they lock
    -- no file rows, and the source's writers need not wait behind a long prune.) At a checkpoint
    -- too, and before it is read: a prune committing between the checkpoint's position and the
    -- versions at it left paths out of the fork, which still reported success (0019, found by
    -- review).
    PERFORM pg_advisory_xact_lock_shared(hashtext('deepagents-backends:prune-history:' || current_schema()));
  END IF;
  IF p_at IS NOT NULL THEN
    v_position := checkpoint_position(p_source, p_at);
  END IF;
  IF p_history THEN
    IF NOT history_enabled(p_target) THEN
      RAISE EXCEPTION 'history is off for workspace "%"', p_target USING ERRCODE = 'DA011', DETAIL = p_target;
    END IF;
    -- A target that had files once keeps their history and version numbers, and a checkpoint
    -- taken on it marks a position in its own log: copies would mix with them, and reuse numbers
    -- its watchers have seen. Only a new workspace takes history.
    IF EXISTS (SELECT 1 FROM tombstones t WHERE t.workspace = p_target)
       OR EXISTS (SELECT 1 FROM file_versions v WHERE v.workspace = p_target)
       OR EXISTS (SELECT 1 FROM checkpoints c WHERE c.workspace = p_target)
       OR EXISTS (SELECT 1 FROM changes c WHERE c.workspace = p_target)
       OR EXISTS (SELECT 1 FROM changes_horizon h WHERE h.workspace = p_target) THEN
      RAISE EXCEPTION 'cannot fork with history into workspace "%": it has history of its own', p_target
        USING ERRCODE = 'DA016', DETAIL = p_target;
    END IF;
  END IF;
  -- Every row of the source, locked in path order: writers of them wait for this transaction, so
  -- the copy below (a new snapshot, taken once all are locked) is one state of the source, and
  -- no writer re-cuts a set in place while a copy points at it (chunks_assign sees the copies).
  PERFORM 1 FROM files f WHERE f.workspace = p_source ORDER BY f.path COLLATE "C" FOR SHARE;

  IF p_at IS NULL THEN
    WITH copied AS (
      -- A text file is copied without its text (content NULL): it is the text of its chunk set,
      -- which it shares (chunks_claim checks the caller may read it).
      INSERT INTO files (workspace, path, content, bytes, mime_type, size, line_count, chunk_set, hash, created_at,
                         modified_at, version)
      SELECT p_target, s.path, NULL, s.bytes, s.mime_type, s.size, s.line_count, s.chunk_set, s.hash, s.created_at,
             s.modified_at, CASE WHEN p_history THEN s.version ELSE 1 END
      FROM files s WHERE s.workspace = p_source
      ORDER BY s.path COLLATE "C"
      FOR SHARE -- (a file created since the first statement is locked too before its set is shared)
      RETURNING size
    )
    SELECT count(*), coalesce(sum(c.size), 0)::bigint INTO v_files, v_bytes FROM copied c;
  ELSE
    -- At a checkpoint: the rows that did not change since, shared; the others as history has them.
    WITH changed AS (
      SELECT h.path, h.from_version FROM history_compare(p_source, v_position, NULL, NULL) h
    ), unchanged AS (
      SELECT s.path, NULL::text AS content, s.bytes, s.mime_type, s.size, s.line_count, s.chunk_set, s.hash, s.created_at,
             s.modified_at, s.version
      FROM files s WHERE s.workspace = p_source AND NOT EXISTS (SELECT 1 FROM changed c WHERE c.path = s.path)
      FOR SHARE
    ), rebuilt AS (
      SELECT r.path, r.mime_type, r.is_text, version_data(p_source, r.path, r.from_version) AS data, r.at,
             r.from_version
      FROM (SELECT c.path, v.mime_type, v.is_text, c.from_version, v.at
            FROM changed c
            JOIN file_versions v ON v.workspace = p_source AND v.path = c.path
                                AND v.version = c.from_version AND NOT v.deleted
            WHERE c.from_version IS NOT NULL
            OFFSET 0) r -- a fence: pulled up, version_data would run once per use of `data`
    ), copied AS (
      INSERT INTO files (workspace, path, content, bytes, mime_type, size, line_count, chunk_set, hash, created_at,
                         modified_at, version)
      SELECT p_target, u.path, u.content, u.bytes, u.mime_type, u.size, u.line_count, u.chunk_set, u.hash, u.created_at,
             u.modified_at, CASE WHEN p_history THEN u.version ELSE 1 END
      FROM (
        SELECT * FROM unchanged
        UNION ALL
        SELECT b.path, t.content, t.bytes, b.mime_type, length(b.data), text_line_count(t.content), NULL, NULL, b.at, b.at,
               b.from_version
        FROM rebuilt b
        CROSS JOIN LATERAL (SELECT CASE WHEN b.is_text THEN convert_from(b.data, 'UTF8') END AS content,
                                   CASE WHEN NOT b.is_text THEN b.data END AS bytes) t
      ) u
      ORDER BY u.path COLLATE "C"
      RETURNING size
    )
    SELECT count(*), coalesce(sum(c.size), 0)::bigint INTO v_files, v_bytes FROM copied c;
  END IF;

  IF v_marked THEN
    -- What this transaction writes into the target from now on is logged (after the horizon).
    DELETE FROM fork_marks m WHERE m.xact = pg_current_xact_id() AND m.workspace = p_target;
  END IF;

  IF p_history THEN
    -- The source's versions, copied after the files (every copied file is locked by now, so its
    -- older versions cannot change under the copy): for a file of the fork, those below its
    -- version (history_inserted has just recorded that one); for a path without a file in the
    -- fork, those up to its last deletion (a version after it would be a live one, whose bytes
    -- are in a source file the fork did not copy). Up to the checkpoint, with p_at.
    INSERT INTO file_versions (workspace, path, version, deleted, op, change_id, at, size, mime_type, is_text,
                               hash, tag, blob, delta_prefix, delta_suffix, delta_middle, depth)
    SELECT p_target, v.path, v.version, v.deleted, v.op, v.change_id, v.at, v.size, v.mime_type, v.is_text,
           v.hash, v.tag, v.blob, v.delta_prefix, v.delta_suffix, v.delta_middle, v.depth
    FROM file_versions v
    LEFT JOIN files t ON t.workspace = p_target AND t.path = v.path
    WHERE v.workspace = p_source AND (v_position IS NULL OR v.change_id <= v_position)
      AND CASE WHEN t.path IS NOT NULL THEN v.version < t.version
               ELSE v.version <= (SELECT max(d.version) FROM file_versions d
                                  WHERE d.workspace = p_source AND d.path = v.path AND d.deleted
                                    AND (v_position IS NULL OR d.change_id <= v_position)) END
    ORDER BY v.path COLLATE "C", v.version, v.deleted;
    GET DIAGNOSTICS v_versions = ROW_COUNT;
    -- The blobs those versions name, locked in hash order as the foreign key's check locked them
    -- (0019 dropped it). The prune lock keeps collection out only for READ COMMITTED callers: a
    -- REPEATABLE READ fork whose snapshot predates a prune's collection fails to serialize here
    -- (40001, to be retried) instead of naming a blob that is gone.
    SELECT count(*) INTO v_locked FROM (
      SELECT b.hash FROM blobs b
      WHERE b.hash IN (SELECT v.blob FROM file_versions v WHERE v.workspace = p_target AND v.blob IS NOT NULL)
      ORDER BY b.hash FOR KEY SHARE
    ) l;
    IF v_locked < (SELECT count(DISTINCT v.blob) FROM file_versions v WHERE v.workspace = p_target AND v.blob IS NOT NULL) THEN
      RAISE EXCEPTION 'cannot fork the history of workspace "%": a version names bytes that are gone', p_source
        USING ERRCODE = 'DA010', DETAIL = p_source;
    END IF;
    -- history_inserted recorded each copied file as created by the fork; it is the source's
    -- version, and keeps the source's record of it (op, time, tag, change). The fork's change log
    -- still has its creates, so diff and rewind from the fork's checkpoints see every file.
    UPDATE file_versions t SET op = s.op, at = s.at, tag = s.tag, change_id = s.change_id
    FROM files f
    JOIN file_versions s ON s.workspace = p_source AND s.path = f.path AND s.version = f.version AND NOT s.deleted
    WHERE f.workspace = p_target AND t.workspace = p_target AND t.path = f.path AND t.version = f.version
      AND NOT t.deleted AND (v_position IS NULL OR s.change_id <= v_position);
    v_versions := v_versions + v_files; -- (and the one history_inserted recorded for each file)
    -- Paths with history but no file in the fork: their numbers stay taken.
    INSERT INTO tombstones (workspace, path, version)
    SELECT p_target, v.path, max(v.version) FROM file_versions v
    WHERE v.workspace = p_target
      AND NOT EXISTS (SELECT 1 FROM files f WHERE f.workspace = p_target AND f.path = v.path)
    GROUP BY v.path ORDER BY v.path COLLATE "C";
  END IF;
  RETURN QUERY SELECT v_files, v_bytes, v_versions;
END
$function$;


-- Down Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;

CREATE FUNCTION history_capture(r files, p_op text, p_change_id bigint, p_at timestamp with time zone)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
BEGIN
  INSERT INTO file_versions AS v (workspace, path, version, op, change_id, at, size, mime_type, is_text, hash, tag)
  VALUES (r.workspace, r.path, r.version, p_op, p_change_id, p_at, r.size, r.mime_type, r.chunk_set IS NOT NULL,
          r.hash, nullif(current_setting('deepagents_backends.tag', true), ''))
  ON CONFLICT (workspace, path, version, deleted) DO UPDATE
    SET op = excluded.op, change_id = excluded.change_id, at = excluded.at, size = excluded.size,
        mime_type = excluded.mime_type, is_text = excluded.is_text, hash = excluded.hash, tag = excluded.tag,
        blob = NULL, delta_prefix = NULL, delta_suffix = NULL, delta_middle = NULL, depth = 0;
END
$function$;

CREATE FUNCTION history_retire(o files, n files)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
  v_row file_versions;
  v_old bytea := file_body(file_text(o.content, o.chunk_set), o.bytes);
  v_new bytea;
  v_depth integer;
  v_prefix integer;
  v_suffix integer;
  v_hash bytea;
BEGIN
  SELECT * INTO v_row FROM file_versions v
  WHERE v.workspace = o.workspace AND v.path = o.path AND v.version = o.version AND NOT v.deleted;
  IF NOT FOUND THEN
    -- Written before history was kept for it: record it now, as having been there all along.
    PERFORM history_capture(o, CASE WHEN o.version = 1 THEN 'create' ELSE 'update' END, 0, o.modified_at);
    SELECT * INTO v_row FROM file_versions v
    WHERE v.workspace = o.workspace AND v.path = o.path AND v.version = o.version AND NOT v.deleted;
  ELSIF v_row.blob IS NOT NULL OR v_row.delta_middle IS NOT NULL THEN
    RETURN; -- already kept
  END IF;

  -- Delta or whole is decided from this path's own versions only: were it decided by whether a
  -- blob of these bytes already exists (anywhere), a tenant could learn from its own rows that
  -- another workspace holds some content. (n.path, not n: a row IS NOT NULL only when every
  -- column is, and a file has content or bytes.)
  IF n.path IS NOT NULL THEN
    v_new := file_body(file_text(n.content, n.chunk_set), n.bytes);
    -- The deltas just below: those of the previous kept version (raw SQL may leave gaps).
    v_depth := coalesce((SELECT CASE WHEN p.delta_middle IS NOT NULL THEN p.depth END FROM file_versions p
                         WHERE p.workspace = o.workspace AND p.path = o.path AND p.version < o.version
                           AND NOT p.deleted
                         ORDER BY p.version DESC LIMIT 1), 0) + 1;
    IF v_depth <= history_max_depth(greatest(length(v_old), length(v_new))) THEN
      v_prefix := bytes_common_prefix(v_old, v_new);
      v_suffix := bytes_common_suffix(v_old, v_new, least(length(v_old), length(v_new)) - v_prefix);
      IF length(v_old) - v_prefix - v_suffix <= length(v_old) / 2 + 64 THEN
        UPDATE file_versions v
           SET delta_prefix = v_prefix, delta_suffix = v_suffix,
               delta_middle = substr(v_old, v_prefix + 1, length(v_old) - v_prefix - v_suffix), depth = v_depth
         WHERE v.workspace = o.workspace AND v.path = o.path AND v.version = o.version AND NOT v.deleted;
        RETURN;
      END IF;
    END IF;
  END IF;

  v_hash := blob_keep(v_old);
  UPDATE file_versions v SET blob = v_hash, hash = v_hash, depth = 0
   WHERE v.workspace = o.workspace AND v.path = o.path AND v.version = o.version AND NOT v.deleted;
END
$function$;

CREATE FUNCTION history_record()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
  v_renamed boolean := TG_OP = 'UPDATE' AND (OLD.workspace, OLD.path) IS DISTINCT FROM (NEW.workspace, NEW.path);
  v_old_on boolean := TG_OP <> 'INSERT' AND history_enabled(OLD.workspace);
  v_new_on boolean := CASE WHEN TG_OP = 'DELETE' THEN false
                           WHEN TG_OP = 'UPDATE' AND OLD.workspace = NEW.workspace THEN v_old_on
                           ELSE history_enabled(NEW.workspace) END;
BEGIN
  IF (TG_OP = 'DELETE' OR v_renamed) AND v_old_on THEN
    PERFORM history_retire(OLD, NULL);
    INSERT INTO file_versions (workspace, path, version, deleted, op, size, tag)
    VALUES (OLD.workspace, OLD.path, OLD.version, true, 'delete', OLD.size,
            nullif(current_setting('deepagents_backends.tag', true), ''))
    ON CONFLICT (workspace, path, version, deleted) DO UPDATE
      SET change_id = NULL, at = excluded.at, size = excluded.size, tag = excluded.tag;
  END IF;
  IF NOT v_new_on THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'INSERT' OR v_renamed THEN
    PERFORM history_capture(NEW, 'create', NULL, NEW.modified_at);
  ELSIF NEW.version > OLD.version THEN
    -- (files_version_rises: the bytes of a file never change without a new version)
    PERFORM history_retire(OLD, NEW);
    PERFORM history_capture(NEW, 'update', NULL, NEW.modified_at);
  END IF;
  RETURN NULL;
END
$function$;

REVOKE EXECUTE ON FUNCTION history_record(), history_retire(files, files),
  history_capture(files, text, bigint, timestamptz) FROM PUBLIC;

DROP TRIGGER files_a_history_updated ON files;
DROP FUNCTION history_updated();
DROP FUNCTION history_body_lost(text, bigint);
CREATE TRIGGER files_history AFTER UPDATE ON files
FOR EACH ROW EXECUTE FUNCTION history_record();

-- (the original comment)
CREATE OR REPLACE FUNCTION history_deleted()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
DECLARE
  v_tag text := nullif(current_setting('deepagents_backends.tag', true), '');
  v_on text[];
BEGIN
  SELECT array_agg(w.workspace) INTO v_on
  FROM (SELECT DISTINCT o.workspace FROM old_rows o OFFSET 0) w WHERE history_enabled(w.workspace); -- (as above)
  IF v_on IS NULL THEN
    RETURN NULL;
  END IF;
  -- A version written before history was kept for it: recorded now, as there all along.
  INSERT INTO file_versions (workspace, path, version, op, change_id, at, size, mime_type, is_text, hash, tag)
  SELECT o.workspace, o.path, o.version, CASE WHEN o.version = 1 THEN 'create' ELSE 'update' END, 0,
         o.modified_at, o.size, o.mime_type, o.chunk_set IS NOT NULL, o.hash, v_tag
  FROM old_rows o
  WHERE o.workspace = ANY (v_on)
    AND NOT EXISTS (SELECT 1 FROM file_versions v WHERE v.workspace = o.workspace AND v.path = o.path
                                                     AND v.version = o.version AND NOT v.deleted)
  ORDER BY o.workspace, o.path COLLATE "C"
  ON CONFLICT (workspace, path, version, deleted) DO NOTHING;
  -- The bytes of each version not kept yet (the live one, normally), stored once by SHA-256 and
  -- in hash order (the lock order of blobs); an existing blob is touched, which locks it against
  -- prune_history's collection, as blob_keep does. (The foreign key is checked at the end of the
  -- statement, when the blobs inserted beside the UPDATE are there.)
  WITH kept AS MATERIALIZED (
    SELECT o.workspace, o.path, o.version, o.hash, k.body
    FROM old_rows o
    JOIN file_versions v ON v.workspace = o.workspace AND v.path = o.path AND v.version = o.version AND NOT v.deleted
    CROSS JOIN LATERAL (SELECT file_body(file_text(o.content, o.chunk_set), o.bytes) AS body) k
    WHERE o.workspace = ANY (v_on) AND v.blob IS NULL AND v.delta_middle IS NULL
  ), stored AS (
    INSERT INTO blobs AS b (hash, data)
    SELECT DISTINCT ON (k.hash) k.hash, k.body FROM kept k ORDER BY k.hash
    ON CONFLICT (hash) DO UPDATE SET hash = b.hash
  )
  UPDATE file_versions v SET blob = k.hash, hash = k.hash, depth = 0
  FROM kept k
  WHERE v.workspace = k.workspace AND v.path = k.path AND v.version = k.version AND NOT v.deleted;
  INSERT INTO file_versions (workspace, path, version, deleted, op, size, tag)
  SELECT o.workspace, o.path, o.version, true, 'delete', o.size, v_tag
  FROM old_rows o
  WHERE o.workspace = ANY (v_on)
  ORDER BY o.workspace, o.path COLLATE "C"
  ON CONFLICT (workspace, path, version, deleted) DO UPDATE
    SET change_id = NULL, at = excluded.at, size = excluded.size, tag = excluded.tag;
  RETURN NULL;
END
$function$;


CREATE OR REPLACE FUNCTION history_collect_blobs()
 RETURNS bigint
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
AS $function$
DECLARE
  v_free bytea[];
  v_count bigint;
BEGIN
  SELECT coalesce(array_agg(s.hash), '{}') INTO v_free FROM (
    SELECT b.hash FROM blobs b
    WHERE NOT EXISTS (SELECT 1 FROM file_versions v WHERE v.blob = b.hash)
    FOR UPDATE SKIP LOCKED
  ) s;
  DELETE FROM blobs b
  WHERE b.hash = ANY (v_free) AND NOT EXISTS (SELECT 1 FROM file_versions v WHERE v.blob = b.hash);
  GET DIAGNOSTICS v_count = ROW_COUNT;
  RETURN v_count;
END
$function$;


CREATE OR REPLACE FUNCTION fs_fork(p_source text, p_target text, p_at bigint, p_history boolean DEFAULT false)
 RETURNS TABLE(files bigint, bytes bigint, versions bigint)
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
DECLARE
  v_position bigint;
  v_workspace text;
  v_files bigint;
  v_bytes bigint;
  v_versions bigint := 0;
  v_marked boolean := false;
BEGIN
  IF p_source = p_target THEN
    RAISE EXCEPTION 'cannot fork workspace "%" into itself', p_source USING ERRCODE = 'DA013';
  END IF;
  -- Under row-level security a workspace without a grant looks empty; say so instead.
  IF row_security_active('files') THEN
    FOREACH v_workspace IN ARRAY ARRAY[p_source, p_target] LOOP
      IF NOT EXISTS (SELECT 1 FROM workspace_grants g WHERE g.workspace = v_workspace OR g.workspace IS NULL) THEN
        RAISE EXCEPTION 'permission denied for workspace "%"', v_workspace
          USING ERRCODE = 'insufficient_privilege', DETAIL = v_workspace;
      END IF;
    END LOOP;
  END IF;
  IF p_history THEN
    IF NOT (has_table_privilege('file_versions', 'INSERT') AND has_table_privilege('tombstones', 'INSERT')) THEN
      RAISE EXCEPTION 'copying history into workspace "%" needs INSERT on file_versions and tombstones', p_target
        USING ERRCODE = 'DA015', DETAIL = p_target;
    END IF;
  END IF;
  -- One fork into a workspace at a time: a second waits here, then finds the files.
  PERFORM pg_advisory_xact_lock(hashtext('deepagents-backends:fork:' || current_schema() || E'\n' || p_target)::bigint);
  IF EXISTS (SELECT 1 FROM files f WHERE f.workspace = p_target) THEN
    RAISE EXCEPTION 'cannot fork into workspace "%": it has files', p_target USING ERRCODE = 'DA014', DETAIL = p_target;
  END IF;
  IF NOT p_history THEN
    -- A new target's change log and history start at the fork (0017): a horizon, and no change
    -- or version row per copied file. A target that had files, a log or history once keeps them,
    -- and is logged file by file as before.
    BEGIN
      INSERT INTO fork_marks (workspace) VALUES (p_target);
      v_marked := true;
    EXCEPTION WHEN SQLSTATE 'DA017' THEN
      v_marked := false;
    END;
  END IF;
  IF p_at IS NOT NULL THEN
    v_position := checkpoint_position(p_source, p_at);
  END IF;
  IF p_history THEN
    -- prune_history and set_history take this lock exclusively: no version or blob named below
    -- goes away, and the target's history setting holds. (Taken before any row lock: they lock
    -- no file rows, and the source's writers need not wait behind a long prune.)
    PERFORM pg_advisory_xact_lock_shared(hashtext('deepagents-backends:prune-history:' || current_schema()));
    IF NOT history_enabled(p_target) THEN
      RAISE EXCEPTION 'history is off for workspace "%"', p_target USING ERRCODE = 'DA011', DETAIL = p_target;
    END IF;
    -- A target that had files once keeps their history and version numbers, and a checkpoint
    -- taken on it marks a position in its own log: copies would mix with them, and reuse numbers
    -- its watchers have seen. Only a new workspace takes history.
    IF EXISTS (SELECT 1 FROM tombstones t WHERE t.workspace = p_target)
       OR EXISTS (SELECT 1 FROM file_versions v WHERE v.workspace = p_target)
       OR EXISTS (SELECT 1 FROM checkpoints c WHERE c.workspace = p_target)
       OR EXISTS (SELECT 1 FROM changes c WHERE c.workspace = p_target)
       OR EXISTS (SELECT 1 FROM changes_horizon h WHERE h.workspace = p_target) THEN
      RAISE EXCEPTION 'cannot fork with history into workspace "%": it has history of its own', p_target
        USING ERRCODE = 'DA016', DETAIL = p_target;
    END IF;
  END IF;
  -- Every row of the source, locked in path order: writers of them wait for this transaction, so
  -- the copy below (a new snapshot, taken once all are locked) is one state of the source, and
  -- no writer re-cuts a set in place while a copy points at it (chunks_assign sees the copies).
  PERFORM 1 FROM files f WHERE f.workspace = p_source ORDER BY f.path COLLATE "C" FOR SHARE;

  IF p_at IS NULL THEN
    WITH copied AS (
      -- A text file is copied without its text (content NULL): it is the text of its chunk set,
      -- which it shares (chunks_claim checks the caller may read it).
      INSERT INTO files (workspace, path, content, bytes, mime_type, size, line_count, chunk_set, hash, created_at,
                         modified_at, version)
      SELECT p_target, s.path, NULL, s.bytes, s.mime_type, s.size, s.line_count, s.chunk_set, s.hash, s.created_at,
             s.modified_at, CASE WHEN p_history THEN s.version ELSE 1 END
      FROM files s WHERE s.workspace = p_source
      ORDER BY s.path COLLATE "C"
      FOR SHARE -- (a file created since the first statement is locked too before its set is shared)
      RETURNING size
    )
    SELECT count(*), coalesce(sum(c.size), 0)::bigint INTO v_files, v_bytes FROM copied c;
  ELSE
    -- At a checkpoint: the rows that did not change since, shared; the others as history has them.
    WITH changed AS (
      SELECT h.path, h.from_version FROM history_compare(p_source, v_position, NULL, NULL) h
    ), unchanged AS (
      SELECT s.path, NULL::text AS content, s.bytes, s.mime_type, s.size, s.line_count, s.chunk_set, s.hash, s.created_at,
             s.modified_at, s.version
      FROM files s WHERE s.workspace = p_source AND NOT EXISTS (SELECT 1 FROM changed c WHERE c.path = s.path)
      FOR SHARE
    ), rebuilt AS (
      SELECT r.path, r.mime_type, r.is_text, version_data(p_source, r.path, r.from_version) AS data, r.at,
             r.from_version
      FROM (SELECT c.path, v.mime_type, v.is_text, c.from_version, v.at
            FROM changed c
            JOIN file_versions v ON v.workspace = p_source AND v.path = c.path
                                AND v.version = c.from_version AND NOT v.deleted
            WHERE c.from_version IS NOT NULL
            OFFSET 0) r -- a fence: pulled up, version_data would run once per use of `data`
    ), copied AS (
      INSERT INTO files (workspace, path, content, bytes, mime_type, size, line_count, chunk_set, hash, created_at,
                         modified_at, version)
      SELECT p_target, u.path, u.content, u.bytes, u.mime_type, u.size, u.line_count, u.chunk_set, u.hash, u.created_at,
             u.modified_at, CASE WHEN p_history THEN u.version ELSE 1 END
      FROM (
        SELECT * FROM unchanged
        UNION ALL
        SELECT b.path, t.content, t.bytes, b.mime_type, length(b.data), text_line_count(t.content), NULL, NULL, b.at, b.at,
               b.from_version
        FROM rebuilt b
        CROSS JOIN LATERAL (SELECT CASE WHEN b.is_text THEN convert_from(b.data, 'UTF8') END AS content,
                                   CASE WHEN NOT b.is_text THEN b.data END AS bytes) t
      ) u
      ORDER BY u.path COLLATE "C"
      RETURNING size
    )
    SELECT count(*), coalesce(sum(c.size), 0)::bigint INTO v_files, v_bytes FROM copied c;
  END IF;

  IF v_marked THEN
    -- What this transaction writes into the target from now on is logged (after the horizon).
    DELETE FROM fork_marks m WHERE m.xact = pg_current_xact_id() AND m.workspace = p_target;
  END IF;

  IF p_history THEN
    -- The source's versions, copied after the files (every copied file is locked by now, so its
    -- older versions cannot change under the copy): for a file of the fork, those below its
    -- version (history_inserted has just recorded that one); for a path without a file in the
    -- fork, those up to its last deletion (a version after it would be a live one, whose bytes
    -- are in a source file the fork did not copy). Up to the checkpoint, with p_at.
    INSERT INTO file_versions (workspace, path, version, deleted, op, change_id, at, size, mime_type, is_text,
                               hash, tag, blob, delta_prefix, delta_suffix, delta_middle, depth)
    SELECT p_target, v.path, v.version, v.deleted, v.op, v.change_id, v.at, v.size, v.mime_type, v.is_text,
           v.hash, v.tag, v.blob, v.delta_prefix, v.delta_suffix, v.delta_middle, v.depth
    FROM file_versions v
    LEFT JOIN files t ON t.workspace = p_target AND t.path = v.path
    WHERE v.workspace = p_source AND (v_position IS NULL OR v.change_id <= v_position)
      AND CASE WHEN t.path IS NOT NULL THEN v.version < t.version
               ELSE v.version <= (SELECT max(d.version) FROM file_versions d
                                  WHERE d.workspace = p_source AND d.path = v.path AND d.deleted
                                    AND (v_position IS NULL OR d.change_id <= v_position)) END
    ORDER BY v.path COLLATE "C", v.version, v.deleted;
    GET DIAGNOSTICS v_versions = ROW_COUNT;
    -- history_inserted recorded each copied file as created by the fork; it is the source's
    -- version, and keeps the source's record of it (op, time, tag, change). The fork's change log
    -- still has its creates, so diff and rewind from the fork's checkpoints see every file.
    UPDATE file_versions t SET op = s.op, at = s.at, tag = s.tag, change_id = s.change_id
    FROM files f
    JOIN file_versions s ON s.workspace = p_source AND s.path = f.path AND s.version = f.version AND NOT s.deleted
    WHERE f.workspace = p_target AND t.workspace = p_target AND t.path = f.path AND t.version = f.version
      AND NOT t.deleted AND (v_position IS NULL OR s.change_id <= v_position);
    v_versions := v_versions + v_files; -- (and the one history_inserted recorded for each file)
    -- Paths with history but no file in the fork: their numbers stay taken.
    INSERT INTO tombstones (workspace, path, version)
    SELECT p_target, v.path, max(v.version) FROM file_versions v
    WHERE v.workspace = p_target
      AND NOT EXISTS (SELECT 1 FROM files f WHERE f.workspace = p_target AND f.path = v.path)
    GROUP BY v.path ORDER BY v.path COLLATE "C";
  END IF;
  RETURN QUERY SELECT v_files, v_bytes, v_versions;
END
$function$;


DO $$
DECLARE
  v_dangling bigint;
BEGIN
  SELECT count(*) INTO v_dangling FROM file_versions v
  WHERE v.blob IS NOT NULL AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.hash = v.blob);
  IF v_dangling > 0 THEN
    RAISE EXCEPTION 'cannot restore the foreign key from file_versions.blob to blobs: % version rows name bytes that are gone', v_dangling
      USING HINT = 'Find them with: SELECT workspace, path, version FROM file_versions v WHERE v.blob IS NOT NULL AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.hash = v.blob); delete them or restore their blobs, then migrate down again.';
  END IF;
END
$$;
ALTER TABLE file_versions ADD CONSTRAINT file_versions_blob_fkey FOREIGN KEY (blob) REFERENCES blobs(hash);
ALTER TABLE file_versions RESET (fillfactor);
