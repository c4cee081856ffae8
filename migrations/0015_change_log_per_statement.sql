-- Up Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
--
-- Version 15: the change log is written once per transaction, not once per changed row.
--
-- Why (BENCHMARKS.md, "Fork"): since 0002 a deferred row trigger (record_change) wrote each
-- change at commit, and two more deferred row triggers on changes sent the notification
-- (notify_changes) and checked the file/directory rule (changes_tree_check, 0005). That is three
-- PL/pgSQL calls and a handful of index probes per changed file, all at commit: 1.2-2 s of a
-- 10,000-file fork, and a share of every large upload or delete.
--
-- 1. Statement triggers (files_zz_log_inserted/_updated/_deleted, SECURITY DEFINER) stage what
--    each statement changed in changes_pending, in one INSERT, and arm the flush: a row for this
--    transaction in changes_flush (ON CONFLICT DO NOTHING, so once until the flush runs).
--    An UPDATE is staged by key: a row whose (workspace, path) is in both transition tables is an
--    update, one only in the old table a delete, one only in the new a create (a rename, made by
--    raw SQL, is a delete and a create, as before; a statement that swaps two names is two
--    updates). Deletes are staged before creates, each in path order.
-- 2. changes_flush's constraint trigger, deferred to commit (the one per transaction, where there
--    were three per row), runs changes_flush_now(): under the commit-order lock (changes_lock, as
--    before) it moves the staged rows into changes in staging order, stamps the history rows of
--    those changes (file_versions.change_id, as record_change did, the first change of a version
--    winning), checks the file/directory rule for the creates whose file is still there, and
--    sends one notification per workspace. Same order of locks as before: the commit-order lock,
--    then version rows, then reads of files.
-- 3. SET CONSTRAINTS ALL IMMEDIATE (any role may) runs the flush at the end of each statement.
--    The log triggers are named to fire after every other AFTER trigger of files (PostgreSQL
--    fires them in name order), so the statement's history rows exist by then and are stamped:
--    0012's history_stamp_early is no longer needed and goes, with record_change,
--    notify_changes and changes_tree_check.
-- 4. Nothing a caller can set decides whether the log is written or the lock taken: the arming
--    row is in a table only the owner writes (0005's forged-setting tests still hold). Both new
--    tables are UNLOGGED: their rows live for one transaction, and a crash loses that
--    transaction anyway.
-- Released: never edit this file; add a new migration instead.

CREATE UNLOGGED TABLE changes_pending (
  xact      xid8 NOT NULL DEFAULT pg_current_xact_id(),
  seq       bigint GENERATED ALWAYS AS IDENTITY,
  workspace text NOT NULL,
  path      text COLLATE "C" NOT NULL,
  op        text NOT NULL,
  version   bigint NOT NULL,
  size      bigint NOT NULL
);
-- The flush finds its transaction's rows by index: the table is emptied by DELETEs, and until
-- (auto)vacuum runs it holds the dead rows of earlier transactions (a 10,000-file fork left 3 MB,
-- which a scan of the whole table read again at every commit).
CREATE INDEX changes_pending_xact_idx ON changes_pending (xact, seq);
CREATE UNLOGGED TABLE changes_flush (
  xact xid8 PRIMARY KEY
);
REVOKE ALL ON changes_pending, changes_flush FROM PUBLIC;

-- AFTER INSERT / UPDATE / DELETE, per statement: stage the statement's changes and arm the flush.
-- (Planned per call: a plan over a transition table is made for the number of rows it has then,
-- and a cached one made for a single-row statement nested-looped over the next 500-row one.)
CREATE FUNCTION changes_stage() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT SET jit = off
SET plan_cache_mode = force_custom_plan AS $$
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
$$;

-- The flush: staged changes into the log, in commit order (see 2 above).
-- (Generic plans: re-planned on every call, as PL/pgSQL does by default when a custom plan looks
-- cheaper, the flush of one write took 0.42 ms instead of 0.19. Its statements read no transition
-- table, and every step is an index probe per row whatever their number.)
CREATE FUNCTION changes_flush_now() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT SET enable_seqscan = off SET jit = off
SET plan_cache_mode = force_generic_plan AS $$
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
$$;
REVOKE EXECUTE ON FUNCTION changes_stage(), changes_flush_now() FROM PUBLIC;

DROP TRIGGER files_record_change ON files;
DROP TRIGGER changes_notify ON changes;
DROP TRIGGER changes_tree_check ON changes;
DROP TRIGGER files_history_stamp_inserted ON files;
DROP TRIGGER files_history_stamp_deleted ON files;
DROP FUNCTION record_change();
DROP FUNCTION notify_changes();
DROP FUNCTION changes_tree_check();
DROP FUNCTION history_stamp_early();

-- "zz": after every other AFTER trigger of files (see 3 above).
CREATE TRIGGER files_zz_log_inserted AFTER INSERT ON files
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION changes_stage();
CREATE TRIGGER files_zz_log_updated AFTER UPDATE ON files
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION changes_stage();
CREATE TRIGGER files_zz_log_deleted AFTER DELETE ON files
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION changes_stage();
CREATE CONSTRAINT TRIGGER changes_flush_at_commit AFTER INSERT ON changes_flush
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION changes_flush_now();

-- Down Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;

DROP TRIGGER files_zz_log_inserted ON files;
DROP TRIGGER files_zz_log_updated ON files;
DROP TRIGGER files_zz_log_deleted ON files;
DROP TABLE changes_pending, changes_flush;
DROP FUNCTION changes_stage();
DROP FUNCTION changes_flush_now();

-- The definitions 0014 left.

CREATE OR REPLACE FUNCTION record_change()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v_xact  text := pg_current_xact_id()::text;
  v_first boolean := split_part(coalesce(current_setting('deepagents_backends.first_change', true), ''), '/', 1) <> v_xact;
  v_id    bigint;
  v_id2   bigint;
BEGIN
  PERFORM changes_lock();
  IF TG_OP = 'DELETE' THEN
    INSERT INTO changes (workspace, path, op, version, size)
    VALUES (OLD.workspace, OLD.path, 'delete', OLD.version, OLD.size) RETURNING id INTO v_id;
    UPDATE file_versions v SET change_id = v_id
     WHERE v.workspace = OLD.workspace AND v.path = OLD.path AND v.version = OLD.version AND v.deleted
       AND v.change_id IS NULL;
  ELSIF TG_OP = 'UPDATE' AND (OLD.workspace, OLD.path) IS DISTINCT FROM (NEW.workspace, NEW.path) THEN
    -- A rename (raw SQL): the old name is gone and a new one exists, for watchers and for the
    -- file/directory rule alike.
    INSERT INTO changes (workspace, path, op, version, size)
    VALUES (OLD.workspace, OLD.path, 'delete', OLD.version, OLD.size) RETURNING id INTO v_id;
    INSERT INTO changes (workspace, path, op, version, size)
    VALUES (NEW.workspace, NEW.path, 'create', NEW.version, NEW.size) RETURNING id INTO v_id2;
    UPDATE file_versions v SET change_id = v_id
     WHERE v.workspace = OLD.workspace AND v.path = OLD.path AND v.version = OLD.version AND v.deleted
       AND v.change_id IS NULL;
    UPDATE file_versions v SET change_id = v_id2
     WHERE v.workspace = NEW.workspace AND v.path = NEW.path AND v.version = NEW.version AND NOT v.deleted
       AND v.change_id IS NULL;
  ELSE
    INSERT INTO changes (workspace, path, op, version, size)
    VALUES (NEW.workspace, NEW.path, CASE WHEN TG_OP = 'INSERT' THEN 'create' ELSE 'update' END, NEW.version, NEW.size)
    RETURNING id INTO v_id;
    UPDATE file_versions v SET change_id = v_id
     WHERE v.workspace = NEW.workspace AND v.path = NEW.path AND v.version = NEW.version AND NOT v.deleted
       AND v.change_id IS NULL;
  END IF;
  IF v_first THEN
    PERFORM set_config('deepagents_backends.first_change', v_xact || '/' || v_id, true);
  END IF;
  RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION notify_changes()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION changes_tree_check()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v_file text;
BEGIN
  IF NEW.op <> 'create'
     OR NOT coalesce((SELECT true FROM files n WHERE n.workspace = NEW.workspace AND n.path = NEW.path
                     AND n.parent = regexp_replace(NEW.path, '[^/]*$', '') LIMIT 1), false) THEN
    RETURN NULL; -- nothing created, or created and gone again within the transaction
  END IF;
  SELECT a.dir INTO v_file FROM unnest(path_ancestors(NEW.path)) WITH ORDINALITY AS a(dir, i)
  WHERE (SELECT true FROM files f WHERE f.workspace = NEW.workspace AND f.path = a.dir COLLATE "C"
         AND f.parent = regexp_replace(a.dir, '[^/]*$', '') COLLATE "C" LIMIT 1)
  ORDER BY a.i LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'cannot create "%": "%" is a file, not a directory', NEW.path, v_file
      USING ERRCODE = 'DA002', DETAIL = v_file;
  END IF;
  IF (SELECT true FROM files f WHERE f.workspace = NEW.workspace
      AND f.path >= NEW.path || '/' AND f.path < NEW.path || '0'
      AND f.parent >= NEW.path || '/' AND f.parent < NEW.path || '0' LIMIT 1) THEN
    RAISE EXCEPTION 'cannot create file "%": it is a directory', NEW.path
      USING ERRCODE = 'DA003', DETAIL = NEW.path;
  END IF;
  RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION history_stamp_early()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v_first text := coalesce(current_setting('deepagents_backends.first_change', true), '');
  v_deleted boolean := TG_OP = 'DELETE';
BEGIN
  IF split_part(v_first, '/', 1) IS DISTINCT FROM pg_current_xact_id()::text THEN
    RETURN NULL; -- the usual case: record_change runs at commit and stamps them itself
  END IF;
  UPDATE file_versions v SET change_id = c.id
  FROM changed_rows r
  JOIN changes c ON c.workspace = r.workspace AND c.id >= split_part(v_first, '/', 2)::bigint
                AND c.path = r.path AND c.version = r.version AND (c.op = 'delete') = v_deleted
  WHERE v.workspace = r.workspace AND v.path = r.path AND v.version = r.version AND v.deleted = v_deleted
    AND v.change_id IS NULL;
  RETURN NULL;
END
$function$;

REVOKE EXECUTE ON FUNCTION record_change(), changes_tree_check(), history_stamp_early() FROM PUBLIC;

CREATE CONSTRAINT TRIGGER files_record_change AFTER INSERT OR DELETE OR UPDATE ON files
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION record_change();
CREATE CONSTRAINT TRIGGER changes_notify AFTER INSERT ON changes
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION notify_changes();
CREATE CONSTRAINT TRIGGER changes_tree_check AFTER INSERT ON changes
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION changes_tree_check();
CREATE TRIGGER files_history_stamp_inserted AFTER INSERT ON files
REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION history_stamp_early();
CREATE TRIGGER files_history_stamp_deleted AFTER DELETE ON files
REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION history_stamp_early();
