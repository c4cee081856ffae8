-- Up Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
--
-- Version 30: the commit-time flush of a one-workspace commit takes its two commit-order locks
-- itself (issue 16, item 5).
--
-- 0028's changes_flush_now calls changes_lock(text[]) for the workspaces a commit staged: a
-- PL/pgSQL function with a pinned search_path, whose call (its settings applied and restored, its
-- loop's query) took 15-20 us of the flush's ~145 (track_functions, one connection, fresh schema,
-- synchronous_commit off). Most commits stage one workspace: the flush now takes that
-- workspace's two locks itself, with changes_lock(text[])'s keys and order (the schema's key
-- shared, then the workspace's), and calls changes_lock(text[]) only for several.
-- (Also tried, and left out: arming the flush from the first staged row instead of a
-- changes_flush row per statement, and changes_stage without force_custom_plan for its one-row
-- paths; on fresh schemas they made the staging slower by about as much as they saved:
-- BENCHMARKS.md, "Item 5".)
-- Released: never edit this file; add a new migration instead.

-- changes_flush_now: 0028's, with the one-workspace locks taken inline.
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
  v_with_dirs text[];
  v_staged record;
  v_key integer;
BEGIN
  DELETE FROM changes_flush f WHERE f.xact = NEW.xact;
  -- What was staged: the workspaces, and which kinds of rows, so that a commit runs only the
  -- statements it needs (most change files and create none: no directory, horizon or tree check).
  SELECT array_agg(DISTINCT p.workspace) AS workspaces, bool_or(p.op = 'directory') AS directories,
         bool_or(p.op = 'horizon') AS horizons, bool_or(p.op = 'create') AS creates
    INTO v_staged
  FROM changes_pending p WHERE p.xact = NEW.xact;
  -- The commit-order locks of every workspace staged (changes, forks' horizons, directories),
  -- before any id is drawn.
  -- One workspace (most commits): changes_lock(text[])'s two locks, taken here with the same
  -- keys, without calling it (a call of a function with settings of its own: 15-20 us of every
  -- commit's 125).
  IF cardinality(v_staged.workspaces) = 1 THEN
    v_key := hashtext('deepagents-backends:changes:' || current_schema());
    PERFORM pg_advisory_xact_lock_shared(v_key);
    PERFORM pg_advisory_xact_lock(v_key, hashtext(v_staged.workspaces[1]));
  ELSE
    PERFORM changes_lock(v_staged.workspaces);
  END IF;
  -- New directory rows still there (0027's directories_check): no file has the directory's path
  -- or lies above it. Committed files cannot appear meanwhile: their commit waits for the lock.
  IF v_staged.directories THEN
    WITH made AS (
      DELETE FROM changes_pending p WHERE p.xact = NEW.xact AND p.op = 'directory' RETURNING p.seq, p.workspace, p.path
    )
    SELECT m.path, b.file INTO v_bad
    FROM made m
    CROSS JOIN LATERAL (
      SELECT a.dir AS file FROM unnest(path_ancestors(m.path) || m.path::text) WITH ORDINALITY AS a(dir, i)
      WHERE (SELECT true FROM files f WHERE f.workspace = m.workspace AND f.path = a.dir COLLATE "C" LIMIT 1)
      ORDER BY a.i LIMIT 1
    ) b
    WHERE (SELECT true FROM directories d WHERE d.workspace = m.workspace AND d.path = m.path LIMIT 1)
    ORDER BY m.seq LIMIT 1;
    IF FOUND THEN
      RAISE EXCEPTION 'cannot create "%": "%" is a file, not a directory', v_bad.path, v_bad.file
        USING ERRCODE = 'DA002', DETAIL = v_bad.file;
    END IF;
  END IF;
  -- Forks' horizons (0017), before any change id of this transaction is taken. (A fork mark
  -- always stages one: fork_log_start.)
  IF v_staged.horizons THEN
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
  END IF;
  WITH staged AS (
    DELETE FROM changes_pending p WHERE p.xact = NEW.xact
    RETURNING p.seq, p.workspace, p.path, p.op, p.version, p.size, p.moved
  ), logged AS (
    INSERT INTO changes (workspace, path, op, version, size, moved)
    SELECT s.workspace, s.path, s.op, s.version, s.size, s.moved FROM staged s ORDER BY s.seq
    RETURNING changes.id, changes.workspace, changes.path, changes.op, changes.version, changes.moved
  ), stamped AS (
    UPDATE file_versions v SET change_id = l.id, moved = l.moved
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

  IF v_staged.creates OR v_forked IS NOT NULL THEN
    -- The workspaces of this commit that have directory rows: only their creates probe them (most
    -- workspaces have none; two probes per created file were 6% of an upload's cost). Committed
    -- directory rows cannot appear meanwhile: their commit waits for the workspace's lock, held here.
    SELECT array_agg(w.workspace) INTO v_with_dirs
    FROM (SELECT DISTINCT x.workspace FROM unnest(v_workspaces || v_forked) AS x(workspace)) w
    WHERE EXISTS (SELECT 1 FROM directories d WHERE d.workspace = w.workspace);

    -- The file/directory rule, for each create whose file is still there (0005's check, per set):
    -- no ancestor of it is a file, and it is not a directory (holding files, or made by mkdir:
    -- 0027). The first broken one, in log order. Every file of a forked workspace counts as created
    -- (none of them was logged).
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
           -- A directory made by mkdir (0027), empty or not: the path itself or a path below it.
           OR (c.workspace = ANY (v_with_dirs)
               AND ((SELECT true FROM directories d WHERE d.workspace = c.workspace AND d.path = c.path LIMIT 1)
                    OR (SELECT true FROM directories d WHERE d.workspace = c.workspace
                        AND d.path >= c.path || '/' AND d.path < c.path || '0' LIMIT 1)))
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
  END IF;

  -- One wake-up per workspace: the last change id, or a fork's horizon (watchers read the log
  -- from their cursor; one older than the horizon is told to resync). Not from this commit when
  -- the writer sends its wake-ups after it (4 above): NOTIFY would hold the database-wide lock
  -- through this commit's WAL flush.
  IF current_setting('deepagents_backends.wake_up', true) IS DISTINCT FROM 'after_commit' THEN
    FOR v_note IN
      SELECT c.workspace, max(c.id) AS id
      FROM (SELECT * FROM unnest(v_ids, v_workspaces) AS l(id, workspace)
            UNION ALL
            SELECT * FROM unnest(v_horizons, v_forked)) c
      GROUP BY c.workspace
    LOOP
      PERFORM pg_notify(changes_channel(v_note.workspace), json_build_object('id', v_note.id)::text);
    END LOOP;
  END IF;
  RETURN NULL;
END
$function$;


-- Down Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
-- 0028's changes_flush_now, restored.
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
  v_with_dirs text[];
  v_staged record;
BEGIN
  DELETE FROM changes_flush f WHERE f.xact = NEW.xact;
  -- What was staged: the workspaces, and which kinds of rows, so that a commit runs only the
  -- statements it needs (most change files and create none: no directory, horizon or tree check).
  SELECT array_agg(DISTINCT p.workspace) AS workspaces, bool_or(p.op = 'directory') AS directories,
         bool_or(p.op = 'horizon') AS horizons, bool_or(p.op = 'create') AS creates
    INTO v_staged
  FROM changes_pending p WHERE p.xact = NEW.xact;
  -- The commit-order locks of every workspace staged (changes, forks' horizons, directories),
  -- before any id is drawn.
  PERFORM changes_lock(v_staged.workspaces);
  -- New directory rows still there (0027's directories_check): no file has the directory's path
  -- or lies above it. Committed files cannot appear meanwhile: their commit waits for the lock.
  IF v_staged.directories THEN
    WITH made AS (
      DELETE FROM changes_pending p WHERE p.xact = NEW.xact AND p.op = 'directory' RETURNING p.seq, p.workspace, p.path
    )
    SELECT m.path, b.file INTO v_bad
    FROM made m
    CROSS JOIN LATERAL (
      SELECT a.dir AS file FROM unnest(path_ancestors(m.path) || m.path::text) WITH ORDINALITY AS a(dir, i)
      WHERE (SELECT true FROM files f WHERE f.workspace = m.workspace AND f.path = a.dir COLLATE "C" LIMIT 1)
      ORDER BY a.i LIMIT 1
    ) b
    WHERE (SELECT true FROM directories d WHERE d.workspace = m.workspace AND d.path = m.path LIMIT 1)
    ORDER BY m.seq LIMIT 1;
    IF FOUND THEN
      RAISE EXCEPTION 'cannot create "%": "%" is a file, not a directory', v_bad.path, v_bad.file
        USING ERRCODE = 'DA002', DETAIL = v_bad.file;
    END IF;
  END IF;
  -- Forks' horizons (0017), before any change id of this transaction is taken. (A fork mark
  -- always stages one: fork_log_start.)
  IF v_staged.horizons THEN
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
  END IF;
  WITH staged AS (
    DELETE FROM changes_pending p WHERE p.xact = NEW.xact
    RETURNING p.seq, p.workspace, p.path, p.op, p.version, p.size, p.moved
  ), logged AS (
    INSERT INTO changes (workspace, path, op, version, size, moved)
    SELECT s.workspace, s.path, s.op, s.version, s.size, s.moved FROM staged s ORDER BY s.seq
    RETURNING changes.id, changes.workspace, changes.path, changes.op, changes.version, changes.moved
  ), stamped AS (
    UPDATE file_versions v SET change_id = l.id, moved = l.moved
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

  IF v_staged.creates OR v_forked IS NOT NULL THEN
    -- The workspaces of this commit that have directory rows: only their creates probe them (most
    -- workspaces have none; two probes per created file were 6% of an upload's cost). Committed
    -- directory rows cannot appear meanwhile: their commit waits for the workspace's lock, held here.
    SELECT array_agg(w.workspace) INTO v_with_dirs
    FROM (SELECT DISTINCT x.workspace FROM unnest(v_workspaces || v_forked) AS x(workspace)) w
    WHERE EXISTS (SELECT 1 FROM directories d WHERE d.workspace = w.workspace);

    -- The file/directory rule, for each create whose file is still there (0005's check, per set):
    -- no ancestor of it is a file, and it is not a directory (holding files, or made by mkdir:
    -- 0027). The first broken one, in log order. Every file of a forked workspace counts as created
    -- (none of them was logged).
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
           -- A directory made by mkdir (0027), empty or not: the path itself or a path below it.
           OR (c.workspace = ANY (v_with_dirs)
               AND ((SELECT true FROM directories d WHERE d.workspace = c.workspace AND d.path = c.path LIMIT 1)
                    OR (SELECT true FROM directories d WHERE d.workspace = c.workspace
                        AND d.path >= c.path || '/' AND d.path < c.path || '0' LIMIT 1)))
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
  END IF;

  -- One wake-up per workspace: the last change id, or a fork's horizon (watchers read the log
  -- from their cursor; one older than the horizon is told to resync). Not from this commit when
  -- the writer sends its wake-ups after it (4 above): NOTIFY would hold the database-wide lock
  -- through this commit's WAL flush.
  IF current_setting('deepagents_backends.wake_up', true) IS DISTINCT FROM 'after_commit' THEN
    FOR v_note IN
      SELECT c.workspace, max(c.id) AS id
      FROM (SELECT * FROM unnest(v_ids, v_workspaces) AS l(id, workspace)
            UNION ALL
            SELECT * FROM unnest(v_horizons, v_forked)) c
      GROUP BY c.workspace
    LOOP
      PERFORM pg_notify(changes_channel(v_note.workspace), json_build_object('id', v_note.id)::text);
    END LOOP;
  END IF;
  RETURN NULL;
END
$function$;

