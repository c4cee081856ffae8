-- Up Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
--
-- Version 13: a fork can take its source's file history along (fork(target, { history: true })).
--
-- 1. fs_fork gets p_history. With it, before the files are copied, every version row of the
--    source (those up to the checkpoint, with p_at) is copied to the target as it is: whole
--    contents stay shared in `blobs` (by hash), reverse deltas are copied inline (they are
--    small). Each file then keeps the version number it has in the source, so the copied chain
--    ends at the live row, as in the source: history, readVersion and restore answer in the fork
--    as in the source (the live version keeps the source's record of it, not "created by the
--    fork"). A path whose history is copied but which has no file in the fork (deleted
--    before the fork's state) gets a tombstone at its last version, so its numbers are never
--    reused there either. Checkpoints are not copied: a checkpoint is a position in the source's
--    change log, and the fork's log starts at the fork.
--    Who may: copying version rows needs INSERT on file_versions and tombstones, which the schema
--    owner has and a role restricted with grant_workspace does not (it gets DA015, not a partial
--    fork). A definer helper would let a role copy version rows it names, pointing at blobs it
--    cannot read; the owner's path is the safe one. History off in the target: DA011. A target
--    that had files once (it has tombstones or history): DA016, since copies would mix with its
--    own history and reuse version numbers its watchers have seen.
--    Pruning waits for the fork (the prune lock, shared, taken before any row lock), so no blob a
--    copied row names is collected meanwhile, and history cannot be turned off in the target
--    meanwhile. The version rows are copied after the files, whose rows the fork holds locked:
--    a file created in the source during the fork cannot leave a version row without its bytes.
--    The three-argument fs_fork of 0010 is still callable (p_history defaults to false).
-- 2. files_first_version keeps a version an INSERT names when it is above the path's tombstone
--    (raw SQL could already raise a version by UPDATE; numbers are still never reused): that is
--    how the fork's files keep their numbers. An INSERT naming none gets 1 or above the tombstone,
--    as before.
-- Released: never edit this file; add a new migration instead.

CREATE OR REPLACE FUNCTION files_first_version()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET enable_seqscan = off
 SET jit = off
AS $function$
BEGIN
  PERFORM 1 FROM files f WHERE f.workspace = NEW.workspace AND f.path = NEW.path
    AND f.parent = regexp_replace(NEW.path, '[^/]*$', '') FOR UPDATE;
  NEW.version := greatest(NEW.version, coalesce((SELECT t.version FROM tombstones t
                                                 WHERE t.workspace = NEW.workspace AND t.path = NEW.path), 0) + 1);
  RETURN NEW;
END
$function$;

DROP FUNCTION fs_fork(text, text, bigint);

-- The files of p_source (now, or as at its checkpoint p_at) in p_target, which must have none:
-- the rows are copied and share their chunk sets; files rebuilt from history are cut anew.
-- Without p_history, versions in the target start as new files do (1, or above a tombstone of
-- the target); with it, see above. `versions`: version rows copied.
-- Errors: DA013 fork into itself, DA014 target has files, DA012 no such checkpoint, 42501 no
-- grant, DA011 history off in the target, DA015 no right to copy history, DA016 the target has
-- history, checkpoints or a change log of its own. (p_history defaults to false: 0010's three-
-- argument call still works, and still returns files and bytes first.)
CREATE FUNCTION fs_fork(p_source text, p_target text, p_at bigint, p_history boolean DEFAULT false)
RETURNS TABLE (files bigint, bytes bigint, versions bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT SET plan_cache_mode = force_custom_plan AS $$
DECLARE
  v_position bigint;
  v_workspace text;
  v_files bigint;
  v_bytes bigint;
  v_versions bigint := 0;
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
      INSERT INTO files (workspace, path, content, bytes, mime_type, size, line_count, chunk_set, created_at,
                         modified_at, version)
      SELECT p_target, s.path, s.content, s.bytes, s.mime_type, s.size, s.line_count, s.chunk_set, s.created_at,
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
      SELECT s.path, s.content, s.bytes, s.mime_type, s.size, s.line_count, s.chunk_set, s.created_at,
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
      INSERT INTO files (workspace, path, content, bytes, mime_type, size, line_count, chunk_set, created_at,
                         modified_at, version)
      SELECT p_target, u.path, u.content, u.bytes, u.mime_type, u.size, u.line_count, u.chunk_set, u.created_at,
             u.modified_at, CASE WHEN p_history THEN u.version ELSE 1 END
      FROM (
        SELECT * FROM unchanged
        UNION ALL
        SELECT b.path, t.content, t.bytes, b.mime_type, length(b.data), text_line_count(t.content), NULL, b.at, b.at,
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
$$;

-- Down Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;

DROP FUNCTION fs_fork(text, text, bigint, boolean);

-- 0010's definitions.

CREATE OR REPLACE FUNCTION files_first_version()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET enable_seqscan = off
AS $function$
BEGIN
  PERFORM 1 FROM files f WHERE f.workspace = NEW.workspace AND f.path = NEW.path
    AND f.parent = regexp_replace(NEW.path, '[^/]*$', '') FOR UPDATE;
  NEW.version := coalesce((SELECT t.version FROM tombstones t
                           WHERE t.workspace = NEW.workspace AND t.path = NEW.path), 0) + 1;
  RETURN NEW;
END
$function$;

-- (0010's comment: versions in the target start as new files do.)
CREATE FUNCTION fs_fork(p_source text, p_target text, p_at bigint)
RETURNS TABLE (files bigint, bytes bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT SET plan_cache_mode = force_custom_plan AS $$
DECLARE
  v_position bigint;
  v_workspace text;
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
  -- One fork into a workspace at a time: a second waits here, then finds the files.
  PERFORM pg_advisory_xact_lock(hashtext('deepagents-backends:fork:' || current_schema() || E'\n' || p_target)::bigint);
  IF EXISTS (SELECT 1 FROM files f WHERE f.workspace = p_target) THEN
    RAISE EXCEPTION 'cannot fork into workspace "%": it has files', p_target USING ERRCODE = 'DA014', DETAIL = p_target;
  END IF;
  IF p_at IS NOT NULL THEN
    v_position := checkpoint_position(p_source, p_at);
  END IF;
  -- Every row of the source, locked in path order: writers of them wait for this transaction, so
  -- the copy below (a new snapshot, taken once all are locked) is one state of the source, and
  -- no writer re-cuts a set in place while a copy points at it (chunks_assign sees the copies).
  PERFORM 1 FROM files f WHERE f.workspace = p_source ORDER BY f.path COLLATE "C" FOR SHARE;

  IF p_at IS NULL THEN
    RETURN QUERY
    WITH copied AS (
      INSERT INTO files (workspace, path, content, bytes, mime_type, size, line_count, chunk_set, created_at, modified_at)
      SELECT p_target, s.path, s.content, s.bytes, s.mime_type, s.size, s.line_count, s.chunk_set, s.created_at, s.modified_at
      FROM files s WHERE s.workspace = p_source
      ORDER BY s.path COLLATE "C"
      FOR SHARE -- (a file created since the first statement is locked too before its set is shared)
      RETURNING size
    )
    SELECT count(*), coalesce(sum(c.size), 0)::bigint FROM copied c;
    RETURN;
  END IF;

  -- At a checkpoint: the rows that did not change since, shared; the others as history has them.
  RETURN QUERY
  WITH changed AS (
    SELECT h.path, h.from_version FROM history_compare(p_source, v_position, NULL, NULL) h
  ), unchanged AS (
    SELECT s.path, s.content, s.bytes, s.mime_type, s.size, s.line_count, s.chunk_set, s.created_at, s.modified_at
    FROM files s WHERE s.workspace = p_source AND NOT EXISTS (SELECT 1 FROM changed c WHERE c.path = s.path)
    FOR SHARE
  ), rebuilt AS (
    SELECT r.path, r.mime_type, r.is_text, version_data(p_source, r.path, r.from_version) AS data, r.at
    FROM (SELECT c.path, v.mime_type, v.is_text, c.from_version, v.at
          FROM changed c
          JOIN file_versions v ON v.workspace = p_source AND v.path = c.path
                              AND v.version = c.from_version AND NOT v.deleted
          WHERE c.from_version IS NOT NULL
          OFFSET 0) r -- a fence: pulled up, version_data would run once per use of `data`
  ), copied AS (
    INSERT INTO files (workspace, path, content, bytes, mime_type, size, line_count, chunk_set, created_at, modified_at)
    SELECT p_target, u.path, u.content, u.bytes, u.mime_type, u.size, u.line_count, u.chunk_set, u.created_at, u.modified_at
    FROM (
      SELECT * FROM unchanged
      UNION ALL
      SELECT b.path, t.content, t.bytes, b.mime_type, length(b.data), text_line_count(t.content), NULL, b.at, b.at
      FROM rebuilt b
      CROSS JOIN LATERAL (SELECT CASE WHEN b.is_text THEN convert_from(b.data, 'UTF8') END AS content,
                                 CASE WHEN NOT b.is_text THEN b.data END AS bytes) t
    ) u
    ORDER BY u.path COLLATE "C"
    RETURNING size
  )
  SELECT count(*), coalesce(sum(c.size), 0)::bigint FROM copied c;
END
$$;
ALTER FUNCTION files_first_version() SET jit = off; -- as 0011 left it
