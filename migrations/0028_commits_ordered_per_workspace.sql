-- Up Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
--
-- Version 28: commits of different workspaces no longer queue behind each other (issue 16,
-- item 5).
--
-- Until now every transaction that changed files took two locks through its commit: the schema's
-- one commit-order lock (changes_lock(): change ids drawn in commit order) and, through its
-- pg_notify, PostgreSQL's database-wide NOTIFY lock, which a committing transaction holds until
-- its commit record is flushed. Every writer of the database committed alone, one WAL flush each
-- (bench/notify.ts: 0.43-0.46x the writes/s of no change log, at 1, 4 or 16 workspaces).
--
-- 1. Commit order per workspace. A watcher reads one workspace's log (`id > cursor`), so ids need
--    to follow commit order only within a workspace. changes_lock(workspaces) takes one
--    transaction-level advisory lock per workspace (two-key form: the schema's key and the
--    workspace's hashtext; two workspaces whose hashes collide simply share a lock), in the order
--    of the keys, so two commits that log the same workspaces never wait for each other in
--    opposite orders. changes_flush_now takes the locks of every workspace the transaction
--    staged before it draws an id, as it took the schema's lock: within a workspace, an id drawn
--    later commits later, and an id drawn now is above every id committed before.
-- 2. fs_changes_head(workspace), where a watch without a cursor starts, is the workspace's own
--    newest change (or horizon), as history_head gives a checkpoint: the schema's newest id could
--    be above an id of this workspace drawn and not yet committed, which the watch would then
--    skip.
-- 3. The file/directory rule of new directory rows moves from directories_check (0027: a row
--    trigger running as the caller, which took the schema's lock) into changes_flush_now: a
--    statement trigger stages each inserted or updated directory row ('directory', as forks stage
--    a 'horizon') and the flush checks them under the same locks, taken once, in one order. A
--    caller-rights trigger could lock only its own workspace, before the flush locked the others:
--    two transactions writing the same two workspaces could deadlock.
-- 4. A wake-up after the commit, not in it. A transaction whose setting
--    deepagents_backends.wake_up is 'after_commit' sends no NOTIFY from its commit: it says its
--    writer will call fs_wake_up() afterwards, in a transaction of its own. PostgresBackend sets
--    it for the transaction of each of its statements that change files
--    (sql/wake_up_after_commit.sql) and then does (sql/wake_up.sql, src/postgres/wake-ups.ts),
--    in a transaction that commits without waiting for its WAL flush (synchronous_commit off: a
--    wake-up is not data, and the changes it announces were flushed by their own commits), so it
--    holds the database-wide lock for microseconds, not for a flush. Every other transaction (raw
--    SQL, on any connection) is woken from its commit, as before. A role that sets it silences
--    only its own commits, whose changes its workspaces' watchers still read at their next poll
--    (SECURITY.md).
-- 5. The log's own work per commit, once the locks no longer queue commits, is what is left
--    between the change log and none: changes_flush_now runs its directory, fork and
--    file/directory-rule statements only when the commit staged what they check, and
--    changes_stage logs a one-row in-place update (and the empty INSERT half of an upsert)
--    without planning its general statement.
-- Released: never edit this file; add a new migration instead.

-- 1. One lock per workspace, in key order. First the schema's lock of 0005-0027, shared: a flush
-- with 0027's body, still running when this migration commits (or one of a schema taken down
-- again), takes it exclusively, so it and a flush with this body never draw ids at the same time.
-- Shared holders do not wait for each other; a later migration may drop it once no 0027 body can
-- run. (Locking the tables in the migration instead deadlocked with writers: fs_write reads
-- directories before it writes files. Pinned although it reads no table: plpgsql, never inlined.)
CREATE FUNCTION changes_lock(p_workspaces text[]) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  v_key integer;
BEGIN
  PERFORM pg_advisory_xact_lock_shared(hashtext('deepagents-backends:changes:' || current_schema()));
  FOR v_key IN SELECT DISTINCT hashtext(w.workspace) FROM unnest(p_workspaces) AS w(workspace) ORDER BY 1 LOOP
    PERFORM pg_advisory_xact_lock(hashtext('deepagents-backends:changes:' || current_schema()), v_key);
  END LOOP;
END
$$;
REVOKE EXECUTE ON FUNCTION changes_lock(text[]) FROM PUBLIC;

-- 2. Where a watch of the workspace starts: its newest change, or its horizon.
CREATE OR REPLACE FUNCTION fs_changes_head(p_workspace text) RETURNS bigint
LANGUAGE sql STABLE SET search_path FROM CURRENT
RETURN history_head(p_workspace);
COMMENT ON FUNCTION fs_changes_head() IS
  'The schema''s newest committed change id. Since 0028 ids follow commit order only within a workspace: this is no place to start a watch (fs_changes_head(workspace) is).';

-- 3. Directory rows, staged for the flush (statement triggers: one event each, as transition
-- tables require).
CREATE FUNCTION directories_stage() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT SET jit = off
SET plan_cache_mode = force_custom_plan AS $$
BEGIN
  INSERT INTO changes_pending (workspace, path, op, version, size)
  SELECT n.workspace, n.path, 'directory', 0, 0 FROM new_rows n ORDER BY n.workspace, n.path;
  IF FOUND THEN
    INSERT INTO changes_flush (xact) VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END
$$;
REVOKE EXECUTE ON FUNCTION directories_stage() FROM PUBLIC;
DROP TRIGGER directories_checked_at_commit ON directories;
DROP FUNCTION directories_check();
CREATE TRIGGER directories_zz_stage_inserted AFTER INSERT ON directories
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION directories_stage();
CREATE TRIGGER directories_zz_stage_updated AFTER UPDATE ON directories
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION directories_stage();

-- 4. A wake-up sent after the writer's commit, by the writer (see above).
-- Each workspace of p_workspaces with a change the caller can read (row-level security applies:
-- a role wakes only the workspaces granted to it) is notified with its newest change id, as the
-- flush does; the result is how many were. (The backend's call, sql/wake_up.sql, alone in its
-- transaction, also turns synchronous_commit off for it; the function does not, as it would for
-- whatever else its caller's transaction writes.)
CREATE FUNCTION fs_wake_up(p_workspaces text[]) RETURNS integer
LANGUAGE plpgsql SET search_path FROM CURRENT SET enable_seqscan = off SET jit = off AS $$
DECLARE
  v_note record;
  v_count integer := 0;
BEGIN
  FOR v_note IN
    SELECT w.workspace, history_head(w.workspace) AS id
    FROM (SELECT DISTINCT x.workspace FROM unnest(p_workspaces) AS x(workspace) WHERE x.workspace IS NOT NULL) w
  LOOP
    CONTINUE WHEN v_note.id = 0;
    PERFORM pg_notify(changes_channel(v_note.workspace), json_build_object('id', v_note.id)::text);
    v_count := v_count + 1;
  END LOOP;
  RETURN v_count;
END
$$;

-- changes_stage: 0026's, with two shortcuts for what most writes are (BENCHMARKS.md, "Change
-- feed"): it re-plans its statements on every call (force_custom_plan, for statements of any
-- size), and that planning was most of its cost for a one-row write.
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
  v_new record;
  v_old record;
BEGIN
  IF TG_OP = 'INSERT' THEN
    -- An INSERT ... ON CONFLICT DO UPDATE that updated (every write of an existing file) fires
    -- this with no row: return before planning the statement below.
    PERFORM FROM new_rows LIMIT 1;
    IF NOT FOUND THEN
      RETURN NULL;
    END IF;
    -- (Not a fork's own rows: its target's log starts after them, at fork_log_start's horizon.)
    INSERT INTO changes_pending (workspace, path, op, version, size)
    SELECT n.workspace, n.path, 'create', n.version, n.size FROM new_rows n
    WHERE n.workspace NOT IN (SELECT m.workspace FROM fork_marks m WHERE m.xact = pg_current_xact_id())
    ORDER BY n.workspace, n.path;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO changes_pending (workspace, path, op, version, size)
    SELECT o.workspace, o.path, 'delete', o.version, o.size FROM old_rows o ORDER BY o.workspace, o.path;
  ELSE
    -- One row updated in place (a write or an edit of an existing file: the common case): one
    -- 'update', as the statement below would log it, without planning that statement for it.
    IF (SELECT count(*) FROM (SELECT FROM new_rows LIMIT 2) n) = 1 THEN
      SELECT n.workspace, n.path, n.version, n.size INTO v_new FROM new_rows n;
      SELECT o.workspace, o.path INTO v_old FROM old_rows o;
      IF v_old.workspace = v_new.workspace AND v_old.path = v_new.path THEN
        INSERT INTO changes_pending (workspace, path, op, version, size)
        VALUES (v_new.workspace, v_new.path, 'update', v_new.version, v_new.size);
        INSERT INTO changes_flush (xact) VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
        RETURN NULL;
      END IF;
    END IF;
    -- Each path of the statement is an update (an old and a new row have it), a create (only a
    -- new one) or a delete (only an old one), as 0015 logs them: rows grouped by path, not joined
    -- (the planner estimates a transition table at a few rows and nested-looped one over the
    -- other: quadratic in the statement).
    -- A moved row also names its other side (moved) on both: PostgreSQL appends a row's before-
    -- and after-image to the two transition tables together (trigger.c, AfterTriggerSaveEvent),
    -- so the n-th old row is the n-th new row's before-image even when the UPDATE changed its key.
    -- The rows are zipped by that position (unnest of several arrays pairs them: linear). A row
    -- counts as moved only if it kept its body (the same hash), stayed in its workspace, and both
    -- of its paths are pure: the old one written by no row of the statement, the new one held by
    -- none before (a rename chain, b -> c while a -> b, logs b as the update it is, as history
    -- does, and names no move at all: a reader must never apply a move onto a path that changed).
    -- The two key sets are built only when some row changed its key (sub-selects in the CASE:
    -- evaluated on first use), so an UPDATE of content pays nothing for them.
    INSERT INTO changes_pending (workspace, path, op, version, size, moved)
    SELECT k.workspace, k.path,
           CASE WHEN k.has_new AND k.has_old THEN 'update' WHEN k.has_new THEN 'create' ELSE 'delete' END,
           k.version, k.size, k.other
    FROM (
      SELECT u.workspace, u.path, bool_or(u.is_new) AS has_new, bool_or(NOT u.is_new) AS has_old,
             (array_agg(u.version ORDER BY u.is_new DESC))[1] AS version, -- the new row's, if any
             (array_agg(u.size ORDER BY u.is_new DESC))[1] AS size,
             (array_agg(u.other))[1] AS other
      FROM (SELECT a.w AS ow, a.p AS op, a.v AS ov, a.s AS os, a.h AS oh,
                   b.w AS nw, b.p AS np, b.v AS nv, b.s AS ns, b.h AS nh
            FROM (SELECT array_agg(o.workspace) AS w, array_agg(o.path) AS p, array_agg(o.version) AS v,
                         array_agg(o.size) AS s, array_agg(o.hash) AS h FROM old_rows o) a
            CROSS JOIN (SELECT array_agg(n.workspace) AS w, array_agg(n.path) AS p, array_agg(n.version) AS v,
                               array_agg(n.size) AS s, array_agg(n.hash) AS h FROM new_rows n) b) z
      CROSS JOIN LATERAL unnest(z.ow, z.op, z.ov, z.os, z.oh, z.nw, z.np, z.nv, z.ns, z.nh)
        AS x(old_workspace, old_path, old_version, old_size, old_hash,
             new_workspace, new_path, new_version, new_size, new_hash)
      CROSS JOIN LATERAL (
        SELECT CASE WHEN x.old_workspace = x.new_workspace AND x.old_path <> x.new_path
                         AND x.old_hash = x.new_hash
                         AND NOT (SELECT jsonb_object_agg(n.workspace || E'\n' || n.path, true) FROM new_rows n)
                                 ? (x.old_workspace || E'\n' || x.old_path)
                         AND NOT (SELECT jsonb_object_agg(o.workspace || E'\n' || o.path, true) FROM old_rows o)
                                 ? (x.new_workspace || E'\n' || x.new_path)
                    THEN true ELSE false END AS moved
        OFFSET 0 -- (a fence: pulled up, the CASE was copied into both arms below, each key set built twice)
      ) m
      CROSS JOIN LATERAL (
        SELECT x.old_workspace, x.old_path, x.old_version, x.old_size, false, CASE WHEN m.moved THEN x.new_path END
        UNION ALL
        SELECT x.new_workspace, x.new_path, x.new_version, x.new_size, true, CASE WHEN m.moved THEN x.old_path END
      ) u(workspace, path, version, size, is_new, other)
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

-- changes_flush_now: 0027's, under per-workspace locks, with the directory rows' check, and
-- without NOTIFY when the writer wakes watchers after its commit. The blocks that only some
-- commits need (directories, horizons, the file/directory rule of creates) run only for them.
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

-- (0005's changes_lock() stays: a flush with 0027's body that runs while this migration commits
-- still calls it. Nothing of this version does.)

-- Down Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
COMMENT ON FUNCTION fs_changes_head() IS NULL;

-- (A transaction that flushed under 0028's body before this commits, with SET CONSTRAINTS ALL
-- IMMEDIATE, holds the schema's lock shared; its next flush, with 0027's body, asks for it
-- exclusively, and two such transactions deadlock: PostgreSQL fails one. Better than two bodies
-- drawing ids at once.)
-- The staging triggers go first: their ACCESS EXCLUSIVE lock on directories is this migration's
-- first lock on the table (taken after a weaker one, it could deadlock with a writer that read
-- directories and waits to write it).
DROP TRIGGER directories_zz_stage_inserted ON directories;
DROP TRIGGER directories_zz_stage_updated ON directories;
DROP FUNCTION directories_stage();

-- 0027's directories_check, with its trigger.

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
DROP FUNCTION fs_wake_up(text[]);

-- 0017's head: the schema's newest change, or the workspace's horizon.
CREATE OR REPLACE FUNCTION fs_changes_head(p_workspace text) RETURNS bigint
LANGUAGE sql STABLE SET search_path FROM CURRENT
RETURN greatest(fs_changes_head(), (SELECT h.pruned_to FROM changes_horizon h WHERE h.workspace = p_workspace));

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

DROP FUNCTION changes_lock(text[]);

-- 0026's changes_stage.
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
    -- Each path of the statement is an update (an old and a new row have it), a create (only a
    -- new one) or a delete (only an old one), as 0015 logs them: rows grouped by path, not joined
    -- (the planner estimates a transition table at a few rows and nested-looped one over the
    -- other: quadratic in the statement).
    -- A moved row also names its other side (moved) on both: PostgreSQL appends a row's before-
    -- and after-image to the two transition tables together (trigger.c, AfterTriggerSaveEvent),
    -- so the n-th old row is the n-th new row's before-image even when the UPDATE changed its key.
    -- The rows are zipped by that position (unnest of several arrays pairs them: linear). A row
    -- counts as moved only if it kept its body (the same hash), stayed in its workspace, and both
    -- of its paths are pure: the old one written by no row of the statement, the new one held by
    -- none before (a rename chain, b -> c while a -> b, logs b as the update it is, as history
    -- does, and names no move at all: a reader must never apply a move onto a path that changed).
    -- The two key sets are built only when some row changed its key (sub-selects in the CASE:
    -- evaluated on first use), so an UPDATE of content pays nothing for them.
    INSERT INTO changes_pending (workspace, path, op, version, size, moved)
    SELECT k.workspace, k.path,
           CASE WHEN k.has_new AND k.has_old THEN 'update' WHEN k.has_new THEN 'create' ELSE 'delete' END,
           k.version, k.size, k.other
    FROM (
      SELECT u.workspace, u.path, bool_or(u.is_new) AS has_new, bool_or(NOT u.is_new) AS has_old,
             (array_agg(u.version ORDER BY u.is_new DESC))[1] AS version, -- the new row's, if any
             (array_agg(u.size ORDER BY u.is_new DESC))[1] AS size,
             (array_agg(u.other))[1] AS other
      FROM (SELECT a.w AS ow, a.p AS op, a.v AS ov, a.s AS os, a.h AS oh,
                   b.w AS nw, b.p AS np, b.v AS nv, b.s AS ns, b.h AS nh
            FROM (SELECT array_agg(o.workspace) AS w, array_agg(o.path) AS p, array_agg(o.version) AS v,
                         array_agg(o.size) AS s, array_agg(o.hash) AS h FROM old_rows o) a
            CROSS JOIN (SELECT array_agg(n.workspace) AS w, array_agg(n.path) AS p, array_agg(n.version) AS v,
                               array_agg(n.size) AS s, array_agg(n.hash) AS h FROM new_rows n) b) z
      CROSS JOIN LATERAL unnest(z.ow, z.op, z.ov, z.os, z.oh, z.nw, z.np, z.nv, z.ns, z.nh)
        AS x(old_workspace, old_path, old_version, old_size, old_hash,
             new_workspace, new_path, new_version, new_size, new_hash)
      CROSS JOIN LATERAL (
        SELECT CASE WHEN x.old_workspace = x.new_workspace AND x.old_path <> x.new_path
                         AND x.old_hash = x.new_hash
                         AND NOT (SELECT jsonb_object_agg(n.workspace || E'\n' || n.path, true) FROM new_rows n)
                                 ? (x.old_workspace || E'\n' || x.old_path)
                         AND NOT (SELECT jsonb_object_agg(o.workspace || E'\n' || o.path, true) FROM old_rows o)
                                 ? (x.new_workspace || E'\n' || x.new_path)
                    THEN true ELSE false END AS moved
        OFFSET 0 -- (a fence: pulled up, the CASE was copied into both arms below, each key set built twice)
      ) m
      CROSS JOIN LATERAL (
        SELECT x.old_workspace, x.old_path, x.old_version, x.old_size, false, CASE WHEN m.moved THEN x.new_path END
        UNION ALL
        SELECT x.new_workspace, x.new_path, x.new_version, x.new_size, true, CASE WHEN m.moved THEN x.old_path END
      ) u(workspace, path, version, size, is_new, other)
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
