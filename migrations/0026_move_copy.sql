-- Up Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
--
-- Version 26: move and copy (issue 15, item 1).
--
-- What:
--   - fs_move(workspace, from, to, overwrite, copy): a file or a whole directory moved or copied
--     in one transaction (the function's header says what it refuses and why).
--   - History keeps the same: file_versions.moved, stamped at commit with the change id from the
--     log row (fs_history returns it: dropped and created again).
--   - The change log tells a move from a delete and a create: changes.moved (and
--     changes_pending.moved) is, on the 'delete' of a moved file, the path it went to, and on the
--     'create', the path it came from (NULL on every other change, and across workspaces).
--     changes_stage pairs an UPDATE's old and new rows by their places in the transition tables
--     (its ops are still 0015's, by path), so a raw SQL UPDATE of path is logged the same way. fs_changes returns the column (dropped
--     and created again: its result type changes).
--   - files_chunks_set (chunks_assign) fires on UPDATE only when a column of the body is set
--     (content, bytes, chunk_set, hash): a move's UPDATE of the path no longer compares every
--     moved text with itself, which detoasted each twice. chunks_update reads the text of only the
--     sets it cuts, by the row's key, instead of aggregating every new row's (which detoasted them
--     all, a move's too).
--   - fs_changes keeps PostgreSQL's default EXECUTE for PUBLIC when it is created again (a grant
--     an operator changed on it by hand is not carried over).
--
-- Measured (PostgreSQL 15, 2 cores; BENCHMARKS.md "Move and copy", npm run bench:relocate): a
-- directory of 10,000 files (95 MiB) moved in 0.77 s with history off, 1.85 s with it on
-- (history keeps each old path's body whole); copied in 0.49-0.62 s. With history off a move
-- detoasts nothing: no text is read, cut or indexed again.

ALTER TABLE changes ADD COLUMN moved text COLLATE "C";
ALTER TABLE changes_pending ADD COLUMN moved text COLLATE "C";
-- The same on a version row: its deletion (moved to) or its first version at the new path
-- (moved from), written with the version's change id when the log is written at commit.
ALTER TABLE file_versions ADD COLUMN moved text COLLATE "C";

DROP TRIGGER files_chunks_set ON files;
CREATE TRIGGER files_chunks_set BEFORE INSERT OR UPDATE OF content, bytes, chunk_set, hash ON files
FOR EACH ROW EXECUTE FUNCTION chunks_assign();

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

CREATE OR REPLACE FUNCTION chunks_update()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
  v_sets bigint[];
  v_workspaces text[];
  v_paths text[] COLLATE "C"; -- (as files.path: compared with it below)
  v_texts text[];
  v_cut_sets bigint[];
  v_cut_first_lines integer[];
  v_cut_line_counts integer[];
  v_cut_contents text[];
  v_gone bigint[];
BEGIN
  -- Sets of new rows whose text is not the text the set had: new sets, and sets re-cut in place.
  -- (Rows pair up by the set: raw SQL may even change a row's key.) By hash: a row of a set
  -- without its text inline (content NULL) is never cut. Old and new
  -- rows meet by grouping on the set, not by a join: the planner estimates a transition table at
  -- a few rows and nested-looped one over the other (an upload of 500 files over themselves:
  -- 24 ms here, quadratic in the statement).
  -- (With each set, the text to cut it from, taken here: a later filter `= ANY (v_sets)` over
  -- new_rows compared every row with every set under a generic plan, quadratic; 0018.)
  -- (0026: with each set, the key of the row to cut it from, and its text read by that key below,
  -- only for the sets to cut. Aggregating the text itself detoasted every row of the statement,
  -- a move's too, whose sets are never cut: 100 MB decompressed to rename a directory of it.)
  SELECT array_agg(g.chunk_set), array_agg(g.workspace), array_agg(g.path) INTO v_sets, v_workspaces, v_paths
  FROM (
    SELECT u.chunk_set, (array_agg(u.workspace) FILTER (WHERE u.is_new))[1] AS workspace,
           (array_agg(u.path) FILTER (WHERE u.is_new))[1] AS path
    FROM (SELECT n.chunk_set, n.hash, n.workspace, n.path, true AS is_new FROM new_rows n
          WHERE n.chunk_set IS NOT NULL AND n.content IS NOT NULL
          UNION ALL
          SELECT o.chunk_set, o.hash, NULL, NULL, false FROM old_rows o WHERE o.chunk_set IS NOT NULL) u
    GROUP BY u.chunk_set
    HAVING bool_or(u.is_new)
       AND NOT (array_agg(u.hash) FILTER (WHERE u.is_new)
                <@ coalesce(array_agg(u.hash) FILTER (WHERE NOT u.is_new), '{}'))
  ) g;
  IF v_sets IS NOT NULL THEN
    -- The text as this statement left the row (a key probe each; the row is the new row).
    SELECT array_agg((SELECT f.content FROM files f WHERE f.workspace = k.workspace AND f.path = k.path)
                     ORDER BY k.i)
      INTO v_texts
    FROM unnest(v_workspaces, v_paths) WITH ORDINALITY AS k(workspace, path, i);
    SELECT array_agg(s.chunk_set), array_agg(c.first_line), array_agg(c.line_count), array_agg(c.content)
      INTO v_cut_sets, v_cut_first_lines, v_cut_line_counts, v_cut_contents
    FROM unnest(v_sets, v_texts) AS s(chunk_set, content)
    CROSS JOIN LATERAL text_chunks(s.content) c;
    -- Old chunks minus the new cut, as a set difference (hashed or sorted, linear): see 0003.
    DELETE FROM chunks c
    USING (
      SELECT o.chunk_set, o.first_line, o.content
      FROM chunks o JOIN unnest(v_sets) AS k(chunk_set) ON o.chunk_set = k.chunk_set
      EXCEPT
      SELECT f.chunk_set, f.first_line, f.content
      FROM unnest(v_cut_sets, v_cut_first_lines, v_cut_contents) AS f(chunk_set, first_line, content)
    ) gone
    WHERE c.chunk_set = gone.chunk_set AND c.first_line = gone.first_line;
    INSERT INTO chunks (chunk_set, first_line, line_count, content)
    SELECT f.chunk_set, f.first_line, f.line_count, f.content
    FROM unnest(v_cut_sets, v_cut_first_lines, v_cut_line_counts, v_cut_contents)
         AS f(chunk_set, first_line, line_count, content)
    WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.chunk_set = f.chunk_set AND c.first_line = f.first_line);
  END IF;
  -- Sets left unused, if any (most writes re-cut their set in place and leave none: no call).
  SELECT array_agg(g.chunk_set) INTO v_gone
  FROM (SELECT o.chunk_set FROM old_rows o EXCEPT SELECT n.chunk_set FROM new_rows n) g;
  IF v_gone IS NOT NULL THEN
    PERFORM chunks_collect(v_gone);
  END IF;
  RETURN NULL;
END
$function$;

DROP FUNCTION fs_history(text, text);
CREATE FUNCTION fs_history(p_workspace text, p_path text)
 RETURNS TABLE(version bigint, op text, change_id bigint, size bigint, mime_type text, at timestamp with time zone, tag text, moved text)
 LANGUAGE sql
 STABLE
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
  SELECT s.version, s.op, s.change_id, s.size, s.mime_type, s.at, s.tag, s.moved FROM (
    SELECT v.version, v.deleted, v.op, v.change_id, v.size, v.mime_type, v.at, v.tag, v.moved::text
    FROM file_versions v
    WHERE v.workspace = p_workspace AND v.path = p_path
    UNION ALL
    -- The current version when no row records it yet (see version_meta): there since before the
    -- log (change id 0), as a version written before history was kept is recorded.
    SELECT f.version, false, CASE WHEN f.version = 1 THEN 'create' ELSE 'update' END, 0, f.size, f.mime_type,
           f.modified_at, NULL, NULL
    FROM files f
    WHERE f.workspace = p_workspace AND f.path = p_path AND history_enabled(p_workspace)
      AND NOT EXISTS (SELECT 1 FROM file_versions v WHERE v.workspace = p_workspace AND v.path = p_path
                                                       AND v.version = f.version AND NOT v.deleted)
  ) s
  ORDER BY s.version, s.deleted
$function$;

DROP FUNCTION fs_changes(text, bigint, integer);
CREATE FUNCTION fs_changes(p_workspace text, p_after bigint, p_limit integer)
 RETURNS TABLE(id bigint, path text, op text, version bigint, size bigint, at timestamp with time zone, moved text)
 LANGUAGE plpgsql
 STABLE
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v_pruned bigint;
BEGIN
  SELECT h.pruned_to INTO v_pruned FROM changes_horizon h WHERE h.workspace = p_workspace;
  IF v_pruned IS NOT NULL AND p_after < v_pruned THEN
    RAISE EXCEPTION 'change cursor % is older than the retained log (changes up to % were pruned)', p_after, v_pruned
      USING ERRCODE = 'DA001';
  END IF;
  RETURN QUERY
    SELECT c.id, c.path, c.op, c.version, c.size, c.at, c.moved FROM changes c
    WHERE c.workspace = p_workspace AND c.id > p_after
    ORDER BY c.id LIMIT p_limit;
END
$function$;

-- fs_move: the file or directory p_from of p_workspace moved (p_copy false) or copied (true) to
-- p_to, in one transaction. Statuses: 'moved' / 'copied' with the number of files; 'not_found'
-- (nothing at p_from); 'into_itself' (p_to is p_from, inside it, or one of its directories, or
-- either is the root); 'target_exists' (a file at a path the move would write, and p_overwrite
-- false; conflict: the first, in path order); 'parent_is_file' (a directory of a path the move
-- would write is a file; conflict: it); 'is_directory' (a file would be written where a
-- directory is; conflict: that path); 'too_long' (a new path over p_max_bytes bytes, the
-- client's path limit; conflict: the first). With p_overwrite, files at the paths written are replaced
-- (deleted first, in the same transaction: history and the change log keep them); the other
-- files of a target directory stay (a merge). SECURITY INVOKER: row-level security applies.
--
-- A move is one UPDATE of the paths: the rows keep their text, chunk set and hash (chunks are
-- never re-cut: files_chunks_set fires only when the body's columns are set, since 0026), each
-- moved file's version goes on from its new path's tombstone (files_renamed_version: a version
-- is never reused), and changes_stage logs each as a 'delete' naming its new path and a 'create'
-- naming its old one. A copy inserts rows naming the sources' chunk sets (shared copy on write,
-- as a fork's: chunks_claim finds the source as the witness) and their bytes.
CREATE FUNCTION fs_move(p_workspace text, p_from text, p_to text, p_overwrite boolean, p_copy boolean,
                        p_max_bytes integer)
RETURNS TABLE (status text, files bigint, conflict text)
LANGUAGE plpgsql STRICT SET search_path FROM CURRENT SET enable_seqscan = off SET jit = off AS $$
DECLARE
  v_files bigint;
  v_single boolean;
  v_conflict text;
  -- The new path of each source, in the sources' path order.
  v_targets text[] COLLATE "C";
  v_constraint text;
  -- A moved path is p_to followed by what follows p_from in it (characters, as substr counts).
  v_rest integer := length(p_from) + 1;
BEGIN
  IF p_from = '/' OR p_to = '/' OR p_from = p_to
     OR starts_with(p_to, p_from || '/') OR starts_with(p_from, p_to || '/') THEN
    RETURN QUERY SELECT 'into_itself'::text, 0::bigint, p_to;
    RETURN;
  END IF;
  -- A file committed at a new path while this move waited for its writer fails the write with a
  -- unique violation; the move then looks again (each statement sees what committed before it),
  -- three times at most (then SQLSTATE 40001, "try again").
  FOR v_attempt IN 1..3 LOOP
    -- Every row either side holds, locked in one statement in path order (every writer's order).
    -- A new path has no row to lock: a writer holding one there while it waits for a source row
    -- is a deadlock, which PostgreSQL breaks by failing one of the two (the client retries it).
    PERFORM 1 FROM files f
     WHERE f.workspace = p_workspace
       AND (f.path = p_from OR (f.path >= p_from || '/' AND f.path < p_from || '0')
            OR f.path = p_to OR (f.path >= p_to || '/' AND f.path < p_to || '0'))
     ORDER BY f.path FOR UPDATE;
    SELECT count(*), coalesce(bool_or(f.path = p_from), false),
           array_agg((p_to || substr(f.path, v_rest)) COLLATE "C" ORDER BY f.path)
      INTO v_files, v_single, v_targets
    FROM files f
    WHERE f.workspace = p_workspace AND (f.path = p_from OR (f.path >= p_from || '/' AND f.path < p_from || '0'));
    IF v_files = 0 THEN
      RETURN QUERY SELECT 'not_found'::text, 0::bigint, NULL::text;
      RETURN;
    END IF;

    -- A new path longer than the client allows.
    SELECT t.path INTO v_conflict FROM unnest(v_targets) AS t(path)
    WHERE octet_length(t.path) > p_max_bytes ORDER BY t.path LIMIT 1;
    IF v_conflict IS NOT NULL THEN
      RETURN QUERY SELECT 'too_long'::text, 0::bigint, v_conflict;
      RETURN;
    END IF;
    -- A directory above p_to that is a file (the first from the root).
    SELECT a.dir INTO v_conflict FROM unnest(path_ancestors(p_to)) WITH ORDINALITY AS a(dir, i)
    WHERE (SELECT true FROM files f WHERE f.workspace = p_workspace AND f.path = a.dir COLLATE "C" LIMIT 1)
    ORDER BY a.i LIMIT 1;
    IF v_conflict IS NULL AND NOT v_single THEN
      -- A directory moved onto a file, or a file of the target directory where a moved path needs
      -- a directory (the source's counterpart of it has files under it). Each file of the target
      -- tree probes the source's range by key (a scalar sub-select: never turned into a join).
      SELECT e.path INTO v_conflict FROM files e
      WHERE e.workspace = p_workspace AND (e.path = p_to OR (e.path >= p_to || '/' AND e.path < p_to || '0'))
        AND (SELECT true FROM files s
             WHERE s.workspace = p_workspace
               AND s.path >= (p_from || substr(e.path, length(p_to) + 1) || '/') COLLATE "C"
               AND s.path < (p_from || substr(e.path, length(p_to) + 1) || '0') COLLATE "C"
             LIMIT 1)
      ORDER BY e.path LIMIT 1;
    END IF;
    IF v_conflict IS NOT NULL THEN
      RETURN QUERY SELECT 'parent_is_file'::text, 0::bigint, v_conflict;
      RETURN;
    END IF;
    -- A moved file whose new path is a directory: one range probe per new path.
    SELECT t.path INTO v_conflict FROM unnest(v_targets) AS t(path)
    WHERE (SELECT true FROM files e
           WHERE e.workspace = p_workspace AND e.path >= t.path || '/' AND e.path < t.path || '0' LIMIT 1)
    ORDER BY t.path LIMIT 1;
    IF v_conflict IS NOT NULL THEN
      RETURN QUERY SELECT 'is_directory'::text, 0::bigint, v_conflict;
      RETURN;
    END IF;
    -- Files at the new paths (found by key, = ANY of the array: a join of the two sides was
    -- planned as a loop over both, 10,000 x 10,000 comparisons): refused, or replaced.
    SELECT e.path INTO v_conflict FROM files e
    WHERE e.workspace = p_workspace AND e.path = ANY (v_targets) ORDER BY e.path LIMIT 1;
    IF v_conflict IS NOT NULL AND NOT p_overwrite THEN
      RETURN QUERY SELECT 'target_exists'::text, 0::bigint, v_conflict;
      RETURN;
    END IF;

    BEGIN
      IF v_conflict IS NOT NULL THEN
        DELETE FROM files e WHERE e.workspace = p_workspace AND e.path = ANY (v_targets);
      END IF;
      IF p_copy THEN
        INSERT INTO files (workspace, path, content, bytes, mime_type, size, line_count, chunk_set, hash)
        SELECT p_workspace, p_to || substr(s.path, v_rest), NULL, s.bytes, s.mime_type, s.size, s.line_count,
               s.chunk_set, s.hash
        FROM files s
        WHERE s.workspace = p_workspace AND (s.path = p_from OR (s.path >= p_from || '/' AND s.path < p_from || '0'))
        ORDER BY s.path;
      ELSE
        UPDATE files f SET path = p_to || substr(f.path, v_rest)
        WHERE f.workspace = p_workspace AND (f.path = p_from OR (f.path >= p_from || '/' AND f.path < p_from || '0'));
      END IF;
      GET DIAGNOSTICS v_files = ROW_COUNT;
      RETURN QUERY SELECT CASE WHEN p_copy THEN 'copied' ELSE 'moved' END, v_files, NULL::text;
      RETURN;
    EXCEPTION WHEN unique_violation THEN
      -- Undone (a subtransaction). A file at a new path: look again; any other key is not ours.
      GET STACKED DIAGNOSTICS v_constraint = CONSTRAINT_NAME;
      IF v_constraint IS DISTINCT FROM 'files_pkey' THEN
        RAISE;
      END IF;
    END;
  END LOOP;
  -- Files kept appearing at the new paths while the move waited for their writers.
  RAISE EXCEPTION 'files kept being written at the new paths of the move of "%" to "%"; try again', p_from, p_to
    USING ERRCODE = 'serialization_failure';
END
$$;

-- Down Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
DROP FUNCTION fs_move(text, text, text, boolean, boolean, integer);
DROP FUNCTION fs_history(text, text);
-- 0017's
CREATE FUNCTION fs_history(p_workspace text, p_path text)
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
DROP FUNCTION fs_changes(text, bigint, integer);
-- 0002's (with the settings 0005 and later gave it)
CREATE FUNCTION fs_changes(p_workspace text, p_after bigint, p_limit integer)
 RETURNS TABLE(id bigint, path text, op text, version bigint, size bigint, at timestamp with time zone)
 LANGUAGE plpgsql
 STABLE
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v_pruned bigint;
BEGIN
  SELECT h.pruned_to INTO v_pruned FROM changes_horizon h WHERE h.workspace = p_workspace;
  IF v_pruned IS NOT NULL AND p_after < v_pruned THEN
    RAISE EXCEPTION 'change cursor % is older than the retained log (changes up to % were pruned)', p_after, v_pruned
      USING ERRCODE = 'DA001';
  END IF;
  RETURN QUERY
    SELECT c.id, c.path, c.op, c.version, c.size, c.at FROM changes c
    WHERE c.workspace = p_workspace AND c.id > p_after
    ORDER BY c.id LIMIT p_limit;
END
$function$;

-- 0018's
CREATE OR REPLACE FUNCTION chunks_update()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
  v_sets bigint[];
  v_texts text[];
  v_cut_sets bigint[];
  v_cut_first_lines integer[];
  v_cut_line_counts integer[];
  v_cut_contents text[];
  v_gone bigint[];
BEGIN
  -- Sets of new rows whose text is not the text the set had: new sets, and sets re-cut in place.
  -- (Rows pair up by the set: raw SQL may even change a row's key.) By hash: a row of a set
  -- without its text inline (content NULL) is never cut. Old and new
  -- rows meet by grouping on the set, not by a join: the planner estimates a transition table at
  -- a few rows and nested-looped one over the other (an upload of 500 files over themselves:
  -- 24 ms here, quadratic in the statement).
  -- (With each set, the text to cut it from, taken here: a later filter `= ANY (v_sets)` over
  -- new_rows compared every row with every set under a generic plan, quadratic; 0018.)
  SELECT array_agg(g.chunk_set), array_agg(g.content) INTO v_sets, v_texts
  FROM (
    SELECT u.chunk_set, (array_agg(u.content) FILTER (WHERE u.is_new))[1] AS content
    FROM (SELECT n.chunk_set, n.hash, n.content, true AS is_new FROM new_rows n
          WHERE n.chunk_set IS NOT NULL AND n.content IS NOT NULL
          UNION ALL
          SELECT o.chunk_set, o.hash, NULL, false FROM old_rows o WHERE o.chunk_set IS NOT NULL) u
    GROUP BY u.chunk_set
    HAVING bool_or(u.is_new)
       AND NOT (array_agg(u.hash) FILTER (WHERE u.is_new)
                <@ coalesce(array_agg(u.hash) FILTER (WHERE NOT u.is_new), '{}'))
  ) g;
  IF v_sets IS NOT NULL THEN
    SELECT array_agg(s.chunk_set), array_agg(c.first_line), array_agg(c.line_count), array_agg(c.content)
      INTO v_cut_sets, v_cut_first_lines, v_cut_line_counts, v_cut_contents
    FROM unnest(v_sets, v_texts) AS s(chunk_set, content)
    CROSS JOIN LATERAL text_chunks(s.content) c;
    -- Old chunks minus the new cut, as a set difference (hashed or sorted, linear): see 0003.
    DELETE FROM chunks c
    USING (
      SELECT o.chunk_set, o.first_line, o.content
      FROM chunks o JOIN unnest(v_sets) AS k(chunk_set) ON o.chunk_set = k.chunk_set
      EXCEPT
      SELECT f.chunk_set, f.first_line, f.content
      FROM unnest(v_cut_sets, v_cut_first_lines, v_cut_contents) AS f(chunk_set, first_line, content)
    ) gone
    WHERE c.chunk_set = gone.chunk_set AND c.first_line = gone.first_line;
    INSERT INTO chunks (chunk_set, first_line, line_count, content)
    SELECT f.chunk_set, f.first_line, f.line_count, f.content
    FROM unnest(v_cut_sets, v_cut_first_lines, v_cut_line_counts, v_cut_contents)
         AS f(chunk_set, first_line, line_count, content)
    WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.chunk_set = f.chunk_set AND c.first_line = f.first_line);
  END IF;
  -- Sets left unused, if any (most writes re-cut their set in place and leave none: no call).
  SELECT array_agg(g.chunk_set) INTO v_gone
  FROM (SELECT o.chunk_set FROM old_rows o EXCEPT SELECT n.chunk_set FROM new_rows n) g;
  IF v_gone IS NOT NULL THEN
    PERFORM chunks_collect(v_gone);
  END IF;
  RETURN NULL;
END
$function$;

-- 0017's
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

DROP TRIGGER files_chunks_set ON files;
CREATE TRIGGER files_chunks_set BEFORE INSERT OR UPDATE ON files FOR EACH ROW EXECUTE FUNCTION chunks_assign();

ALTER TABLE file_versions DROP COLUMN moved;
ALTER TABLE changes_pending DROP COLUMN moved;
ALTER TABLE changes DROP COLUMN moved;
