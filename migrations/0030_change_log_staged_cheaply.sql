-- Up Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
--
-- Version 30: the change log's work per commit, cheaper (issue 16, item 5).
--
-- With 0028's locks per workspace, what the change log still costs a write is its own work on the
-- committing connection: staging the statement's changes (changes_stage), arming the commit-time
-- flush, and the flush (changes_flush_now). Three parts of it were overhead, not work:
-- 1. changes_stage re-planned every statement of every call (plan_cache_mode force_custom_plan),
--    the one-row fast paths included, since its general statements over transition tables need a
--    plan made for the rows they have (0015, 0016). Now only those general statements are planned
--    per call (EXECUTE, which never keeps a plan); the fast paths keep theirs, and a one-row create
--    has one too.
-- 2. Arming the flush took a row of changes_flush per statement (an INSERT ... ON CONFLICT, a
--    DELETE at commit, a deferred trigger on that table). Now the first staged row of a
--    transaction arms it: a column of changes_pending (arms), true on the first row of the first
--    statement that stages anything (no row of the transaction staged yet), fires the flush at
--    commit through a deferred constraint trigger with WHEN (NEW.arms). One event per
--    transaction, as before. Forks (fork_log_start) and directory rows (directories_stage) still
--    arm through changes_flush; the flush returns at once when a second arming finds nothing left.
-- 3. The flush of a commit that staged one workspace (most) takes changes_lock(text[])'s two locks
--    itself, without the call of a function with its own settings.
-- Measured per write (fs_write of a small existing file, one connection, synchronous_commit off,
-- backend CPU): BENCHMARKS.md, "Item 5".
-- The migration locks changes_pending (ADD COLUMN, CREATE TRIGGER) before anything else: it waits
-- for the transactions that staged changes to commit, and writers that stage meanwhile wait for
-- it. (A multi-statement writer waiting on a row another waiting writer holds can make PostgreSQL
-- fail one of them, or the migration, with a deadlock: run it again.)
-- Released: never edit this file; add a new migration instead.

ALTER TABLE changes_pending ADD COLUMN arms boolean NOT NULL DEFAULT false;
CREATE CONSTRAINT TRIGGER changes_pending_flush_at_commit AFTER INSERT ON changes_pending
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.arms) EXECUTE FUNCTION changes_flush_now();

-- changes_stage: 0028's, with its general statements planned per call through EXECUTE and its
-- first row arming the flush.
CREATE OR REPLACE FUNCTION changes_stage()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET jit TO 'off'
AS $function$
DECLARE
  v_arms boolean;
BEGIN
  IF TG_OP = 'INSERT' THEN
    -- An INSERT ... ON CONFLICT DO UPDATE that updated (every write of an existing file) fires
    -- this with no row.
    PERFORM FROM new_rows LIMIT 1;
    IF NOT FOUND THEN
      RETURN NULL;
    END IF;
  END IF;
  -- The first statement of the transaction to stage a change arms the flush with its first row;
  -- the later ones find rows staged and arm nothing (one flush per transaction).
  v_arms := NOT EXISTS (SELECT FROM changes_pending p WHERE p.xact = pg_current_xact_id());
  IF TG_OP = 'INSERT' THEN
    -- (Not a fork's own rows: its target's log starts after them, at fork_log_start's horizon.)
    IF (SELECT count(*) FROM (SELECT FROM new_rows LIMIT 2) n) = 1 THEN
      INSERT INTO changes_pending (workspace, path, op, version, size, arms)
      SELECT n.workspace, n.path, 'create', n.version, n.size, v_arms FROM new_rows n
      WHERE n.workspace NOT IN (SELECT m.workspace FROM fork_marks m WHERE m.xact = pg_current_xact_id());
      RETURN NULL;
    END IF;
    EXECUTE $general$
      INSERT INTO changes_pending (workspace, path, op, version, size, arms)
      SELECT n.workspace, n.path, 'create', n.version, n.size, $1 AND row_number() OVER () = 1
      FROM (SELECT n.* FROM new_rows n
            WHERE n.workspace NOT IN (SELECT m.workspace FROM fork_marks m WHERE m.xact = pg_current_xact_id())
            ORDER BY n.workspace, n.path) n
      ORDER BY n.workspace, n.path$general$ USING v_arms;
  ELSIF TG_OP = 'DELETE' THEN
    EXECUTE $general$
      INSERT INTO changes_pending (workspace, path, op, version, size, arms)
      SELECT o.workspace, o.path, 'delete', o.version, o.size, $1 AND row_number() OVER () = 1
      FROM (SELECT o.* FROM old_rows o ORDER BY o.workspace, o.path) o
      ORDER BY o.workspace, o.path$general$ USING v_arms;
  ELSE
    -- One row updated in place (a write or an edit of an existing file: the common case): one
    -- 'update', as the statement below would log it.
    INSERT INTO changes_pending (workspace, path, op, version, size, arms)
    SELECT n.workspace, n.path, 'update', n.version, n.size, v_arms
    FROM new_rows n JOIN old_rows o ON o.workspace = n.workspace AND o.path = n.path
    WHERE (SELECT count(*) FROM (SELECT FROM new_rows LIMIT 2) c) = 1;
    IF FOUND THEN
      RETURN NULL;
    END IF;
    -- Each path of the statement is an update (an old and a new row have it), a create (only a
    -- new one) or a delete (only an old one): 0026's statement, unchanged but for the arming row.
    EXECUTE $general$
      INSERT INTO changes_pending (workspace, path, op, version, size, moved, arms)
      SELECT k.workspace, k.path,
             CASE WHEN k.has_new AND k.has_old THEN 'update' WHEN k.has_new THEN 'create' ELSE 'delete' END,
             k.version, k.size, k.other,
             $1 AND row_number() OVER (ORDER BY k.has_new, k.workspace, k.path) = 1
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
      ORDER BY k.has_new, k.workspace, k.path$general$ USING v_arms;
  END IF;
  RETURN NULL;
END
$function$;

-- changes_flush_now: 0028's, fired by either arming, returning when nothing is left to flush, and
-- with the one-workspace locks taken inline.
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
  IF TG_TABLE_NAME = 'changes_flush' THEN
    DELETE FROM changes_flush f WHERE f.xact = NEW.xact;
  END IF;
  -- What was staged: the workspaces, and which kinds of rows, so that a commit runs only the
  -- statements it needs (most change files and create none: no directory, horizon or tree check).
  SELECT array_agg(DISTINCT p.workspace) AS workspaces, bool_or(p.op = 'directory') AS directories,
         bool_or(p.op = 'horizon') AS horizons, bool_or(p.op = 'create') AS creates
    INTO v_staged
  FROM changes_pending p WHERE p.xact = NEW.xact;
  IF v_staged.workspaces IS NULL THEN
    RETURN NULL; -- armed twice (a fork or a directory row arms through changes_flush): done
  END IF;
  -- The commit-order locks of every workspace staged (changes, forks' horizons, directories),
  -- before any id is drawn. One workspace (most commits): changes_lock(text[])'s two locks, taken
  -- here (the same keys), without the call.
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
-- (A write whose staging already runs this version's changes_stage when the down commits, waiting
-- for its lock on changes_pending, fails on the dropped column: its transaction rolls back whole,
-- nothing half-logged; the writer runs it again.)
-- The trigger first: its ACCESS EXCLUSIVE lock on changes_pending waits for every transaction
-- that staged changes (and their flushes, which read the table) to end.
DROP TRIGGER changes_pending_flush_at_commit ON changes_pending;

-- 0028's changes_stage and changes_flush_now, restored.
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


ALTER TABLE changes_pending DROP COLUMN arms;
