-- Up Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
--
-- Version 17: a fork into a new workspace starts that workspace's change log and history at the
-- fork, with no change row and no version row per copied file.
--
-- Why (BENCHMARKS.md, "Fork"): after 0016 a fork copies no text, and what it still adds is per-file
-- bookkeeping, measured at about 840 bytes a file: the file row and its indexes (~360), a first
-- version in file_versions (~260) and a 'create' in the change log (~190). Issue 13 asks for
-- <= 5% of a 100 MB, 10,000-file workspace: 500 bytes a file. Only the file rows are needed.
--
-- 1. fork_marks: a row (transaction, workspace) says "this transaction is forking into this
--    workspace". Any role may insert one for a workspace it is granted, for its own transaction
--    only (the policy), and only while the workspace is new: no files, log, horizon, history,
--    checkpoints or tombstones (fork_log_start, after the policy has passed, so nobody learns
--    anything about a workspace they may not use; DA017 otherwise). fork_log_start stages a
--    'horizon' row for the commit (changes_pending, the owner's) and arms the flush.
-- 2. While a mark is there, rows inserted into its workspace are neither staged for the log
--    (changes_stage) nor given a first version row (history_inserted). fs_fork marks a new
--    target, inserts the copies, and removes the mark: anything else the transaction writes
--    there is logged after the horizon. A target that is not new is forked as before (file by
--    file in the log); so is a fork with history (its versions are copied rows anyway).
-- 3. At commit, under the commit-order lock, changes_flush_now gives each forked workspace its
--    horizon (changes_horizon, as prune_changes leaves one) from the change-id sequence before
--    any change of the transaction: above every id committed before the fork, so every older
--    cursor is told to resync (DA001), including one that read a concurrent writer's change
--    into the workspace; below every later change. It checks the file/directory rule over every
--    file of a forked workspace (its files were not logged; a concurrent writer's file under a
--    forked file is refused at the fork's commit, as before), notifies the workspace's channel
--    and removes the transaction's marks. A watch started after it starts at the horizon
--    (fs_changes_head(workspace)).
-- 4. A checkpoint older than its workspace's horizon marks a state the log no longer has (one
--    taken while a fork was writing the workspace, before the fork committed, or while
--    prune_changes ran past it): checkpoint_position refuses it (DA018) instead of letting diff
--    and rewind answer from a partial log.
-- 5. A current version that no row records (a fork's file not changed since the fork, or one
--    last written while history was off) is read off the file itself: version_meta (mime type,
--    text or not, hash) serves fs_history, fs_read_version, fs_restore and version_data, and is
--    recorded with change id 0 (before the log) when the file next changes, as 0008 does for
--    versions written before history was kept. history_compare takes the current side's hash
--    from files.hash (0016) instead of its version row.
-- Released: never edit this file; add a new migration instead.

CREATE UNLOGGED TABLE fork_marks (
  xact xid8 NOT NULL DEFAULT pg_current_xact_id(),
  workspace text NOT NULL,
  PRIMARY KEY (xact, workspace)
);
ALTER TABLE fork_marks ENABLE ROW LEVEL SECURITY;
CREATE POLICY fork_marks_granted ON fork_marks
  USING (workspace IN (SELECT g.workspace FROM workspace_grants g)
         OR EXISTS (SELECT 1 FROM workspace_grants g WHERE g.workspace IS NULL))
  WITH CHECK ((workspace IN (SELECT g.workspace FROM workspace_grants g)
         OR EXISTS (SELECT 1 FROM workspace_grants g WHERE g.workspace IS NULL))
              AND xact = pg_current_xact_id());
GRANT SELECT, INSERT, DELETE ON fork_marks TO PUBLIC;

-- (AFTER: the policy has passed, so a role learns nothing of a workspace it is not granted.)
CREATE FUNCTION fork_log_start() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT SET enable_seqscan = off SET jit = off AS $$
BEGIN
  IF NEW.xact <> pg_current_xact_id() THEN
    RAISE EXCEPTION 'a fork mark is for the transaction that writes it' USING ERRCODE = 'insufficient_privilege';
  END IF;
  -- fs_fork's lock on the target (held already when it is the caller): one fork at a time.
  PERFORM pg_advisory_xact_lock(hashtext('deepagents-backends:fork:' || current_schema() || E'\n' || NEW.workspace)::bigint);
  IF EXISTS (SELECT 1 FROM files f WHERE f.workspace = NEW.workspace)
     OR EXISTS (SELECT 1 FROM changes c WHERE c.workspace = NEW.workspace)
     OR EXISTS (SELECT 1 FROM changes_horizon h WHERE h.workspace = NEW.workspace)
     OR EXISTS (SELECT 1 FROM file_versions v WHERE v.workspace = NEW.workspace)
     OR EXISTS (SELECT 1 FROM checkpoints c WHERE c.workspace = NEW.workspace)
     OR EXISTS (SELECT 1 FROM tombstones t WHERE t.workspace = NEW.workspace) THEN
    RAISE EXCEPTION 'the change log of workspace "%" can start at a fork only while the workspace is new', NEW.workspace
      USING ERRCODE = 'DA017', DETAIL = NEW.workspace;
  END IF;
  -- The horizon is taken at commit (changes_flush_now), in commit order like every change id.
  INSERT INTO changes_pending (workspace, path, op, version, size) VALUES (NEW.workspace, '', 'horizon', 0, 0);
  INSERT INTO changes_flush (xact) VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
  RETURN NULL;
END
$$;
REVOKE EXECUTE ON FUNCTION fork_log_start() FROM PUBLIC;
CREATE TRIGGER fork_marks_start AFTER INSERT ON fork_marks FOR EACH ROW EXECUTE FUNCTION fork_log_start();

CREATE OR REPLACE FUNCTION changes_flush_now()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
  v_ids bigint[];
  v_workspaces text[];
  v_paths text[] COLLATE "C"; -- (as changes.path: compared with files.path below)
  v_ops text[];
  v_bad record;
  v_note record;
  v_forked text[];
  v_horizons bigint[];
BEGIN
  DELETE FROM changes_flush f WHERE f.xact = NEW.xact;
  PERFORM changes_lock();
  -- Forks' horizons (0017), before any change id of this transaction is taken.
  WITH started AS (
    DELETE FROM changes_pending p WHERE p.xact = NEW.xact AND p.op = 'horizon' RETURNING p.seq, p.workspace
  ), horizon AS (
    INSERT INTO changes_horizon AS h (workspace, pruned_to)
    SELECT s.workspace, nextval('changes_id_seq') FROM (SELECT s.workspace FROM started s ORDER BY s.seq) s
    ON CONFLICT (workspace) DO UPDATE SET pruned_to = greatest(h.pruned_to, excluded.pruned_to)
    RETURNING h.workspace, h.pruned_to
  )
  SELECT array_agg(h.workspace), array_agg(h.pruned_to) INTO v_forked, v_horizons FROM horizon h;
  DELETE FROM fork_marks m WHERE m.xact = NEW.xact;
  WITH staged AS (
    DELETE FROM changes_pending p WHERE p.xact = NEW.xact
    RETURNING p.seq, p.workspace, p.path, p.op, p.version, p.size
  ), logged AS (
    INSERT INTO changes (workspace, path, op, version, size)
    SELECT s.workspace, s.path, s.op, s.version, s.size FROM staged s ORDER BY s.seq
    RETURNING changes.id, changes.workspace, changes.path, changes.op, changes.version
  ), stamped AS (
    UPDATE file_versions v SET change_id = l.id
    FROM (SELECT DISTINCT ON (l.workspace, l.path, l.version, l.op = 'delete') l.*
          FROM logged l ORDER BY l.workspace, l.path, l.version, l.op = 'delete', l.id) l
    WHERE v.workspace = l.workspace AND v.path = l.path AND v.version = l.version
      AND v.deleted = (l.op = 'delete') AND v.change_id IS NULL
  )
  SELECT array_agg(l.id ORDER BY l.id), array_agg(l.workspace ORDER BY l.id), array_agg(l.path ORDER BY l.id),
         array_agg(l.op ORDER BY l.id)
    INTO v_ids, v_workspaces, v_paths, v_ops
  FROM logged l;
  IF v_ids IS NULL AND v_forked IS NULL THEN
    RETURN NULL;
  END IF;

  -- The file/directory rule, for each create whose file is still there (0005's check, per set):
  -- no ancestor of it is a file, and it is not a directory. The first broken one, in log order.
  -- Every file of a forked workspace counts as created (none of them was logged).
  SELECT c.path, b.file INTO v_bad
  FROM (SELECT * FROM unnest(v_ids, v_workspaces, v_paths, v_ops) AS l(id, workspace, path, op)
        UNION ALL
        SELECT 0, f.workspace, f.path, 'create' FROM files f WHERE f.workspace = ANY (v_forked)) c
  CROSS JOIN LATERAL (
    SELECT x.file FROM (
      SELECT a.dir AS file, a.i FROM unnest(path_ancestors(c.path)) WITH ORDINALITY AS a(dir, i)
      WHERE (SELECT true FROM files f WHERE f.workspace = c.workspace AND f.path = a.dir COLLATE "C"
             AND f.parent = regexp_replace(a.dir, '[^/]*$', '') COLLATE "C" LIMIT 1)
      UNION ALL
      SELECT NULL, 2147483647
      WHERE (SELECT true FROM files f WHERE f.workspace = c.workspace
             AND f.path >= c.path || '/' AND f.path < c.path || '0'
             AND f.parent >= c.path || '/' AND f.parent < c.path || '0' LIMIT 1)
    ) x ORDER BY x.i LIMIT 1
  ) b
  WHERE c.op = 'create'
    AND (SELECT true FROM files n WHERE n.workspace = c.workspace AND n.path = c.path
         AND n.parent = regexp_replace(c.path, '[^/]*$', '') LIMIT 1)
  ORDER BY c.id LIMIT 1;
  IF FOUND THEN
    IF v_bad.file IS NOT NULL THEN
      RAISE EXCEPTION 'cannot create "%": "%" is a file, not a directory', v_bad.path, v_bad.file
        USING ERRCODE = 'DA002', DETAIL = v_bad.file;
    END IF;
    RAISE EXCEPTION 'cannot create file "%": it is a directory', v_bad.path
      USING ERRCODE = 'DA003', DETAIL = v_bad.path;
  END IF;

  -- One notification per workspace: the last change id, or a fork's horizon (watchers read the log
  -- from their cursor; one older than the horizon is told to resync).
  FOR v_note IN
    SELECT c.workspace, max(c.id) AS id
    FROM (SELECT * FROM unnest(v_ids, v_workspaces) AS l(id, workspace)
          UNION ALL
          SELECT * FROM unnest(v_horizons, v_forked)) c
    GROUP BY c.workspace
  LOOP
    PERFORM pg_notify(changes_channel(v_note.workspace), json_build_object('id', v_note.id)::text);
  END LOOP;
  RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION checkpoint_position(p_workspace text, p_id bigint)
 RETURNS bigint
 LANGUAGE plpgsql
 STABLE
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v_change bigint;
BEGIN
  SELECT c.change_id INTO v_change FROM checkpoints c WHERE c.workspace = p_workspace AND c.id = p_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'checkpoint % does not exist in workspace "%"', p_id, p_workspace
      USING ERRCODE = 'DA012', DETAIL = p_id::text;
  END IF;
  -- (Neither prune_changes nor a fork moves the horizon past a checkpoint it can see; one taken
  -- concurrently, before they committed, is older than the log that is left.)
  IF v_change < (SELECT h.pruned_to FROM changes_horizon h WHERE h.workspace = p_workspace) THEN
    RAISE EXCEPTION 'checkpoint % of workspace "%" is older than the retained change log: it was taken while a fork or pruneChanges was writing the workspace', p_id, p_workspace
      USING ERRCODE = 'DA018', DETAIL = p_id::text;
  END IF;
  RETURN v_change;
END
$function$;

-- Where a watch without a cursor starts: the newest change, or the workspace's horizon if that is
-- newer (a fork's, which is no change row).
CREATE FUNCTION fs_changes_head(p_workspace text) RETURNS bigint
LANGUAGE sql STABLE SET search_path FROM CURRENT
RETURN greatest(fs_changes_head(), (SELECT h.pruned_to FROM changes_horizon h WHERE h.workspace = p_workspace));

-- A kept version's mime type, whether it is text, and its hash; for the current version when no
-- row records it yet (with history on), the file's. All NULL: no such version.
CREATE FUNCTION version_meta(p_workspace text, p_path text, p_version bigint,
                             OUT mime_type text, OUT is_text boolean, OUT hash bytea)
LANGUAGE sql STABLE SET search_path FROM CURRENT SET enable_seqscan = off SET jit = off AS $$
  SELECT v.mime_type, v.is_text, v.hash FROM file_versions v
  WHERE v.workspace = p_workspace AND v.path = p_path AND v.version = p_version AND NOT v.deleted
  UNION ALL
  SELECT f.mime_type, f.chunk_set IS NOT NULL, f.hash FROM files f
  WHERE f.workspace = p_workspace AND f.path = p_path AND f.version = p_version AND history_enabled(p_workspace)
  LIMIT 1
$$;

CREATE OR REPLACE FUNCTION changes_stage()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
DECLARE
  v_rows bigint;
BEGIN
  IF TG_OP = 'INSERT' THEN
    -- (Not a fork's own rows: its target's log starts after them, at fork_log_start's horizon.)
    INSERT INTO changes_pending (workspace, path, op, version, size)
    SELECT n.workspace, n.path, 'create', n.version, n.size FROM new_rows n
    WHERE n.workspace NOT IN (SELECT m.workspace FROM fork_marks m WHERE m.xact = pg_current_xact_id())
    ORDER BY n.workspace, n.path;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO changes_pending (workspace, path, op, version, size)
    SELECT o.workspace, o.path, 'delete', o.version, o.size FROM old_rows o ORDER BY o.workspace, o.path;
  ELSE
    -- Old and new rows paired by grouping, not by a join: the planner estimates a transition
    -- table at a few rows and nested-looped one over the other (quadratic in the statement).
    INSERT INTO changes_pending (workspace, path, op, version, size)
    SELECT k.workspace, k.path,
           CASE WHEN k.has_new AND k.has_old THEN 'update' WHEN k.has_new THEN 'create' ELSE 'delete' END,
           k.version, k.size
    FROM (
      SELECT u.workspace, u.path, bool_or(u.is_new) AS has_new, bool_or(NOT u.is_new) AS has_old,
             (array_agg(u.version ORDER BY u.is_new DESC))[1] AS version, -- the new row's, if any
             (array_agg(u.size ORDER BY u.is_new DESC))[1] AS size
      FROM (SELECT o.workspace, o.path, o.version, o.size, false AS is_new FROM old_rows o
            UNION ALL
            SELECT n.workspace, n.path, n.version, n.size, true FROM new_rows n) u
      GROUP BY u.workspace, u.path
    ) k
    ORDER BY k.has_new, k.workspace, k.path;
  END IF;
  GET DIAGNOSTICS v_rows = ROW_COUNT;
  IF v_rows > 0 THEN
    INSERT INTO changes_flush (xact) VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END
$function$;


CREATE OR REPLACE FUNCTION history_inserted()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
BEGIN
  INSERT INTO file_versions AS v (workspace, path, version, op, change_id, at, size, mime_type, is_text, hash, tag)
  SELECT n.workspace, n.path, n.version, 'create', NULL, n.modified_at, n.size, n.mime_type, n.chunk_set IS NOT NULL,
         n.hash, nullif(current_setting('deepagents_backends.tag', true), '')
  FROM new_rows n
  -- (OFFSET 0: pushed below the DISTINCT, history_enabled ran once per row, not per workspace)
  WHERE n.workspace IN (SELECT w.workspace FROM (SELECT DISTINCT r.workspace FROM new_rows r OFFSET 0) w
                        WHERE history_enabled(w.workspace))
    -- (A fork's own rows have no version row: version_meta reads their versions off the files.)
    AND n.workspace NOT IN (SELECT m.workspace FROM fork_marks m WHERE m.xact = pg_current_xact_id())
  ORDER BY n.workspace, n.path COLLATE "C" -- version rows are locked in path order too
  ON CONFLICT (workspace, path, version, deleted) DO UPDATE
    SET op = excluded.op, change_id = excluded.change_id, at = excluded.at, size = excluded.size,
        mime_type = excluded.mime_type, is_text = excluded.is_text, hash = excluded.hash, tag = excluded.tag,
        blob = NULL, delta_prefix = NULL, delta_suffix = NULL, delta_middle = NULL, depth = 0;
  RETURN NULL;
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


CREATE OR REPLACE FUNCTION fs_history(p_workspace text, p_path text)
 RETURNS TABLE(version bigint, op text, change_id bigint, size bigint, mime_type text, at timestamp with time zone, tag text)
 LANGUAGE sql
 STABLE
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
  SELECT s.version, s.op, s.change_id, s.size, s.mime_type, s.at, s.tag FROM (
    SELECT v.version, v.deleted, v.op, v.change_id, v.size, v.mime_type, v.at, v.tag
    FROM file_versions v
    WHERE v.workspace = p_workspace AND v.path = p_path
    UNION ALL
    -- The current version when no row records it yet (see version_meta): there since before the
    -- log (change id 0), as a version written before history was kept is recorded.
    SELECT f.version, false, CASE WHEN f.version = 1 THEN 'create' ELSE 'update' END, 0, f.size, f.mime_type,
           f.modified_at, NULL
    FROM files f
    WHERE f.workspace = p_workspace AND f.path = p_path AND history_enabled(p_workspace)
      AND NOT EXISTS (SELECT 1 FROM file_versions v WHERE v.workspace = p_workspace AND v.path = p_path
                                                       AND v.version = f.version AND NOT v.deleted)
  ) s
  ORDER BY s.version, s.deleted
$function$;


CREATE OR REPLACE FUNCTION fs_read_version(p_workspace text, p_path text, p_version bigint, p_offset integer, p_limit integer)
 RETURNS TABLE(mime_type text, bytes bytea, total_lines integer, window_text text, window_lines integer)
 LANGUAGE plpgsql
 STABLE
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v record;
  v_data bytea;
  v_text text;
BEGIN
  SELECT * INTO v FROM version_meta(p_workspace, p_path, p_version);
  IF v.hash IS NULL THEN
    RETURN;
  END IF;
  v_data := version_data(p_workspace, p_path, p_version);
  IF NOT v.is_text THEN
    RETURN QUERY SELECT v.mime_type, v_data, 0, NULL::text, 0;
    RETURN;
  END IF;
  v_text := convert_from(v_data, 'UTF8');
  RETURN QUERY
    SELECT v.mime_type, NULL::bytea, text_line_count(v_text), string_agg(l.line, E'\n' ORDER BY l.n), count(*)::integer
    FROM chunk_lines(v_text) l
    WHERE l.n > p_offset AND l.n <= p_offset::bigint + p_limit;
END
$function$;


CREATE OR REPLACE FUNCTION fs_restore(p_workspace text, p_path text, p_version bigint, p_if_version bigint)
 RETURNS TABLE(status text, version bigint, conflict text)
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v record;
  v_data bytea;
BEGIN
  SELECT * INTO v FROM version_meta(p_workspace, p_path, p_version);
  IF v.hash IS NULL THEN
    RETURN QUERY SELECT 'no_version'::text, 0::bigint, NULL::text;
    RETURN;
  END IF;
  v_data := version_data(p_workspace, p_path, p_version);
  RETURN QUERY
    SELECT w.status, w.version, w.conflict
    FROM fs_write(p_workspace, p_path, CASE WHEN v.is_text THEN convert_from(v_data, 'UTF8') END,
                  CASE WHEN NOT v.is_text THEN v_data END, v.mime_type, p_if_version) w;
END
$function$;


CREATE OR REPLACE FUNCTION version_data(p_workspace text, p_path text, p_version bigint)
 RETURNS bytea
 LANGUAGE plpgsql
 STABLE
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v_hash bytea := (version_meta(p_workspace, p_path, p_version)).hash;
  v_end file_versions;
  v_end_version bigint;
  v_data bytea;
  v_step record;
BEGIN
  IF v_hash IS NULL THEN
    RETURN NULL;
  END IF;
  SELECT * INTO v_end FROM file_versions v
  WHERE v.workspace = p_workspace AND v.path = p_path AND v.version >= p_version AND NOT v.deleted
    AND v.delta_middle IS NULL
  ORDER BY v.version LIMIT 1;
  IF v_end.blob IS NOT NULL THEN
    SELECT b.data, v_end.version INTO v_data, v_end_version FROM blobs b WHERE b.hash = v_end.blob;
  ELSE
    -- The chain ends at the current file: the version of v_end, or, when no row records the
    -- current version (version_meta), the file's.
    SELECT file_body(file_text(f.content, f.chunk_set), f.bytes), f.version INTO v_data, v_end_version FROM files f
    WHERE f.workspace = p_workspace AND f.path = p_path AND f.version = coalesce(v_end.version, f.version)
      AND f.version >= p_version;
  END IF;
  IF v_data IS NULL THEN
    RAISE EXCEPTION 'the history of "%" is damaged: version % is neither stored nor current', p_path,
      coalesce(v_end.version, p_version)
      USING ERRCODE = 'DA010';
  END IF;
  FOR v_step IN
    SELECT v.version, v.delta_prefix, v.delta_suffix, v.delta_middle FROM file_versions v
    WHERE v.workspace = p_workspace AND v.path = p_path AND NOT v.deleted
      AND v.version >= p_version AND v.version < v_end_version
    ORDER BY v.version DESC
  LOOP
    v_data := substr(v_data, 1, v_step.delta_prefix) || v_step.delta_middle
              || substr(v_data, length(v_data) - v_step.delta_suffix + 1);
  END LOOP;
  -- Every answer is checked against the hash recorded with the version: history that raw SQL
  -- (or a bug) damaged is an error, never other bytes.
  IF sha256(v_data) IS DISTINCT FROM v_hash THEN
    RAISE EXCEPTION 'the history of "%" is damaged: version % does not rebuild to its recorded hash', p_path, p_version
      USING ERRCODE = 'DA010';
  END IF;
  RETURN v_data;
END
$function$;


CREATE OR REPLACE FUNCTION history_compare(p_workspace text, p_from bigint, p_to bigint, p_scope text[])
 RETURNS TABLE(path text, from_version bigint, from_size bigint, from_hash bytea, from_mime text, to_version bigint, to_size bigint, to_hash bytea, to_mime text)
 LANGUAGE sql
 STABLE
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
  WITH touched AS (
    SELECT DISTINCT c.path FROM changes c
    WHERE c.workspace = p_workspace
      AND c.id > least(p_from, coalesce(p_to, p_from))
      AND (p_to IS NULL OR c.id <= greatest(p_from, p_to))
      AND (p_scope IS NULL OR EXISTS (SELECT 1 FROM unnest(p_scope) s(p)
                                      WHERE s.p = '/' OR c.path = s.p OR left(c.path, length(s.p) + 1) = s.p || '/'))
  ), states AS (
    SELECT t.path, a.version AS from_version, a.size AS from_size, a.hash AS from_hash, a.mime_type AS from_mime,
           b.version AS to_version, b.size AS to_size, b.hash AS to_hash, b.mime_type AS to_mime
    FROM touched t
    LEFT JOIN LATERAL (
      SELECT s.* FROM (SELECT v.version, v.deleted, v.size, v.hash, v.mime_type FROM file_versions v
                       WHERE v.workspace = p_workspace AND v.path = t.path AND v.change_id <= p_from
                       ORDER BY v.change_id DESC LIMIT 1) s
      WHERE NOT s.deleted
    ) a ON true
    LEFT JOIN LATERAL (
      SELECT s.* FROM (SELECT v.version, v.deleted, v.size, v.hash, v.mime_type FROM file_versions v
                       WHERE v.workspace = p_workspace AND v.path = t.path AND v.change_id <= p_to
                       ORDER BY v.change_id DESC LIMIT 1) s
      WHERE NOT s.deleted AND p_to IS NOT NULL
      UNION ALL
      SELECT f.version, false, f.size, f.hash, f.mime_type FROM files f
      WHERE p_to IS NULL AND f.workspace = p_workspace AND f.path = t.path
    ) b ON true
  )
  SELECT * FROM states s
  WHERE (s.from_hash, s.from_mime) IS DISTINCT FROM (s.to_hash, s.to_mime)
  ORDER BY s.path
$function$;


-- Down Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;

-- A fork's unchanged files (and any current version no row records, with history on) get the
-- version row 0016's readers expect: as there before the log (change id 0).
INSERT INTO file_versions (workspace, path, version, op, change_id, at, size, mime_type, is_text, hash)
SELECT f.workspace, f.path, f.version, CASE WHEN f.version = 1 THEN 'create' ELSE 'update' END, 0, f.modified_at,
       f.size, f.mime_type, f.chunk_set IS NOT NULL, f.hash
FROM files f
WHERE history_enabled(f.workspace)
  AND NOT EXISTS (SELECT 1 FROM file_versions v WHERE v.workspace = f.workspace AND v.path = f.path
                                                   AND v.version = f.version AND NOT v.deleted)
ORDER BY f.workspace, f.path COLLATE "C";

CREATE OR REPLACE FUNCTION changes_flush_now()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
  v_ids bigint[];
  v_workspaces text[];
  v_paths text[] COLLATE "C"; -- (as changes.path: compared with files.path below)
  v_ops text[];
  v_bad record;
  v_note record;
BEGIN
  DELETE FROM changes_flush f WHERE f.xact = NEW.xact;
  PERFORM changes_lock();
  WITH staged AS (
    DELETE FROM changes_pending p WHERE p.xact = NEW.xact
    RETURNING p.seq, p.workspace, p.path, p.op, p.version, p.size
  ), logged AS (
    INSERT INTO changes (workspace, path, op, version, size)
    SELECT s.workspace, s.path, s.op, s.version, s.size FROM staged s ORDER BY s.seq
    RETURNING changes.id, changes.workspace, changes.path, changes.op, changes.version
  ), stamped AS (
    UPDATE file_versions v SET change_id = l.id
    FROM (SELECT DISTINCT ON (l.workspace, l.path, l.version, l.op = 'delete') l.*
          FROM logged l ORDER BY l.workspace, l.path, l.version, l.op = 'delete', l.id) l
    WHERE v.workspace = l.workspace AND v.path = l.path AND v.version = l.version
      AND v.deleted = (l.op = 'delete') AND v.change_id IS NULL
  )
  SELECT array_agg(l.id ORDER BY l.id), array_agg(l.workspace ORDER BY l.id), array_agg(l.path ORDER BY l.id),
         array_agg(l.op ORDER BY l.id)
    INTO v_ids, v_workspaces, v_paths, v_ops
  FROM logged l;
  IF v_ids IS NULL THEN
    RETURN NULL;
  END IF;

  -- The file/directory rule, for each create whose file is still there (0005's check, per set):
  -- no ancestor of it is a file, and it is not a directory. The first broken one, in log order.
  SELECT c.path, b.file INTO v_bad
  FROM unnest(v_ids, v_workspaces, v_paths, v_ops) AS c(id, workspace, path, op)
  CROSS JOIN LATERAL (
    SELECT x.file FROM (
      SELECT a.dir AS file, a.i FROM unnest(path_ancestors(c.path)) WITH ORDINALITY AS a(dir, i)
      WHERE (SELECT true FROM files f WHERE f.workspace = c.workspace AND f.path = a.dir COLLATE "C"
             AND f.parent = regexp_replace(a.dir, '[^/]*$', '') COLLATE "C" LIMIT 1)
      UNION ALL
      SELECT NULL, 2147483647
      WHERE (SELECT true FROM files f WHERE f.workspace = c.workspace
             AND f.path >= c.path || '/' AND f.path < c.path || '0'
             AND f.parent >= c.path || '/' AND f.parent < c.path || '0' LIMIT 1)
    ) x ORDER BY x.i LIMIT 1
  ) b
  WHERE c.op = 'create'
    AND (SELECT true FROM files n WHERE n.workspace = c.workspace AND n.path = c.path
         AND n.parent = regexp_replace(c.path, '[^/]*$', '') LIMIT 1)
  ORDER BY c.id LIMIT 1;
  IF FOUND THEN
    IF v_bad.file IS NOT NULL THEN
      RAISE EXCEPTION 'cannot create "%": "%" is a file, not a directory', v_bad.path, v_bad.file
        USING ERRCODE = 'DA002', DETAIL = v_bad.file;
    END IF;
    RAISE EXCEPTION 'cannot create file "%": it is a directory', v_bad.path
      USING ERRCODE = 'DA003', DETAIL = v_bad.path;
  END IF;

  -- One notification per workspace: the last change id (watchers read the log from their cursor).
  FOR v_note IN
    SELECT c.workspace, max(c.id) AS id FROM unnest(v_ids, v_workspaces) AS c(id, workspace) GROUP BY c.workspace
  LOOP
    PERFORM pg_notify(changes_channel(v_note.workspace), json_build_object('id', v_note.id)::text);
  END LOOP;
  RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION checkpoint_position(p_workspace text, p_id bigint)
 RETURNS bigint
 LANGUAGE plpgsql
 STABLE
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v_change bigint;
BEGIN
  SELECT c.change_id INTO v_change FROM checkpoints c WHERE c.workspace = p_workspace AND c.id = p_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'checkpoint % does not exist in workspace "%"', p_id, p_workspace
      USING ERRCODE = 'DA012', DETAIL = p_id::text;
  END IF;
  RETURN v_change;
END
$function$;

CREATE OR REPLACE FUNCTION changes_stage()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
DECLARE
  v_rows bigint;
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO changes_pending (workspace, path, op, version, size)
    SELECT n.workspace, n.path, 'create', n.version, n.size FROM new_rows n ORDER BY n.workspace, n.path;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO changes_pending (workspace, path, op, version, size)
    SELECT o.workspace, o.path, 'delete', o.version, o.size FROM old_rows o ORDER BY o.workspace, o.path;
  ELSE
    -- Old and new rows paired by grouping, not by a join: the planner estimates a transition
    -- table at a few rows and nested-looped one over the other (quadratic in the statement).
    INSERT INTO changes_pending (workspace, path, op, version, size)
    SELECT k.workspace, k.path,
           CASE WHEN k.has_new AND k.has_old THEN 'update' WHEN k.has_new THEN 'create' ELSE 'delete' END,
           k.version, k.size
    FROM (
      SELECT u.workspace, u.path, bool_or(u.is_new) AS has_new, bool_or(NOT u.is_new) AS has_old,
             (array_agg(u.version ORDER BY u.is_new DESC))[1] AS version, -- the new row's, if any
             (array_agg(u.size ORDER BY u.is_new DESC))[1] AS size
      FROM (SELECT o.workspace, o.path, o.version, o.size, false AS is_new FROM old_rows o
            UNION ALL
            SELECT n.workspace, n.path, n.version, n.size, true FROM new_rows n) u
      GROUP BY u.workspace, u.path
    ) k
    ORDER BY k.has_new, k.workspace, k.path;
  END IF;
  GET DIAGNOSTICS v_rows = ROW_COUNT;
  IF v_rows > 0 THEN
    INSERT INTO changes_flush (xact) VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION history_inserted()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
BEGIN
  INSERT INTO file_versions AS v (workspace, path, version, op, change_id, at, size, mime_type, is_text, hash, tag)
  SELECT n.workspace, n.path, n.version, 'create', NULL, n.modified_at, n.size, n.mime_type, n.chunk_set IS NOT NULL,
         n.hash, nullif(current_setting('deepagents_backends.tag', true), '')
  FROM new_rows n
  -- (OFFSET 0: pushed below the DISTINCT, history_enabled ran once per row, not per workspace)
  WHERE n.workspace IN (SELECT w.workspace FROM (SELECT DISTINCT r.workspace FROM new_rows r OFFSET 0) w
                        WHERE history_enabled(w.workspace))
  ORDER BY n.workspace, n.path COLLATE "C" -- version rows are locked in path order too
  ON CONFLICT (workspace, path, version, deleted) DO UPDATE
    SET op = excluded.op, change_id = excluded.change_id, at = excluded.at, size = excluded.size,
        mime_type = excluded.mime_type, is_text = excluded.is_text, hash = excluded.hash, tag = excluded.tag,
        blob = NULL, delta_prefix = NULL, delta_suffix = NULL, delta_middle = NULL, depth = 0;
  RETURN NULL;
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

CREATE OR REPLACE FUNCTION fs_history(p_workspace text, p_path text)
 RETURNS TABLE(version bigint, op text, change_id bigint, size bigint, mime_type text, at timestamp with time zone, tag text)
 LANGUAGE sql
 STABLE
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
  SELECT v.version, v.op, v.change_id, v.size, v.mime_type, v.at, v.tag
  FROM file_versions v
  WHERE v.workspace = p_workspace AND v.path = p_path
  ORDER BY v.version, v.deleted
$function$;

CREATE OR REPLACE FUNCTION fs_read_version(p_workspace text, p_path text, p_version bigint, p_offset integer, p_limit integer)
 RETURNS TABLE(mime_type text, bytes bytea, total_lines integer, window_text text, window_lines integer)
 LANGUAGE plpgsql
 STABLE
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v file_versions;
  v_data bytea;
  v_text text;
BEGIN
  SELECT * INTO v FROM file_versions fv
  WHERE fv.workspace = p_workspace AND fv.path = p_path AND fv.version = p_version AND NOT fv.deleted;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  v_data := version_data(p_workspace, p_path, p_version);
  IF NOT v.is_text THEN
    RETURN QUERY SELECT v.mime_type, v_data, 0, NULL::text, 0;
    RETURN;
  END IF;
  v_text := convert_from(v_data, 'UTF8');
  RETURN QUERY
    SELECT v.mime_type, NULL::bytea, text_line_count(v_text), string_agg(l.line, E'\n' ORDER BY l.n), count(*)::integer
    FROM chunk_lines(v_text) l
    WHERE l.n > p_offset AND l.n <= p_offset::bigint + p_limit;
END
$function$;

CREATE OR REPLACE FUNCTION fs_restore(p_workspace text, p_path text, p_version bigint, p_if_version bigint)
 RETURNS TABLE(status text, version bigint, conflict text)
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v file_versions;
  v_data bytea;
BEGIN
  SELECT * INTO v FROM file_versions fv
  WHERE fv.workspace = p_workspace AND fv.path = p_path AND fv.version = p_version AND NOT fv.deleted;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'no_version'::text, 0::bigint, NULL::text;
    RETURN;
  END IF;
  v_data := version_data(p_workspace, p_path, p_version);
  RETURN QUERY
    SELECT w.status, w.version, w.conflict
    FROM fs_write(p_workspace, p_path, CASE WHEN v.is_text THEN convert_from(v_data, 'UTF8') END,
                  CASE WHEN NOT v.is_text THEN v_data END, v.mime_type, p_if_version) w;
END
$function$;

CREATE OR REPLACE FUNCTION version_data(p_workspace text, p_path text, p_version bigint)
 RETURNS bytea
 LANGUAGE plpgsql
 STABLE
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v_end file_versions;
  v_data bytea;
  v_step record;
BEGIN
  SELECT * INTO v_end FROM file_versions v
  WHERE v.workspace = p_workspace AND v.path = p_path AND v.version >= p_version AND NOT v.deleted
    AND v.delta_middle IS NULL
  ORDER BY v.version LIMIT 1;
  IF NOT FOUND OR NOT EXISTS (SELECT 1 FROM file_versions v WHERE v.workspace = p_workspace
                              AND v.path = p_path AND v.version = p_version AND NOT v.deleted) THEN
    RETURN NULL;
  END IF;
  IF v_end.blob IS NOT NULL THEN
    SELECT b.data INTO v_data FROM blobs b WHERE b.hash = v_end.blob;
  ELSE
    SELECT file_body(file_text(f.content, f.chunk_set), f.bytes) INTO v_data FROM files f
    WHERE f.workspace = p_workspace AND f.path = p_path AND f.version = v_end.version;
  END IF;
  IF v_data IS NULL THEN
    RAISE EXCEPTION 'the history of "%" is damaged: version % is neither stored nor current', p_path, v_end.version
      USING ERRCODE = 'DA010';
  END IF;
  FOR v_step IN
    SELECT v.version, v.delta_prefix, v.delta_suffix, v.delta_middle FROM file_versions v
    WHERE v.workspace = p_workspace AND v.path = p_path AND NOT v.deleted
      AND v.version >= p_version AND v.version < v_end.version
    ORDER BY v.version DESC
  LOOP
    v_data := substr(v_data, 1, v_step.delta_prefix) || v_step.delta_middle
              || substr(v_data, length(v_data) - v_step.delta_suffix + 1);
  END LOOP;
  -- Every answer is checked against the hash recorded with the version: history that raw SQL
  -- (or a bug) damaged is an error, never other bytes.
  IF sha256(v_data) IS DISTINCT FROM (SELECT v.hash FROM file_versions v WHERE v.workspace = p_workspace
                                      AND v.path = p_path AND v.version = p_version AND NOT v.deleted) THEN
    RAISE EXCEPTION 'the history of "%" is damaged: version % does not rebuild to its recorded hash', p_path, p_version
      USING ERRCODE = 'DA010';
  END IF;
  RETURN v_data;
END
$function$;

CREATE OR REPLACE FUNCTION history_compare(p_workspace text, p_from bigint, p_to bigint, p_scope text[])
 RETURNS TABLE(path text, from_version bigint, from_size bigint, from_hash bytea, from_mime text, to_version bigint, to_size bigint, to_hash bytea, to_mime text)
 LANGUAGE sql
 STABLE
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
  WITH touched AS (
    SELECT DISTINCT c.path FROM changes c
    WHERE c.workspace = p_workspace
      AND c.id > least(p_from, coalesce(p_to, p_from))
      AND (p_to IS NULL OR c.id <= greatest(p_from, p_to))
      AND (p_scope IS NULL OR EXISTS (SELECT 1 FROM unnest(p_scope) s(p)
                                      WHERE s.p = '/' OR c.path = s.p OR left(c.path, length(s.p) + 1) = s.p || '/'))
  ), states AS (
    SELECT t.path, a.version AS from_version, a.size AS from_size, a.hash AS from_hash, a.mime_type AS from_mime,
           b.version AS to_version, b.size AS to_size, b.hash AS to_hash, b.mime_type AS to_mime
    FROM touched t
    LEFT JOIN LATERAL (
      SELECT s.* FROM (SELECT v.version, v.deleted, v.size, v.hash, v.mime_type FROM file_versions v
                       WHERE v.workspace = p_workspace AND v.path = t.path AND v.change_id <= p_from
                       ORDER BY v.change_id DESC LIMIT 1) s
      WHERE NOT s.deleted
    ) a ON true
    LEFT JOIN LATERAL (
      SELECT s.* FROM (SELECT v.version, v.deleted, v.size, v.hash, v.mime_type FROM file_versions v
                       WHERE v.workspace = p_workspace AND v.path = t.path AND v.change_id <= p_to
                       ORDER BY v.change_id DESC LIMIT 1) s
      WHERE NOT s.deleted AND p_to IS NOT NULL
      UNION ALL
      SELECT f.version, false, f.size, v.hash, f.mime_type FROM files f
      JOIN file_versions v ON v.workspace = f.workspace AND v.path = f.path AND v.version = f.version AND NOT v.deleted
      WHERE p_to IS NULL AND f.workspace = p_workspace AND f.path = t.path
    ) b ON true
  )
  SELECT * FROM states s
  WHERE (s.from_hash, s.from_mime) IS DISTINCT FROM (s.to_hash, s.to_mime)
  ORDER BY s.path
$function$;


DROP FUNCTION version_meta(text, text, bigint);
DROP FUNCTION fs_changes_head(text);
DROP TABLE fork_marks;
DROP FUNCTION fork_log_start();
