-- Up Migration
--
-- Version 5: the privilege boundary inside the database, and three correctness rules that every
-- writer -- the backend, the CLI, or raw SQL of a restricted role -- now gets from the schema
-- itself (issue 11 of the project's tracker):
--
-- 1. Names never resolve through the caller's temporary schema. PostgreSQL searches pg_temp
--    FIRST for tables, views and types unless the search_path lists it; 0001-0004 pinned
--    functions to `<schema>` alone, so a role could shadow `changes` or `chunks` with a temporary
--    view whose INSTEAD OF trigger then ran as the schema owner inside our SECURITY DEFINER
--    triggers. Every function that pins a search_path now pins `<schema>, pg_temp` (pg_temp last,
--    so it can only supply names nothing else has). The few unpinned helpers are listed in
--    SECURITY.md: they are pure functions over pg_catalog and always run inside a pinned caller
--    (pinning them would stop the planner from inlining them into every search).
-- 2. A version number is never reused for a path. Versions restarted at 1 after a delete, so a
--    compare-and-set token read before a delete matched the new file (ABA). `tombstones` keeps the
--    last version of every deleted path; a file created there starts above it.
-- 3. Rows are locked in one global order, by path: uploads and subtree deletes in opposite orders
--    used to deadlock.
-- 4. A file and a directory never share a name (no file '/a' beside a file '/a/b'). Checked up
--    front, and again at commit under the change log's lock, where commits are already
--    serialised, so two racing transactions cannot both get through.
-- 6. The SECURITY DEFINER trigger functions (these and 0004's) can no longer be attached by other
--    roles to tables of their own.
--
-- 5. Change-feed wake-ups go to one channel per workspace, named by a digest, and carry only an id.
--
-- The lookups that run for every row of a batch are scalar sub-selects on full primary keys,
-- with enable_seqscan off in their functions (or planned on each call): plpgsql caches a plan
-- for the session, and one made while the tables were empty -- the first upload into a new
-- schema -- read a whole workspace per file once they had grown.
--
-- Every migration from this one on starts by pinning the search_path it creates functions with:
-- `SET search_path FROM CURRENT` below then captures `<schema>, pg_temp`.
-- Released: never edit this file; add a new migration instead.
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;

-- The last version of each deleted path (only deleted paths: creating the path again removes its
-- row). Written only by the triggers below, as the owner; no other role has any privilege on it.
CREATE TABLE tombstones (
  workspace text NOT NULL,
  path      text COLLATE "C" NOT NULL,
  version   bigint NOT NULL,
  PRIMARY KEY (workspace, path)
);
ALTER TABLE tombstones ENABLE ROW LEVEL SECURITY;

-- Paths deleted before this migration: their last version, as far as the change log remembers.
INSERT INTO tombstones (workspace, path, version)
SELECT c.workspace, c.path, max(c.version)
FROM changes c
WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.workspace = c.workspace AND f.path = c.path)
GROUP BY c.workspace, c.path;

-- A new row's first version: one above the path's tombstone. It first waits for a transaction
-- that is deleting the same path (FOR UPDATE on the live row): without that wait, an insert that
-- ran into the deleted row's unique-key lock would go on with the version it computed before the
-- delete committed its tombstone. Both lookups are full primary keys; enable_seqscan is off
-- because a plan the session cached while `files` was empty -- the first upload into a new
-- schema -- was a sequential scan, then kept for every row inserted later. (Cheaper than planning
-- each call: this runs for every inserted or upserted row.)
CREATE FUNCTION files_first_version() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT SET enable_seqscan = off AS $$
BEGIN
  PERFORM 1 FROM files f WHERE f.workspace = NEW.workspace AND f.path = NEW.path FOR UPDATE;
  NEW.version := coalesce((SELECT t.version FROM tombstones t
                           WHERE t.workspace = NEW.workspace AND t.path = NEW.path), 0) + 1;
  RETURN NEW;
END
$$;

-- A rename (raw SQL: UPDATE of workspace or path) leaves a tombstone at the old name and starts
-- the new name above its own tombstone, like a delete and a create.
CREATE FUNCTION files_renamed_version() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT SET enable_seqscan = off AS $$
BEGIN
  IF (OLD.workspace, OLD.path) IS NOT DISTINCT FROM (NEW.workspace, NEW.path) THEN
    RETURN NEW;
  END IF;
  INSERT INTO tombstones AS t (workspace, path, version) VALUES (OLD.workspace, OLD.path, OLD.version)
  ON CONFLICT (workspace, path) DO UPDATE SET version = greatest(t.version, excluded.version);
  NEW.version := coalesce((SELECT t.version FROM tombstones t
                           WHERE t.workspace = NEW.workspace AND t.path = NEW.path), 0) + 1;
  DELETE FROM tombstones t WHERE t.workspace = NEW.workspace AND t.path = NEW.path;
  RETURN NEW;
END
$$;

CREATE FUNCTION tombstones_record() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  INSERT INTO tombstones AS t (workspace, path, version)
  SELECT o.workspace, o.path, o.version FROM old_rows o ORDER BY o.workspace, o.path
  ON CONFLICT (workspace, path) DO UPDATE SET version = greatest(t.version, excluded.version);
  RETURN NULL;
END
$$;

CREATE FUNCTION tombstones_clear() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  DELETE FROM tombstones t USING new_rows n WHERE t.workspace = n.workspace AND t.path = n.path;
  RETURN NULL;
END
$$;

CREATE TRIGGER files_first_version BEFORE INSERT ON files
FOR EACH ROW EXECUTE FUNCTION files_first_version();
CREATE TRIGGER files_renamed_version BEFORE UPDATE OF workspace, path ON files
FOR EACH ROW EXECUTE FUNCTION files_renamed_version();
CREATE TRIGGER files_tombstones_record AFTER DELETE ON files
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tombstones_record();
CREATE TRIGGER files_tombstones_clear AFTER INSERT ON files
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tombstones_clear();

-- The change log's commit lock (0002): transactions that change files take it at commit, so they
-- commit one at a time and change ids are drawn in commit order.
-- Not pinned (a SET clause would stop it being inlined, and it runs once per changed row): it
-- names no relation, and current_schema() is the schema inside every caller, which are pinned.
CREATE FUNCTION changes_lock() RETURNS void
LANGUAGE sql
RETURN pg_advisory_xact_lock(hashtext('deepagents-backends:changes:' || current_schema()));

-- The directories a path lies in, outermost first, without the root: '/a/b/c' -> {/a, /a/b}.
CREATE FUNCTION path_ancestors(p_path text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE RETURN
  ARRAY(SELECT array_to_string(s.parts[1:i], '/')
        FROM (SELECT string_to_array(p_path, '/') AS parts) s
        CROSS JOIN generate_series(2, cardinality(s.parts) - 1) AS i
        ORDER BY i);

-- The file/directory rule, at commit, for every file a transaction creates (its 'create' rows in
-- the change log; record_change logs a rename as a delete and a create). It runs as a deferred
-- trigger on `changes`, so it fires after record_change took the commit lock: every transaction
-- that committed before is visible to its statements (READ COMMITTED takes a snapshot per
-- statement), and every later one will see this one -- of two transactions creating '/a' and
-- '/a/b', the second to commit fails. It reads no session setting: nothing a role can set skips
-- it. SQLSTATE DA002: the path lies under a file (DETAIL: that file); DA003: the file is a
-- directory too (DETAIL: the path). The probes are scalar sub-selects (never turned into joins),
-- so each is a primary-key lookup on both key columns whatever the statistics claim, and
-- enable_seqscan is off: a plan the session cached while the tables were empty would scan them.
-- Under REPEATABLE READ the snapshot is the transaction's, taken before the lock: such a
-- transaction can miss a clash committed after it began (SECURITY.md; the backend uses READ
-- COMMITTED, and SERIALIZABLE fails with 40001).
CREATE FUNCTION changes_tree_check() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT SET enable_seqscan = off AS $$
DECLARE
  v_file text;
BEGIN
  IF NEW.op <> 'create'
     OR NOT coalesce((SELECT true FROM files n WHERE n.workspace = NEW.workspace AND n.path = NEW.path LIMIT 1), false) THEN
    RETURN NULL; -- nothing created, or created and gone again within the transaction
  END IF;
  SELECT a.dir INTO v_file FROM unnest(path_ancestors(NEW.path)) WITH ORDINALITY AS a(dir, i)
  WHERE (SELECT true FROM files f WHERE f.workspace = NEW.workspace AND f.path = a.dir COLLATE "C" LIMIT 1)
  ORDER BY a.i LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'cannot create "%": "%" is a file, not a directory', NEW.path, v_file
      USING ERRCODE = 'DA002', DETAIL = v_file;
  END IF;
  IF (SELECT true FROM files f WHERE f.workspace = NEW.workspace
      AND f.path >= NEW.path || '/' AND f.path < NEW.path || '0' LIMIT 1) THEN
    RAISE EXCEPTION 'cannot create file "%": it is a directory', NEW.path
      USING ERRCODE = 'DA003', DETAIL = NEW.path;
  END IF;
  RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER changes_tree_check
AFTER INSERT ON changes DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION changes_tree_check();

-- 0002's change recorder and notifier, with their transaction markers bound to the transaction.
-- Those markers are custom settings, which any role may set for its own session: a marker left at
-- session level used to make record_change skip the commit lock (ids then no longer follow commit
-- order, and a watcher could step over a late commit) and notify_changes stay silent. Now the lock
-- is taken for every change row (a second request of a held lock is a local counter bump), and a
-- marker counts only when it names the current transaction id.
CREATE OR REPLACE FUNCTION record_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  v_xact  text := pg_current_xact_id()::text;
  v_first boolean := split_part(coalesce(current_setting('deepagents_backends.first_change', true), ''), '/', 1) <> v_xact;
  v_id    bigint;
BEGIN
  PERFORM changes_lock();
  IF TG_OP = 'DELETE' THEN
    INSERT INTO changes (workspace, path, op, version, size)
    VALUES (OLD.workspace, OLD.path, 'delete', OLD.version, OLD.size) RETURNING id INTO v_id;
  ELSIF TG_OP = 'UPDATE' AND (OLD.workspace, OLD.path) IS DISTINCT FROM (NEW.workspace, NEW.path) THEN
    -- A rename (raw SQL): the old name is gone and a new one exists, for watchers and for the
    -- file/directory rule alike.
    INSERT INTO changes (workspace, path, op, version, size)
    VALUES (OLD.workspace, OLD.path, 'delete', OLD.version, OLD.size) RETURNING id INTO v_id;
    INSERT INTO changes (workspace, path, op, version, size)
    VALUES (NEW.workspace, NEW.path, 'create', NEW.version, NEW.size);
  ELSE
    INSERT INTO changes (workspace, path, op, version, size)
    VALUES (NEW.workspace, NEW.path, CASE WHEN TG_OP = 'INSERT' THEN 'create' ELSE 'update' END, NEW.version, NEW.size)
    RETURNING id INTO v_id;
  END IF;
  IF v_first THEN
    PERFORM set_config('deepagents_backends.first_change', v_xact || '/' || v_id, true);
  END IF;
  RETURN NULL;
END
$$;

-- The NOTIFY channel of one workspace. LISTEN needs no privilege, so 0002's one channel per schema,
-- whose payload named the workspace, told any role that could connect the names of every
-- workspace and when each was written. Now a workspace's wake-ups go to a channel of its own,
-- named by a digest of the schema and workspace (a listener has to know a name to hear it), carrying only the
-- newest change id. At most 20 + 9 + 32 = 61 bytes (channel names are at most 63).
CREATE FUNCTION changes_channel(p_workspace text) RETURNS text
LANGUAGE sql STABLE SET search_path FROM CURRENT
RETURN left(current_schema(), 20) || '.changes.'
       || left(encode(sha256(convert_to(current_schema() || E'\n' || p_workspace, 'UTF8')), 'hex'), 32);

-- One NOTIFY per workspace per transaction (see 0002). A notification is a hint -- watchers read
-- the log from their cursor, and poll when no hint comes -- so a marker a role forged inside its
-- own transaction can only delay the hints of that transaction's own changes.
CREATE OR REPLACE FUNCTION notify_changes() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  v_xact  text := pg_current_xact_id()::text;
  v_first text := coalesce(current_setting('deepagents_backends.first_change', true), '');
  v_note  record;
BEGIN
  IF coalesce(current_setting('deepagents_backends.notified', true), '') = v_xact
     OR split_part(v_first, '/', 1) <> v_xact THEN
    RETURN NULL;
  END IF;
  PERFORM set_config('deepagents_backends.notified', v_xact, true);
  FOR v_note IN
    SELECT c.workspace, max(c.id) AS id FROM changes c
    WHERE c.id >= split_part(v_first, '/', 2)::bigint
    GROUP BY c.workspace
  LOOP
    PERFORM pg_notify(changes_channel(v_note.workspace), json_build_object('id', v_note.id)::text);
  END LOOP;
  RETURN NULL;
END
$$;

-- fs_write (0001) with the file/directory rule checked up front, so the usual case gets a precise
-- answer instead of a failed commit: status 'parent_is_file' (conflict = that file) or
-- 'is_directory'. 'created' is told from 'updated' by whether the row was inserted (xmax = 0 on a
-- freshly inserted row version), not by version 1: a path created again starts above 1.
DROP FUNCTION fs_write(text, text, text, bytea, text, bigint);
CREATE FUNCTION fs_write(p_workspace text, p_path text, p_content text, p_bytes bytea,
                         p_mime_type text, p_if_version bigint)
RETURNS TABLE (status text, version bigint, conflict text)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
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
$$;

-- fs_upload (0001) in path order (rows are locked in the order they are written: two uploads of
-- the same files in opposite orders deadlocked), and with the file/directory rule applied per
-- file against the workspace: a path under a file, or a path that is a directory, is not written.
-- (Paths of one batch that clash with each other are refused by the driver before it sends the
-- batch: src/paths.ts, batchClashes.) Returns the refused paths: status 'parent_is_file'
-- (conflict = the file) or 'is_directory'. The rest is written in the same statement. The checks
-- are planned on each call (force_custom_plan), from the batch's real size: a plan cached while
-- the table was empty read the whole workspace per file.
DROP FUNCTION fs_upload(text, text[], text[], bytea[], text[]);
CREATE FUNCTION fs_upload(p_workspace text, p_paths text[], p_contents text[], p_bytes bytea[],
                          p_mime_types text[])
RETURNS TABLE (path text, status text, conflict text)
LANGUAGE plpgsql SET search_path FROM CURRENT SET plan_cache_mode = force_custom_plan AS $$
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
$$;

-- fs_delete (0001) locking the subtree in path order before deleting it (a DELETE over a range
-- locks rows in whatever order its plan reads them).
CREATE OR REPLACE FUNCTION fs_delete(p_workspace text, p_path text)
RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
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
$$;

-- Trigger functions that run as the owner. EXECUTE was left to PUBLIC (the default), and a trigger
-- function cannot be called directly -- but any role may attach it to a temporary table of its
-- own with CREATE TRIGGER, and then it runs as the owner on rows the role made up: truncating
-- every workspace's chunks, forging change-log entries, planting or erasing tombstones. Firing a
-- trigger checks no privilege, so revoking EXECUTE takes nothing from the triggers on `files`.
DO $$
DECLARE
  v_fn regprocedure;
BEGIN
  FOR v_fn IN
    SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
    WHERE p.pronamespace = current_schema()::regnamespace AND p.prosecdef
  LOOP
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', v_fn);
  END LOOP;
END
$$;

-- Every other function of the schema that pins a search_path: re-pin it to `<schema>, pg_temp`
-- (extension members -- pg_trgm when it was installed into this schema -- are left alone).
DO $$
DECLARE
  v_fn regprocedure;
BEGIN
  FOR v_fn IN
    SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
    WHERE p.pronamespace = current_schema()::regnamespace
      AND EXISTS (SELECT 1 FROM unnest(p.proconfig) AS c WHERE c LIKE 'search\_path=%')
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                      WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER FUNCTION %s SET search_path FROM CURRENT', v_fn);
  END LOOP;
END
$$;

-- Down Migration

-- The functions put back below keep pg_temp last too: no version should resolve names through it.
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;

DROP FUNCTION fs_upload(text, text[], text[], bytea[], text[]);
CREATE FUNCTION fs_upload(p_workspace text, p_paths text[], p_contents text[], p_bytes bytea[],
                          p_mime_types text[])
RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  v_count bigint;
BEGIN
  INSERT INTO files AS f (workspace, path, content, bytes, mime_type, size, line_count)
  SELECT p_workspace, u.path, u.content, u.bytes, u.mime_type,
         coalesce(octet_length(u.content), length(u.bytes)), text_line_count(u.content)
  FROM unnest(p_paths, p_contents, p_bytes, p_mime_types) AS u(path, content, bytes, mime_type)
  ON CONFLICT (workspace, path) DO UPDATE
    SET content = excluded.content, bytes = excluded.bytes, mime_type = excluded.mime_type,
        size = excluded.size, line_count = excluded.line_count,
        version = f.version + 1, modified_at = clock_timestamp();
  GET DIAGNOSTICS v_count = ROW_COUNT;
  RETURN v_count;
END
$$;

DROP FUNCTION fs_write(text, text, text, bytea, text, bigint);
CREATE FUNCTION fs_write(p_workspace text, p_path text, p_content text, p_bytes bytea,
                         p_mime_type text, p_if_version bigint)
RETURNS TABLE (status text, version bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  v_size  bigint  := coalesce(octet_length(p_content), length(p_bytes));
  v_lines integer := text_line_count(p_content);
  v_version bigint;
BEGIN
  IF p_if_version IS NULL THEN
    RETURN QUERY
      INSERT INTO files AS f (workspace, path, content, bytes, mime_type, size, line_count)
      VALUES (p_workspace, p_path, p_content, p_bytes, p_mime_type, v_size, v_lines)
      ON CONFLICT (workspace, path) DO UPDATE
        SET content = excluded.content, bytes = excluded.bytes, mime_type = excluded.mime_type,
            size = excluded.size, line_count = excluded.line_count,
            version = f.version + 1, modified_at = clock_timestamp()
      RETURNING CASE WHEN f.version = 1 THEN 'created' ELSE 'updated' END, f.version;
    RETURN;
  END IF;

  IF p_if_version = 0 THEN
    INSERT INTO files (workspace, path, content, bytes, mime_type, size, line_count)
    VALUES (p_workspace, p_path, p_content, p_bytes, p_mime_type, v_size, v_lines)
    ON CONFLICT (workspace, path) DO NOTHING
    RETURNING files.version INTO v_version;
    IF FOUND THEN
      RETURN QUERY SELECT 'created'::text, v_version;
      RETURN;
    END IF;
  ELSE
    UPDATE files f
       SET content = p_content, bytes = p_bytes, mime_type = p_mime_type, size = v_size,
           line_count = v_lines, version = f.version + 1, modified_at = clock_timestamp()
     WHERE f.workspace = p_workspace AND f.path = p_path AND f.version = p_if_version
    RETURNING f.version INTO v_version;
    IF FOUND THEN
      RETURN QUERY SELECT 'updated'::text, v_version;
      RETURN;
    END IF;
  END IF;

  SELECT f.version INTO v_version FROM files f WHERE f.workspace = p_workspace AND f.path = p_path;
  RETURN QUERY SELECT 'version_mismatch'::text, coalesce(v_version, 0);
END
$$;

-- record_change, notify_changes and fs_delete as 0001/0002 defined them (SECURITY DEFINER as
-- 0004 set it); the search_path of the other functions is left pinned with pg_temp last, which
-- is what every version should have had.
CREATE OR REPLACE FUNCTION record_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  v_first boolean := coalesce(current_setting('deepagents_backends.first_change', true), '') = '';
  v_id    bigint;
BEGIN
  IF v_first THEN
    PERFORM pg_advisory_xact_lock(hashtext('deepagents-backends:changes:' || current_schema()));
  END IF;
  IF TG_OP = 'DELETE' THEN
    INSERT INTO changes (workspace, path, op, version, size)
    VALUES (OLD.workspace, OLD.path, 'delete', OLD.version, OLD.size) RETURNING id INTO v_id;
  ELSE
    INSERT INTO changes (workspace, path, op, version, size)
    VALUES (NEW.workspace, NEW.path, CASE WHEN TG_OP = 'INSERT' THEN 'create' ELSE 'update' END, NEW.version, NEW.size)
    RETURNING id INTO v_id;
  END IF;
  IF v_first THEN
    PERFORM set_config('deepagents_backends.first_change', v_id::text, true);
  END IF;
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION notify_changes() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  v_note record;
BEGIN
  IF coalesce(current_setting('deepagents_backends.notified', true), '') = '1' THEN
    RETURN NULL;
  END IF;
  PERFORM set_config('deepagents_backends.notified', '1', true);
  FOR v_note IN
    SELECT c.workspace, max(c.id) AS id FROM changes c
    WHERE c.id >= current_setting('deepagents_backends.first_change')::bigint
    GROUP BY c.workspace
  LOOP
    PERFORM pg_notify(changes_channel(), json_build_object('workspace', v_note.workspace, 'id', v_note.id)::text);
  END LOOP;
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION fs_delete(p_workspace text, p_path text)
RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  v_count bigint;
BEGIN
  IF p_path = '/' THEN
    DELETE FROM files f WHERE f.workspace = p_workspace;
  ELSE
    DELETE FROM files f
     WHERE f.workspace = p_workspace
       AND (f.path = p_path OR (f.path >= p_path || '/' AND f.path < p_path || '0'));
  END IF;
  GET DIAGNOSTICS v_count = ROW_COUNT;
  RETURN v_count;
END
$$;

DROP FUNCTION changes_channel(text);
DROP TRIGGER files_renamed_version ON files;
DROP FUNCTION files_renamed_version();
DROP TRIGGER changes_tree_check ON changes;
DROP FUNCTION changes_tree_check();
DROP FUNCTION path_ancestors(text);
DROP FUNCTION changes_lock();
DROP TRIGGER files_tombstones_clear ON files;
DROP TRIGGER files_tombstones_record ON files;
DROP TRIGGER files_first_version ON files;
DROP FUNCTION tombstones_clear();
DROP FUNCTION tombstones_record();
DROP FUNCTION files_first_version();
DROP TABLE tombstones;
