-- Up Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
--
-- Version 27: real directories (issue 15, item 2).
--
-- What:
--   - directories: a row per directory made by mkdir (fs_mkdir). It exists while empty, until a
--     delete of it or of a directory above it; fs_mkdir and fs_move make a row for every ancestor
--     too, as mkdir -p would (fs_ls still lists a directory whose rows are all deeper: a delete
--     racing mkdir -p can leave one so). A directory that only holds files stays implicit, as
--     before: it goes with its last file.
--   - A file and a directory never share a path, whichever made the directory: fs_write and
--     fs_upload refuse a file at a directory made by mkdir ("is_directory"); fs_mkdir refuses a
--     directory at or below a file. Each side checks again at commit under changes_lock(), so two
--     transactions racing cannot both win: changes_flush_now for every created file (as 0005's
--     rule, now with the directories table), directories_check for every new directory row.
--   - fs_delete removes the directory rows at and below the path (files first: one lock order);
--     its count includes them, so deleting an empty directory is not "not found".
--   - fs_move and fs_fork carry directory rows: 0026's fs_move becomes files_move and 0016's
--     fs_fork files_fork, each wrapped by a function of the old name that checks and moves (or
--     copies) the directory rows too. A fork at a checkpoint copies none: directories have no
--     history (nor a change-feed event; a rewind does not touch them).
--   - fs_is_directory(workspace, path): a directory is there (made, or holding files); stat uses
--     it, and fs_download's is_dir.
--   - grant_workspace grants the table, revoke_workspace revokes it; roles granted before this
--     version get it here. The same row-level security policy as files.
--
-- Cost: fs_write and every upload path probe the directories table by key twice (an empty table
-- answers at once); changes_flush_now does the same per created file at commit.

CREATE TABLE directories (
  workspace text NOT NULL,
  path text COLLATE "C" NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT directories_path_shape CHECK (left(path, 1) = '/' AND right(path, 1) <> '/' AND strpos(path, '//') = 0),
  CONSTRAINT directories_pkey PRIMARY KEY (workspace, path)
);

ALTER TABLE directories ENABLE ROW LEVEL SECURITY;
CREATE POLICY directories_granted ON directories
  USING (workspace IN (SELECT g.workspace FROM workspace_grants g)
         OR EXISTS (SELECT 1 FROM workspace_grants g WHERE g.workspace IS NULL))
  WITH CHECK (workspace IN (SELECT g.workspace FROM workspace_grants g)
              OR EXISTS (SELECT 1 FROM workspace_grants g WHERE g.workspace IS NULL));
-- Roles granted a workspace before this version.
DO $$
DECLARE
  v_role name;
BEGIN
  FOR v_role IN
    SELECT DISTINCT g.role_name FROM workspace_grants g JOIN pg_catalog.pg_roles r ON r.rolname = g.role_name
  LOOP
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I.directories TO %I', current_schema(), v_role);
  END LOOP;
END
$$;

-- A directory is at p_path of p_workspace: one made by mkdir there or below, or a file below.
CREATE FUNCTION fs_is_directory(p_workspace text, p_path text)
RETURNS boolean
LANGUAGE sql STABLE STRICT SET search_path FROM CURRENT SET enable_seqscan = off SET jit = off AS $$
  SELECT EXISTS (SELECT 1 FROM directories d WHERE d.workspace = p_workspace AND d.path = p_path)
      OR EXISTS (SELECT 1 FROM directories d WHERE d.workspace = p_workspace
                 AND d.path >= p_path || '/' AND d.path < p_path || '0')
      OR EXISTS (SELECT 1 FROM files f WHERE f.workspace = p_workspace
                 AND f.path >= p_path || '/' AND f.path < p_path || '0')
$$;

-- fs_mkdir: the directory p_path of p_workspace (normalised, not the root), and its ancestors,
-- kept while empty. One row: status and the path it is about.
--   created         made now;
--   exists          a directory was there already (with p_parents its rows are made, so it
--                   stays when its files go, as mkdir -p of an existing directory leaves one);
--   is_file         a file has the path;
--   parent_is_file  a file is above it (conflict: the first from the root);
--   parent_missing  without p_parents, the directory above does not exist (conflict: it).
-- Refusals change nothing. A file written at the path meanwhile fails one of the two commits
-- (directories_check, changes_flush_now).
CREATE FUNCTION fs_mkdir(p_workspace text, p_path text, p_parents boolean)
RETURNS TABLE (status text, conflict text)
LANGUAGE plpgsql STRICT SET search_path FROM CURRENT SET enable_seqscan = off SET jit = off AS $$
DECLARE
  v_file text;
  v_parent text := regexp_replace(p_path, '/[^/]*$', '');
BEGIN
  SELECT a.dir INTO v_file FROM unnest(path_ancestors(p_path) || p_path) WITH ORDINALITY AS a(dir, i)
  WHERE (SELECT true FROM files f WHERE f.workspace = p_workspace AND f.path = a.dir COLLATE "C" LIMIT 1)
  ORDER BY a.i LIMIT 1;
  IF v_file = p_path THEN
    RETURN QUERY SELECT 'is_file'::text, p_path; RETURN;
  ELSIF v_file IS NOT NULL THEN
    RETURN QUERY SELECT 'parent_is_file'::text, v_file; RETURN;
  END IF;
  IF fs_is_directory(p_workspace, p_path) THEN
    IF p_parents THEN
      INSERT INTO directories (workspace, path)
      SELECT p_workspace, a.dir FROM unnest(path_ancestors(p_path) || p_path) AS a(dir) ORDER BY a.dir COLLATE "C"
      ON CONFLICT DO NOTHING;
    END IF;
    RETURN QUERY SELECT 'exists'::text, NULL::text; RETURN;
  END IF;
  IF NOT p_parents AND v_parent <> '' AND NOT fs_is_directory(p_workspace, v_parent) THEN
    RETURN QUERY SELECT 'parent_missing'::text, v_parent; RETURN;
  END IF;
  -- In path order, as every writer takes keys.
  INSERT INTO directories (workspace, path)
  SELECT p_workspace, a.dir FROM unnest(path_ancestors(p_path) || p_path) AS a(dir) ORDER BY a.dir COLLATE "C"
  ON CONFLICT DO NOTHING;
  RETURN QUERY SELECT 'created'::text, NULL::text;
END
$$;

-- At commit, for each directory row still there: no file has its path or is above it. Under
-- changes_lock(), as changes_flush_now checks created files: of a file and a directory committed
-- at the same time, the second sees the first and fails (SQLSTATE DA002, DETAIL: the file).
CREATE FUNCTION directories_check()
RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT SET enable_seqscan = off SET jit = off AS $$
DECLARE
  v_file text;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM directories d WHERE d.workspace = NEW.workspace AND d.path = NEW.path) THEN
    RETURN NULL;
  END IF;
  PERFORM changes_lock();
  SELECT a.dir INTO v_file FROM unnest(path_ancestors(NEW.path) || NEW.path::text) WITH ORDINALITY AS a(dir, i)
  WHERE (SELECT true FROM files f WHERE f.workspace = NEW.workspace AND f.path = a.dir COLLATE "C" LIMIT 1)
  ORDER BY a.i LIMIT 1;
  IF v_file IS NOT NULL THEN
    RAISE EXCEPTION 'cannot create "%": "%" is a file, not a directory', NEW.path, v_file
      USING ERRCODE = 'DA002', DETAIL = v_file;
  END IF;
  RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER directories_checked_at_commit AFTER INSERT OR UPDATE ON directories
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION directories_check();

-- fs_delete: the files and the directories at and below the path (0005's, with directories).
CREATE OR REPLACE FUNCTION fs_delete(p_workspace text, p_path text)
RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT SET enable_seqscan = off SET jit = off AS $$
DECLARE
  v_files bigint;
  v_dirs bigint;
BEGIN
  -- Files first, then directories: the order every writer locks them in.
  IF p_path = '/' THEN
    PERFORM 1 FROM files f WHERE f.workspace = p_workspace ORDER BY f.path FOR UPDATE;
    DELETE FROM files f WHERE f.workspace = p_workspace;
    GET DIAGNOSTICS v_files = ROW_COUNT;
    DELETE FROM directories d WHERE d.workspace = p_workspace;
  ELSE
    PERFORM 1 FROM files f
     WHERE f.workspace = p_workspace
       AND (f.path = p_path OR (f.path >= p_path || '/' AND f.path < p_path || '0'))
     ORDER BY f.path FOR UPDATE;
    DELETE FROM files f
     WHERE f.workspace = p_workspace
       AND (f.path = p_path OR (f.path >= p_path || '/' AND f.path < p_path || '0'));
    GET DIAGNOSTICS v_files = ROW_COUNT;
    DELETE FROM directories d
     WHERE d.workspace = p_workspace
       AND (d.path = p_path OR (d.path >= p_path || '/' AND d.path < p_path || '0'));
  END IF;
  GET DIAGNOSTICS v_dirs = ROW_COUNT;
  RETURN v_files + v_dirs;
END
$$;

-- fs_move with directories: 0026's function, renamed, moves the files; this one checks the
-- directory rows either side first and then moves (or copies) them. Without directory rows in
-- either tree it is 0026's fs_move, with one more probe.
ALTER FUNCTION fs_move(text, text, text, boolean, boolean, integer) RENAME TO files_move;
CREATE FUNCTION fs_move(p_workspace text, p_from text, p_to text, p_overwrite boolean, p_copy boolean,
                        p_max_bytes integer)
RETURNS TABLE (status text, files bigint, conflict text)
LANGUAGE plpgsql STRICT SET search_path FROM CURRENT SET enable_seqscan = off SET jit = off AS $$
DECLARE
  -- Directory rows at and below p_from, in path order.
  v_dirs text[] COLLATE "C";
  v_conflict text;
  v_rest integer := length(p_from) + 1;
  v_moved record;
BEGIN
  IF p_from = '/' OR p_to = '/' OR p_from = p_to
     OR starts_with(p_to, p_from || '/') OR starts_with(p_from, p_to || '/') THEN
    RETURN QUERY SELECT 'into_itself'::text, 0::bigint, p_to;
    RETURN;
  END IF;
  -- A directory made by mkdir where a moved file would go (its counterpart in the source is a file).
  SELECT e.path INTO v_conflict FROM directories e
  WHERE e.workspace = p_workspace AND (e.path = p_to OR (e.path >= p_to || '/' AND e.path < p_to || '0'))
    AND (SELECT true FROM files s WHERE s.workspace = p_workspace
         AND s.path = (p_from || substr(e.path, length(p_to) + 1)) COLLATE "C" LIMIT 1)
  ORDER BY e.path LIMIT 1;
  IF v_conflict IS NOT NULL THEN
    RETURN QUERY SELECT 'is_directory'::text, 0::bigint, v_conflict;
    RETURN;
  END IF;
  SELECT array_agg(d.path ORDER BY d.path) INTO v_dirs FROM directories d
  WHERE d.workspace = p_workspace AND (d.path = p_from OR (d.path >= p_from || '/' AND d.path < p_from || '0'));
  IF v_dirs IS NULL THEN
    RETURN QUERY SELECT * FROM files_move(p_workspace, p_from, p_to, p_overwrite, p_copy, p_max_bytes);
    RETURN;
  END IF;

  SELECT t.path INTO v_conflict FROM unnest(v_dirs) AS d(path), LATERAL (SELECT p_to || substr(d.path, v_rest)) AS t(path)
  WHERE octet_length(t.path) > p_max_bytes ORDER BY t.path LIMIT 1;
  IF v_conflict IS NOT NULL THEN
    RETURN QUERY SELECT 'too_long'::text, 0::bigint, v_conflict;
    RETURN;
  END IF;
  -- A file at or above a new directory path (the first from the root).
  SELECT a.dir INTO v_conflict
  FROM (SELECT a.dir, a.i FROM unnest(path_ancestors(p_to)) WITH ORDINALITY AS a(dir, i)
        UNION ALL
        SELECT p_to || substr(d.path, v_rest), 1000000 + d.i FROM unnest(v_dirs) WITH ORDINALITY AS d(path, i)) a
  WHERE (SELECT true FROM files f WHERE f.workspace = p_workspace AND f.path = a.dir COLLATE "C" LIMIT 1)
  ORDER BY a.i LIMIT 1;
  IF v_conflict IS NOT NULL THEN
    RETURN QUERY SELECT 'parent_is_file'::text, 0::bigint, v_conflict;
    RETURN;
  END IF;

  IF EXISTS (SELECT 1 FROM files f WHERE f.workspace = p_workspace
             AND (f.path = p_from OR (f.path >= p_from || '/' AND f.path < p_from || '0'))) THEN
    SELECT * INTO v_moved FROM files_move(p_workspace, p_from, p_to, p_overwrite, p_copy, p_max_bytes);
    IF v_moved.status NOT IN ('moved', 'copied') THEN
      RETURN QUERY SELECT v_moved.status, v_moved.files, v_moved.conflict;
      RETURN;
    END IF;
  ELSE
    SELECT CASE WHEN p_copy THEN 'copied' ELSE 'moved' END AS status, 0::bigint AS files INTO v_moved;
  END IF;
  -- The new rows (and p_to's ancestors: every ancestor of a directory row is one), in path order,
  -- then the old ones go.
  INSERT INTO directories (workspace, path)
  SELECT p_workspace, n.path FROM (
    SELECT a.dir FROM unnest(path_ancestors(p_to)) AS a(dir)
    UNION
    SELECT p_to || substr(d.path, v_rest) FROM unnest(v_dirs) AS d(path)
  ) n(path)
  ORDER BY n.path COLLATE "C"
  ON CONFLICT DO NOTHING;
  IF NOT p_copy THEN
    DELETE FROM directories d WHERE d.workspace = p_workspace AND d.path = ANY (v_dirs);
  END IF;
  RETURN QUERY SELECT v_moved.status, v_moved.files, NULL::text;
END
$$;

-- fs_fork with directories: 0016's function, renamed, copies the files (and history); a fork of
-- the present copies the directory rows too. A fork at a checkpoint copies none: no history says
-- which directories existed then.
ALTER FUNCTION fs_fork(text, text, bigint, boolean) RENAME TO files_fork;
CREATE FUNCTION fs_fork(p_source text, p_target text, p_at bigint, p_history boolean DEFAULT false)
RETURNS TABLE (files bigint, bytes bigint, versions bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT SET enable_seqscan = off SET jit = off AS $$
BEGIN
  -- A target with directories of its own is not new either (files_fork looks at files only).
  IF p_source <> p_target AND EXISTS (SELECT 1 FROM directories d WHERE d.workspace = p_target) THEN
    RAISE EXCEPTION 'cannot fork into workspace "%": it has files', p_target USING ERRCODE = 'DA014', DETAIL = p_target;
  END IF;
  RETURN QUERY SELECT * FROM files_fork(p_source, p_target, p_at, p_history);
  IF p_at IS NULL THEN
    INSERT INTO directories (workspace, path)
    SELECT p_target, d.path FROM directories d WHERE d.workspace = p_source ORDER BY d.path
    ON CONFLICT DO NOTHING;
  END IF;
END
$$;

-- changes_flush_now: 0026's, with directories made by mkdir in the file/directory rule.
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

  -- The workspaces of this commit that have directory rows: only their creates probe them (most
  -- workspaces have none; two probes per created file were 6% of an upload's cost). Committed
  -- directory rows cannot appear meanwhile: their commit waits for changes_lock, held here.
  SELECT array_agg(w.workspace) INTO v_with_dirs
  FROM (SELECT DISTINCT x.workspace FROM unnest(v_workspaces || v_forked) AS x(workspace)) w
  WHERE EXISTS (SELECT 1 FROM directories d WHERE d.workspace = w.workspace);

  -- The file/directory rule, for each create whose file is still there (0005's check, per set):
  -- no ancestor of it is a file, and it is not a directory (holding files, or made by mkdir: 0027). The first broken one, in log order.
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

-- fs_write: as before (0005's, with later versions' settings), refusing a file where mkdir made a directory.
CREATE OR REPLACE FUNCTION fs_write(p_workspace text, p_path text, p_content text, p_bytes bytea, p_mime_type text, p_if_version bigint)
 RETURNS TABLE(status text, version bigint, conflict text)
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v_size    bigint  := coalesce(octet_length(p_content), length(p_bytes));
  v_lines   integer := text_line_count(p_content);
  v_version bigint;
  v_status  text;
  v_file    text;
BEGIN
  SELECT a.dir INTO v_file FROM unnest(path_ancestors(p_path)) WITH ORDINALITY AS a(dir, i)
  WHERE (SELECT true FROM files f WHERE f.workspace = p_workspace AND f.path = a.dir COLLATE "C" LIMIT 1)
  ORDER BY a.i LIMIT 1;
  IF v_file IS NOT NULL THEN
    RETURN QUERY SELECT 'parent_is_file'::text, 0::bigint, v_file; RETURN;
  END IF;
  IF EXISTS (SELECT 1 FROM files f WHERE f.workspace = p_workspace
             AND f.path >= p_path || '/' AND f.path < p_path || '0')
     OR EXISTS (SELECT 1 FROM directories d WHERE d.workspace = p_workspace AND d.path = p_path)
     OR EXISTS (SELECT 1 FROM directories d WHERE d.workspace = p_workspace
                AND d.path >= p_path || '/' AND d.path < p_path || '0') THEN
    RETURN QUERY SELECT 'is_directory'::text, 0::bigint, p_path; RETURN;
  END IF;

  IF p_if_version IS NULL THEN
    INSERT INTO files AS f (workspace, path, content, bytes, mime_type, size, line_count)
    VALUES (p_workspace, p_path, p_content, p_bytes, p_mime_type, v_size, v_lines)
    ON CONFLICT (workspace, path) DO UPDATE
      SET content = excluded.content, bytes = excluded.bytes, mime_type = excluded.mime_type,
          size = excluded.size, line_count = excluded.line_count,
          version = f.version + 1, modified_at = clock_timestamp()
    RETURNING CASE WHEN f.xmax = 0 THEN 'created' ELSE 'updated' END, f.version INTO v_status, v_version;
    RETURN QUERY SELECT v_status, v_version, NULL::text;
    RETURN;
  END IF;

  IF p_if_version = 0 THEN
    INSERT INTO files (workspace, path, content, bytes, mime_type, size, line_count)
    VALUES (p_workspace, p_path, p_content, p_bytes, p_mime_type, v_size, v_lines)
    ON CONFLICT (workspace, path) DO NOTHING
    RETURNING files.version INTO v_version;
    IF FOUND THEN
      RETURN QUERY SELECT 'created'::text, v_version, NULL::text;
      RETURN;
    END IF;
  ELSE
    UPDATE files f
       SET content = p_content, bytes = p_bytes, mime_type = p_mime_type, size = v_size,
           line_count = v_lines, version = f.version + 1, modified_at = clock_timestamp()
     WHERE f.workspace = p_workspace AND f.path = p_path AND f.version = p_if_version
    RETURNING f.version INTO v_version;
    IF FOUND THEN
      RETURN QUERY SELECT 'updated'::text, v_version, NULL::text;
      RETURN;
    END IF;
  END IF;

  SELECT f.version INTO v_version FROM files f WHERE f.workspace = p_workspace AND f.path = p_path;
  RETURN QUERY SELECT 'version_mismatch'::text, coalesce(v_version, 0), NULL::text;
END
$function$;

-- fs_upload: the same per path.
CREATE OR REPLACE FUNCTION fs_upload(p_workspace text, p_paths text[], p_contents text[], p_bytes bytea[], p_mime_types text[])
 RETURNS TABLE(path text, status text, conflict text)
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
DECLARE
  v_refused   text[];
  v_statuses  text[];
  v_conflicts text[];
  v_with_dirs boolean := EXISTS (SELECT 1 FROM directories d WHERE d.workspace = p_workspace);
BEGIN
  SELECT coalesce(array_agg(r.path), '{}'), coalesce(array_agg(r.status), '{}'), coalesce(array_agg(r.conflict), '{}')
    INTO v_refused, v_statuses, v_conflicts
  FROM (
    SELECT b.path, CASE WHEN x.file IS NOT NULL THEN 'parent_is_file' ELSE 'is_directory' END AS status,
           coalesce(x.file, b.path) AS conflict
    FROM unnest(p_paths) AS b(path)
    CROSS JOIN LATERAL (
      -- Scalar subqueries, never pulled up into joins: one primary-key probe each, whatever
      -- the statistics claim right after a bulk upload.
      SELECT (SELECT a.dir FROM unnest(path_ancestors(b.path)) WITH ORDINALITY AS a(dir, i)
              WHERE (SELECT true FROM files f WHERE f.workspace = p_workspace AND f.path = a.dir COLLATE "C" LIMIT 1)
              ORDER BY a.i LIMIT 1) AS file,
             coalesce((SELECT true FROM files f WHERE f.workspace = p_workspace
                       AND f.path >= b.path || '/' AND f.path < b.path || '0' LIMIT 1),
                      -- (directory rows only where the workspace has any: planned away otherwise)
                      CASE WHEN v_with_dirs THEN
                        coalesce((SELECT true FROM directories d WHERE d.workspace = p_workspace AND d.path = b.path LIMIT 1),
                                 (SELECT true FROM directories d WHERE d.workspace = p_workspace
                                  AND d.path >= b.path || '/' AND d.path < b.path || '0' LIMIT 1)) END) AS is_dir
    ) x
    WHERE x.file IS NOT NULL OR x.is_dir
  ) r;

  INSERT INTO files AS f (workspace, path, content, bytes, mime_type, size, line_count)
  SELECT p_workspace, u.path, u.content, u.bytes, u.mime_type,
         coalesce(octet_length(u.content), length(u.bytes)), text_line_count(u.content)
  FROM unnest(p_paths, p_contents, p_bytes, p_mime_types) AS u(path, content, bytes, mime_type)
  WHERE u.path <> ALL (v_refused)
  ORDER BY u.path COLLATE "C"
  ON CONFLICT ON CONSTRAINT files_pkey DO UPDATE -- (workspace, path); `path` is also an OUT column here
    SET content = excluded.content, bytes = excluded.bytes, mime_type = excluded.mime_type,
        size = excluded.size, line_count = excluded.line_count,
        version = f.version + 1, modified_at = clock_timestamp();
  RETURN QUERY SELECT r.path, r.status, r.conflict FROM unnest(v_refused, v_statuses, v_conflicts) AS r(path, status, conflict);
END
$function$;

-- fs_ls: directories made by mkdir listed with those holding files.
CREATE OR REPLACE FUNCTION fs_ls(p_workspace text, p_dir text)
 RETURNS TABLE(path text, is_dir boolean, size bigint, modified_at timestamp with time zone)
 LANGUAGE sql
 STABLE
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
  SELECT f.path, false, f.size, f.modified_at
  FROM files f WHERE f.workspace = p_workspace AND f.parent = p_dir
  UNION ALL
  SELECT p_dir || d.name || '/', true, 0::bigint, NULL::timestamptz
  FROM (
    -- Directories made by mkdir: the first name of every row below p_dir, not only the rows whose
    -- parent it is (a delete racing mkdir -p can take a parent row and leave its child). One
    -- range of the key; directory rows are few beside files.
    SELECT split_part(substr(m.path, length(p_dir) + 1), '/', 1) AS name
    FROM directories m
    WHERE m.workspace = p_workspace AND m.path > p_dir AND m.path < dir_upper_bound(p_dir)
    UNION
    -- and those holding files: one probe per name, skipping each one's subtree.
    SELECT e.name FROM (
    WITH RECURSIVE sub(name) AS (
      SELECT (SELECT split_part(substr(f.path, length(p_dir) + 1), '/', 1)
              FROM files f
              WHERE f.workspace = p_workspace AND f.path >= p_dir AND f.path < dir_upper_bound(p_dir)
                AND strpos(substr(f.path, length(p_dir) + 1), '/') > 0
              ORDER BY f.path LIMIT 1)
      UNION ALL
      SELECT (SELECT split_part(substr(f.path, length(p_dir) + 1), '/', 1)
              FROM files f
              WHERE f.workspace = p_workspace AND f.path >= p_dir || s.name || '0'
                AND f.path < dir_upper_bound(p_dir)
                AND strpos(substr(f.path, length(p_dir) + 1), '/') > 0
              ORDER BY f.path LIMIT 1)
      FROM sub s WHERE s.name IS NOT NULL
    )
    SELECT name FROM sub WHERE name IS NOT NULL
    ) e
  ) d
  ORDER BY 1
$function$;

-- fs_download: is_dir for directories made by mkdir too.
CREATE OR REPLACE FUNCTION fs_download(p_workspace text, p_paths text[])
 RETURNS TABLE(ord bigint, content text, bytes bytea, is_dir boolean)
 LANGUAGE sql
 STABLE
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
  SELECT u.ord, file_text(f.content, f.chunk_set), f.bytes,
         f.path IS NULL AND fs_is_directory(p_workspace, u.path)
  FROM unnest(p_paths) WITH ORDINALITY AS u(path, ord)
  LEFT JOIN files f ON f.workspace = p_workspace AND f.path = u.path
  ORDER BY u.ord
$function$;

-- grant_workspace / revoke_workspace: the directories table with files.
CREATE OR REPLACE FUNCTION grant_workspace(p_role name, p_workspace text)
 RETURNS boolean
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
AS $function$
DECLARE
  v_schema text := current_schema();
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = p_role) THEN
    RAISE EXCEPTION 'role "%" does not exist', p_role USING ERRCODE = 'undefined_object';
  END IF;
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', v_schema, p_role);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I.files, %I.directories TO %I', v_schema, v_schema, p_role);
  EXECUTE format('GRANT SELECT ON %I.chunks, %I.changes, %I.changes_horizon, %I.migrations TO %I',
                 v_schema, v_schema, v_schema, v_schema, p_role);
  PERFORM history_grant(p_role);
  INSERT INTO workspace_grants (role_name, workspace) VALUES (p_role, p_workspace) ON CONFLICT DO NOTHING;
  RETURN FOUND;
END
$function$;

CREATE OR REPLACE FUNCTION revoke_workspace(p_role name, p_workspace text)
 RETURNS boolean
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
AS $function$
DECLARE
  v_schema text := current_schema();
  v_removed boolean;
BEGIN
  DELETE FROM workspace_grants g WHERE g.role_name = p_role AND g.workspace IS NOT DISTINCT FROM p_workspace;
  v_removed := FOUND;
  IF NOT EXISTS (SELECT 1 FROM workspace_grants g WHERE g.role_name = p_role)
     AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = p_role) THEN
    EXECUTE format('REVOKE ALL ON %I.files, %I.chunks, %I.changes, %I.changes_horizon, %I.migrations, '
                   '%I.file_versions, %I.blobs, %I.history_settings, %I.checkpoints, %I.directories FROM %I',
                   v_schema, v_schema, v_schema, v_schema, v_schema, v_schema, v_schema, v_schema, v_schema,
                   v_schema, p_role);
    EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM %I', v_schema, p_role);
  END IF;
  RETURN v_removed;
END
$function$;

-- Down Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
DROP FUNCTION fs_fork(text, text, bigint, boolean);
ALTER FUNCTION files_fork(text, text, bigint, boolean) RENAME TO fs_fork;
DROP FUNCTION fs_move(text, text, text, boolean, boolean, integer);
ALTER FUNCTION files_move(text, text, text, boolean, boolean, integer) RENAME TO fs_move;
-- 0026's and earlier versions' bodies, as they were.
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

CREATE OR REPLACE FUNCTION fs_write(p_workspace text, p_path text, p_content text, p_bytes bytea, p_mime_type text, p_if_version bigint)
 RETURNS TABLE(status text, version bigint, conflict text)
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v_size    bigint  := coalesce(octet_length(p_content), length(p_bytes));
  v_lines   integer := text_line_count(p_content);
  v_version bigint;
  v_status  text;
  v_file    text;
BEGIN
  SELECT a.dir INTO v_file FROM unnest(path_ancestors(p_path)) WITH ORDINALITY AS a(dir, i)
  WHERE (SELECT true FROM files f WHERE f.workspace = p_workspace AND f.path = a.dir COLLATE "C" LIMIT 1)
  ORDER BY a.i LIMIT 1;
  IF v_file IS NOT NULL THEN
    RETURN QUERY SELECT 'parent_is_file'::text, 0::bigint, v_file; RETURN;
  END IF;
  IF EXISTS (SELECT 1 FROM files f WHERE f.workspace = p_workspace
             AND f.path >= p_path || '/' AND f.path < p_path || '0') THEN
    RETURN QUERY SELECT 'is_directory'::text, 0::bigint, p_path; RETURN;
  END IF;

  IF p_if_version IS NULL THEN
    INSERT INTO files AS f (workspace, path, content, bytes, mime_type, size, line_count)
    VALUES (p_workspace, p_path, p_content, p_bytes, p_mime_type, v_size, v_lines)
    ON CONFLICT (workspace, path) DO UPDATE
      SET content = excluded.content, bytes = excluded.bytes, mime_type = excluded.mime_type,
          size = excluded.size, line_count = excluded.line_count,
          version = f.version + 1, modified_at = clock_timestamp()
    RETURNING CASE WHEN f.xmax = 0 THEN 'created' ELSE 'updated' END, f.version INTO v_status, v_version;
    RETURN QUERY SELECT v_status, v_version, NULL::text;
    RETURN;
  END IF;

  IF p_if_version = 0 THEN
    INSERT INTO files (workspace, path, content, bytes, mime_type, size, line_count)
    VALUES (p_workspace, p_path, p_content, p_bytes, p_mime_type, v_size, v_lines)
    ON CONFLICT (workspace, path) DO NOTHING
    RETURNING files.version INTO v_version;
    IF FOUND THEN
      RETURN QUERY SELECT 'created'::text, v_version, NULL::text;
      RETURN;
    END IF;
  ELSE
    UPDATE files f
       SET content = p_content, bytes = p_bytes, mime_type = p_mime_type, size = v_size,
           line_count = v_lines, version = f.version + 1, modified_at = clock_timestamp()
     WHERE f.workspace = p_workspace AND f.path = p_path AND f.version = p_if_version
    RETURNING f.version INTO v_version;
    IF FOUND THEN
      RETURN QUERY SELECT 'updated'::text, v_version, NULL::text;
      RETURN;
    END IF;
  END IF;

  SELECT f.version INTO v_version FROM files f WHERE f.workspace = p_workspace AND f.path = p_path;
  RETURN QUERY SELECT 'version_mismatch'::text, coalesce(v_version, 0), NULL::text;
END
$function$;

CREATE OR REPLACE FUNCTION fs_upload(p_workspace text, p_paths text[], p_contents text[], p_bytes bytea[], p_mime_types text[])
 RETURNS TABLE(path text, status text, conflict text)
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
DECLARE
  v_refused   text[];
  v_statuses  text[];
  v_conflicts text[];
BEGIN
  SELECT coalesce(array_agg(r.path), '{}'), coalesce(array_agg(r.status), '{}'), coalesce(array_agg(r.conflict), '{}')
    INTO v_refused, v_statuses, v_conflicts
  FROM (
    SELECT b.path, CASE WHEN x.file IS NOT NULL THEN 'parent_is_file' ELSE 'is_directory' END AS status,
           coalesce(x.file, b.path) AS conflict
    FROM unnest(p_paths) AS b(path)
    CROSS JOIN LATERAL (
      -- Scalar subqueries, never pulled up into joins: one primary-key probe each, whatever
      -- the statistics claim right after a bulk upload.
      SELECT (SELECT a.dir FROM unnest(path_ancestors(b.path)) WITH ORDINALITY AS a(dir, i)
              WHERE (SELECT true FROM files f WHERE f.workspace = p_workspace AND f.path = a.dir COLLATE "C" LIMIT 1)
              ORDER BY a.i LIMIT 1) AS file,
             (SELECT true FROM files f WHERE f.workspace = p_workspace
              AND f.path >= b.path || '/' AND f.path < b.path || '0' LIMIT 1) AS is_dir
    ) x
    WHERE x.file IS NOT NULL OR x.is_dir
  ) r;

  INSERT INTO files AS f (workspace, path, content, bytes, mime_type, size, line_count)
  SELECT p_workspace, u.path, u.content, u.bytes, u.mime_type,
         coalesce(octet_length(u.content), length(u.bytes)), text_line_count(u.content)
  FROM unnest(p_paths, p_contents, p_bytes, p_mime_types) AS u(path, content, bytes, mime_type)
  WHERE u.path <> ALL (v_refused)
  ORDER BY u.path COLLATE "C"
  ON CONFLICT ON CONSTRAINT files_pkey DO UPDATE -- (workspace, path); `path` is also an OUT column here
    SET content = excluded.content, bytes = excluded.bytes, mime_type = excluded.mime_type,
        size = excluded.size, line_count = excluded.line_count,
        version = f.version + 1, modified_at = clock_timestamp();
  RETURN QUERY SELECT r.path, r.status, r.conflict FROM unnest(v_refused, v_statuses, v_conflicts) AS r(path, status, conflict);
END
$function$;

CREATE OR REPLACE FUNCTION fs_ls(p_workspace text, p_dir text)
 RETURNS TABLE(path text, is_dir boolean, size bigint, modified_at timestamp with time zone)
 LANGUAGE sql
 STABLE
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
  SELECT f.path, false, f.size, f.modified_at
  FROM files f WHERE f.workspace = p_workspace AND f.parent = p_dir
  UNION ALL
  SELECT p_dir || d.name || '/', true, 0::bigint, NULL::timestamptz
  FROM (
    WITH RECURSIVE sub(name) AS (
      SELECT (SELECT split_part(substr(f.path, length(p_dir) + 1), '/', 1)
              FROM files f
              WHERE f.workspace = p_workspace AND f.path >= p_dir AND f.path < dir_upper_bound(p_dir)
                AND strpos(substr(f.path, length(p_dir) + 1), '/') > 0
              ORDER BY f.path LIMIT 1)
      UNION ALL
      SELECT (SELECT split_part(substr(f.path, length(p_dir) + 1), '/', 1)
              FROM files f
              WHERE f.workspace = p_workspace AND f.path >= p_dir || s.name || '0'
                AND f.path < dir_upper_bound(p_dir)
                AND strpos(substr(f.path, length(p_dir) + 1), '/') > 0
              ORDER BY f.path LIMIT 1)
      FROM sub s WHERE s.name IS NOT NULL
    )
    SELECT name FROM sub WHERE name IS NOT NULL
  ) d
  ORDER BY 1
$function$;

CREATE OR REPLACE FUNCTION fs_delete(p_workspace text, p_path text)
 RETURNS bigint
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v_count bigint;
BEGIN
  IF p_path = '/' THEN
    PERFORM 1 FROM files f WHERE f.workspace = p_workspace ORDER BY f.path FOR UPDATE;
    DELETE FROM files f WHERE f.workspace = p_workspace;
  ELSE
    PERFORM 1 FROM files f
     WHERE f.workspace = p_workspace
       AND (f.path = p_path OR (f.path >= p_path || '/' AND f.path < p_path || '0'))
     ORDER BY f.path FOR UPDATE;
    DELETE FROM files f
     WHERE f.workspace = p_workspace
       AND (f.path = p_path OR (f.path >= p_path || '/' AND f.path < p_path || '0'));
  END IF;
  GET DIAGNOSTICS v_count = ROW_COUNT;
  RETURN v_count;
END
$function$;

CREATE OR REPLACE FUNCTION fs_download(p_workspace text, p_paths text[])
 RETURNS TABLE(ord bigint, content text, bytes bytea, is_dir boolean)
 LANGUAGE sql
 STABLE
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
  SELECT u.ord, file_text(f.content, f.chunk_set), f.bytes,
         f.path IS NULL AND EXISTS (
           SELECT 1 FROM files d
           WHERE d.workspace = p_workspace AND d.path >= u.path || '/' AND d.path < u.path || '0')
  FROM unnest(p_paths) WITH ORDINALITY AS u(path, ord)
  LEFT JOIN files f ON f.workspace = p_workspace AND f.path = u.path
  ORDER BY u.ord
$function$;

CREATE OR REPLACE FUNCTION grant_workspace(p_role name, p_workspace text)
 RETURNS boolean
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
AS $function$
DECLARE
  v_schema text := current_schema();
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = p_role) THEN
    RAISE EXCEPTION 'role "%" does not exist', p_role USING ERRCODE = 'undefined_object';
  END IF;
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', v_schema, p_role);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I.files TO %I', v_schema, p_role);
  EXECUTE format('GRANT SELECT ON %I.chunks, %I.changes, %I.changes_horizon, %I.migrations TO %I',
                 v_schema, v_schema, v_schema, v_schema, p_role);
  PERFORM history_grant(p_role);
  INSERT INTO workspace_grants (role_name, workspace) VALUES (p_role, p_workspace) ON CONFLICT DO NOTHING;
  RETURN FOUND;
END
$function$;

CREATE OR REPLACE FUNCTION revoke_workspace(p_role name, p_workspace text)
 RETURNS boolean
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
AS $function$
DECLARE
  v_schema text := current_schema();
  v_removed boolean;
BEGIN
  DELETE FROM workspace_grants g WHERE g.role_name = p_role AND g.workspace IS NOT DISTINCT FROM p_workspace;
  v_removed := FOUND;
  IF NOT EXISTS (SELECT 1 FROM workspace_grants g WHERE g.role_name = p_role)
     AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = p_role) THEN
    EXECUTE format('REVOKE ALL ON %I.files, %I.chunks, %I.changes, %I.changes_horizon, %I.migrations, '
                   '%I.file_versions, %I.blobs, %I.history_settings, %I.checkpoints FROM %I',
                   v_schema, v_schema, v_schema, v_schema, v_schema, v_schema, v_schema, v_schema, v_schema, p_role);
    EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM %I', v_schema, p_role);
  END IF;
  RETURN v_removed;
END
$function$;

DROP FUNCTION fs_mkdir(text, text, boolean);
DROP FUNCTION fs_is_directory(text, text);
DROP TABLE directories;
DROP FUNCTION directories_check();
