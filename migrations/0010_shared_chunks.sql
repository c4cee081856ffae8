-- Up Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
--
-- Version 10: chunks belong to a chunk set that files share, and workspaces can be forked.
--
-- Why (BENCHMARKS.md, "Fork"): a fork that copied a 10,000-file / 100 MB workspace row by row
-- re-indexed every chunk; copying the chunks of such a code tree alone took 100 s on this
-- machine (the trigram index takes ~2,000 entries per 3 kB chunk), and the copy doubled the
-- storage. A fork now copies the file rows and points them at the same chunks.
--
-- 1. chunks are keyed by (chunk_set, first_line) instead of (workspace, path, first_line).
--    files.chunk_set names the set holding a text file's chunks (NULL for a binary file).
--    A set belongs to one file until a fork copies the row; a set shared by several rows is never
--    changed: the first content change of a shared row gives it a new set (copy on write, in
--    chunks_assign), while an unshared row keeps its set and is re-cut in place, keeping its
--    unchanged chunks as 0003 did. A set no row uses any more is deleted in the same statement.
-- 2. Who may name a set: the BEFORE INSERT trigger chunks_claim runs as the writer (not SECURITY
--    DEFINER), so an INSERT that names a chunk_set is refused unless the writer can read a file
--    with that set and the same text: a set's text is never shown to a role that could not read
--    it, and every file of a set has the set's text (what chunks_update relies on). The claim
--    locks that file (FOR SHARE) until the writer commits, as fs_fork does. UPDATEs cannot
--    repoint a row (chunks_assign decides the set of every written row).
-- 3. Concurrency: fs_fork locks the source rows (FOR SHARE, in path order, as writers lock)
--    before it copies them, in a second statement. A writer of a source row waits for the fork to
--    commit, so when chunks_assign looks for other rows of the set it sees the fork's copies, and
--    the garbage collection of sets (AFTER triggers, a fresh snapshot) never drops a set a
--    committed row uses. Those two decisions need a fresh snapshot: in a REPEATABLE READ or
--    SERIALIZABLE transaction (whose snapshot may predate a fork) a changed text always gets a
--    new set and nothing is collected there. Sets left unused that way, or by two transactions
--    deleting the last two files of a set at once (each still sees the other's), are swept by
--    prune_chunks() (PostgresBackend.pruneHistory calls it).
-- 4. fs_fork(source, target, at): the files of the source (now, or as at a checkpoint of it) in
--    a workspace that has none, in one transaction; files rebuilt from history get new sets.
--    Runs as the caller: row-level security decides what it may read and write, and a role
--    without a grant on either workspace is refused by name.
-- 5. chunks' row-level security: a chunk is visible to a role that can see a file of its set.
--
-- The chunks table is rebuilt (the new key and a bulk-built trigram index) rather than updated
-- in place: an UPDATE of every chunk would re-insert every trigram index entry, row by row.
-- Released: never edit this file; add a new migration instead.

CREATE SEQUENCE chunk_sets AS bigint;

ALTER TABLE files ADD COLUMN chunk_set bigint;
ALTER TABLE files DISABLE TRIGGER USER; -- numbering sets changes no file: no version, change or history
UPDATE files SET chunk_set = nextval('chunk_sets') WHERE content IS NOT NULL;
ALTER TABLE files ENABLE TRIGGER USER;
ALTER TABLE files ADD CONSTRAINT files_chunk_set CHECK ((content IS NULL) = (chunk_set IS NULL));
CREATE INDEX files_chunk_set_idx ON files (chunk_set);

CREATE TABLE chunk_rows (
  chunk_set  bigint NOT NULL,
  first_line integer NOT NULL,   -- 1-based line number of the first line (as 0003)
  line_count integer NOT NULL,
  content    text NOT NULL,      -- lines joined by \n, no \n at either end (as 0003)
  PRIMARY KEY (chunk_set, first_line)
) WITH (toast_tuple_target = 8160);
INSERT INTO chunk_rows (chunk_set, first_line, line_count, content)
SELECT f.chunk_set, c.first_line, c.line_count, c.content
FROM chunks c JOIN files f ON f.workspace = c.workspace AND f.path = c.path
WHERE f.chunk_set IS NOT NULL;
DO $$
DECLARE
  v_schema text := current_schema();
  v_forced boolean := (SELECT c.relforcerowsecurity FROM pg_catalog.pg_class c WHERE c.oid = 'chunks'::regclass);
  v_owner name := (SELECT pg_catalog.pg_get_userbyid(c.relowner) FROM pg_catalog.pg_class c WHERE c.oid = 'chunks'::regclass);
  v_acl aclitem[] := (SELECT c.relacl FROM pg_catalog.pg_class c WHERE c.oid = 'chunks'::regclass);
  v_grant record;
BEGIN
  DROP TABLE chunks;
  ALTER TABLE chunk_rows RENAME TO chunks;
  ALTER INDEX chunk_rows_pkey RENAME TO chunks_pkey;
  EXECUTE format('CREATE INDEX chunks_content_trgm_idx ON chunks USING gin (content %I.gin_trgm_ops)',
                 (SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'));
  ALTER TABLE chunks ENABLE ROW LEVEL SECURITY;
  IF v_forced THEN
    ALTER TABLE chunks FORCE ROW LEVEL SECURITY;
  END IF;
  -- The old table's owner and privileges (grant_workspace's SELECT, and any granted by hand).
  EXECUTE format('ALTER TABLE chunks OWNER TO %I', v_owner);
  FOR v_grant IN SELECT a.grantee, a.privilege_type, a.is_grantable FROM aclexplode(v_acl) a WHERE a.grantee <> 0 LOOP
    EXECUTE format('GRANT %s ON %I.chunks TO %I%s', v_grant.privilege_type, v_schema,
                   pg_catalog.pg_get_userbyid(v_grant.grantee), CASE WHEN v_grant.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
  END LOOP;
  FOR v_grant IN SELECT a.privilege_type FROM aclexplode(v_acl) a WHERE a.grantee = 0 LOOP
    EXECUTE format('GRANT %s ON %I.chunks TO PUBLIC', v_grant.privilege_type, v_schema);
  END LOOP;
END
$$;
ANALYZE files, chunks; -- searches right after the upgrade plan with statistics of the new key

-- A chunk is visible to whoever can see a file of its set (files' own policy applies inside).
CREATE POLICY chunks_readable ON chunks FOR SELECT
  USING (EXISTS (SELECT 1 FROM files f WHERE f.chunk_set = chunks.chunk_set));

-- Triggers ---------------------------------------------------------------------------------------

-- BEFORE INSERT, as the writer: naming an existing set needs a file of that set with the same
-- text that the writer can read, locked (FOR SHARE) until the writer commits, so that no writer
-- of that file re-cuts the set in place meanwhile (chunks_assign waits, then sees this row).
CREATE FUNCTION chunks_claim() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
  IF NEW.chunk_set IS NOT NULL THEN
    PERFORM 1 FROM files f
    WHERE f.chunk_set = NEW.chunk_set AND f.size = octet_length(NEW.content) AND f.content = NEW.content
    LIMIT 1 FOR SHARE;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'chunk set % is not the text of a file this role can read', NEW.chunk_set
        USING ERRCODE = 'insufficient_privilege';
    END IF;
  END IF;
  RETURN NEW;
END
$$;

-- BEFORE INSERT OR UPDATE: the set a written row's text lives in.
CREATE FUNCTION chunks_assign() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  IF NEW.content IS NULL THEN
    NEW.chunk_set := NULL;
  ELSIF TG_OP = 'INSERT' THEN
    NEW.chunk_set := coalesce(NEW.chunk_set, nextval('chunk_sets')); -- (a named set passed chunks_claim)
  ELSIF OLD.content IS NOT DISTINCT FROM NEW.content THEN
    NEW.chunk_set := OLD.chunk_set;
  ELSIF OLD.chunk_set IS NOT NULL AND current_setting('transaction_isolation') = 'read committed'
        AND NOT EXISTS (SELECT 1 FROM files f WHERE f.chunk_set = OLD.chunk_set
                        AND (f.workspace, f.path) IS DISTINCT FROM (OLD.workspace, OLD.path)) THEN
    NEW.chunk_set := OLD.chunk_set; -- its own set: re-cut in place, unchanged chunks kept
  ELSE
    -- Shared (a fork's), text where there was none, or a snapshot older than this statement (one
    -- that might not see a fork's copies).
    NEW.chunk_set := nextval('chunk_sets');
  END IF;
  RETURN NEW;
END
$$;

-- Drops the chunks of those sets that no file uses any more. Called by the definer triggers below
-- (so it runs as the owner); not a definer itself, and no one else may call it.
-- Only with a snapshot of this statement (READ COMMITTED): an older one may miss a fork's copies.
CREATE FUNCTION chunks_collect(p_sets bigint[]) RETURNS void
LANGUAGE sql SET search_path FROM CURRENT AS $$
  DELETE FROM chunks c
  USING (SELECT DISTINCT s.chunk_set FROM unnest(p_sets) AS s(chunk_set)
         WHERE s.chunk_set IS NOT NULL -- (one index probe per set, as in chunks_insert)
           AND (SELECT true FROM files f WHERE f.chunk_set = s.chunk_set LIMIT 1) IS NULL) gone
  WHERE c.chunk_set = gone.chunk_set AND current_setting('transaction_isolation') = 'read committed'
$$;

-- Chunks of sets no file uses (left by the cases chunks_collect does not cover): the owner's.
CREATE FUNCTION prune_chunks() RETURNS bigint
LANGUAGE sql SET search_path FROM CURRENT AS $$
  WITH gone AS (
    DELETE FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.chunk_set = c.chunk_set)
    RETURNING c.chunk_set
  )
  SELECT count(DISTINCT g.chunk_set) FROM gone g
$$;

-- AFTER INSERT: cut the new sets (a fork's rows name sets that have their chunks already).
CREATE OR REPLACE FUNCTION chunks_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  INSERT INTO chunks (chunk_set, first_line, line_count, content)
  SELECT n.chunk_set, c.first_line, c.line_count, c.content
  FROM new_rows n CROSS JOIN LATERAL text_chunks(n.content) c
  -- A scalar subquery, never pulled up into a join: one primary-key probe per row. As NOT EXISTS
  -- the planner hashed the whole chunks table for an upload of 2,000 files (300 MB read, 30 s).
  WHERE n.chunk_set IS NOT NULL
    AND (SELECT true FROM chunks x WHERE x.chunk_set = n.chunk_set LIMIT 1) IS NULL
  ON CONFLICT DO NOTHING; -- two new rows of one statement naming the same set
  RETURN NULL;
END
$$;

-- AFTER DELETE: sets no file uses any more go.
CREATE OR REPLACE FUNCTION chunks_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  PERFORM chunks_collect((SELECT array_agg(o.chunk_set) FROM old_rows o));
  RETURN NULL;
END
$$;

-- AFTER UPDATE: sets whose text changed are cut (a set re-cut in place keeps the chunks that come
-- out identical, as 0003's did), and sets left unused go.
CREATE OR REPLACE FUNCTION chunks_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  v_sets bigint[];
  v_cut_sets bigint[];
  v_cut_first_lines integer[];
  v_cut_line_counts integer[];
  v_cut_contents text[];
BEGIN
  -- Sets of new rows whose text is not the text the set had: new sets, and sets re-cut in place.
  -- (A hash join on the set: rows pair up by it; raw SQL may even change a row's key.)
  SELECT array_agg(DISTINCT n.chunk_set) INTO v_sets
  FROM new_rows n LEFT JOIN old_rows o ON o.chunk_set = n.chunk_set
  WHERE n.chunk_set IS NOT NULL AND (o.chunk_set IS NULL OR o.content IS DISTINCT FROM n.content);
  IF v_sets IS NOT NULL THEN
    SELECT array_agg(s.chunk_set), array_agg(c.first_line), array_agg(c.line_count), array_agg(c.content)
      INTO v_cut_sets, v_cut_first_lines, v_cut_line_counts, v_cut_contents
    FROM (SELECT DISTINCT ON (n.chunk_set) n.chunk_set, n.content
          FROM new_rows n JOIN unnest(v_sets) AS k(chunk_set) ON k.chunk_set = n.chunk_set
          ORDER BY n.chunk_set) s
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
  PERFORM chunks_collect((SELECT array_agg(g.chunk_set)
                          FROM (SELECT o.chunk_set FROM old_rows o EXCEPT SELECT n.chunk_set FROM new_rows n) g));
  RETURN NULL;
END
$$;

CREATE TRIGGER files_chunks_claim BEFORE INSERT ON files FOR EACH ROW EXECUTE FUNCTION chunks_claim();
CREATE TRIGGER files_chunks_set BEFORE INSERT OR UPDATE ON files FOR EACH ROW EXECUTE FUNCTION chunks_assign();

REVOKE EXECUTE ON FUNCTION chunks_assign(), chunks_collect(bigint[]), prune_chunks() FROM PUBLIC;

-- Reads and search through the set ---------------------------------------------------------------

-- 0003's window read, through the file's set.
CREATE OR REPLACE FUNCTION fs_read(p_workspace text, p_path text, p_offset integer, p_limit integer)
RETURNS TABLE (mime_type text, bytes bytea, total_lines integer, window_text text, window_lines integer)
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
  SELECT f.mime_type, f.bytes, f.line_count, w.text, w.n
  FROM files f
  CROSS JOIN LATERAL (
    SELECT string_agg(l.line, E'\n' ORDER BY c.first_line, l.n) AS text, count(*)::integer AS n
    FROM chunks c
    CROSS JOIN LATERAL chunk_lines(c.content) l
    WHERE c.chunk_set = f.chunk_set
      AND c.first_line >= (SELECT coalesce(max(c0.first_line), 1) FROM chunks c0
                           WHERE c0.chunk_set = f.chunk_set AND c0.first_line <= p_offset::bigint + 1)
      AND c.first_line <= p_offset::bigint + p_limit
      AND c.first_line + l.n - 1 > p_offset
      AND c.first_line + l.n - 1 <= p_offset::bigint + p_limit
  ) w
  WHERE f.workspace = p_workspace AND f.path = p_path
$$;

-- 0003's lines of a chunk, from an array: the same rows, but the planner now expects a few lines
-- to match per chunk (unnest's estimate of an array it cannot see is 10 elements; string_to_table's
-- was 1,000). With 1,000 it believed a LIMIT of 10 lines was met inside the first matching chunk,
-- so that reading every chunk of the workspace in path order "stopped early" -- the plan it chose
-- for a rare literal once files and chunks were joined on the set (a full read of the workspace
-- instead of the trigram index). The estimate of matching chunks now decides, as it should.
CREATE OR REPLACE FUNCTION chunk_lines(p_content text) RETURNS TABLE (line text, n bigint)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT t.line, t.n FROM unnest(string_to_array(p_content, E'\n')) WITH ORDINALITY AS t(line, n)
  UNION ALL
  SELECT '', 1 WHERE p_content = ''
$$;

-- 0006's search: the scope, the glob and the path come from the file; the text from its chunks.
CREATE OR REPLACE FUNCTION fs_search(p_workspace text, p_path text, p_allow_exact boolean, p_glob text,
                                     p_glob_regex text, p_glob_basename boolean, p_pattern text,
                                     p_regex boolean, p_ignore_case boolean, p_limit bigint,
                                     p_chunk_pattern text DEFAULT NULL)
RETURNS TABLE (path text, line integer, text text)
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT SET jit = off AS $$
DECLARE
  s record;
  v_like text := '%' || replace(replace(replace(p_pattern, '\', '\\'), '%', '\%'), '_', '\_') || '%';
  v_chunk_test text;
  v_line_test text;
BEGIN
  s := search_scope(p_workspace, p_path, p_allow_exact, '');
  IF p_regex THEN
    v_chunk_test := CASE WHEN p_ignore_case THEN 'c.content ~* $4' ELSE 'c.content ~ $4' END;
    v_line_test := CASE WHEN p_ignore_case THEN 'l.line ~* $8' ELSE 'l.line ~ $8' END;
  ELSIF p_ignore_case THEN
    v_chunk_test := 'c.content ILIKE $4';
    v_line_test := 'l.line ILIKE $4';
  ELSE
    v_chunk_test := 'c.content LIKE $4';
    v_line_test := 'strpos(l.line, $8) > 0';
  END IF;
  v_chunk_test := v_chunk_test || format(' AND chunk_matches(c.content, $4, %L, %L)', p_regex, p_ignore_case);
  RETURN QUERY EXECUTE format($q$
    SELECT c.path, (c.first_line + l.n - 1)::integer, l.line
    FROM (
      SELECT f.path, c.first_line, c.content
      FROM files f
      JOIN chunks c ON c.chunk_set = f.chunk_set
      CROSS JOIN LATERAL (SELECT CASE WHEN $5 THEN substr(f.path, length(f.path) - strpos(reverse(f.path), '/') + 2)
                                      ELSE substr(f.path, length($7) + 1) END AS rel) r
      WHERE f.workspace = $1 AND f.path >= $2 AND f.path < $3
        AND %s
        AND ($6 IS NULL OR r.rel = $10 OR r.rel ~ $6)
    ) c
    CROSS JOIN LATERAL chunk_lines(c.content) l
    WHERE %s
    ORDER BY c.path, c.first_line, l.n
    LIMIT $9
  $q$, v_chunk_test, v_line_test)
  USING p_workspace, s.lo, s.hi,
        CASE WHEN p_regex THEN '(?n)' || coalesce(p_chunk_pattern, p_pattern) ELSE v_like END,
        p_glob_basename OR s.exact, p_glob_regex, s.dir, p_pattern, p_limit, p_glob;
END
$$;

-- Probes of one path in the row triggers that both indexes can answer exactly --------------------
--
-- `workspace = $1 AND path = $2` can be answered by files_pkey (workspace, path) or by
-- files_parent_idx (workspace, parent, path), which then reads every entry of the workspace. The
-- planner prices both as one row when its statistics say the workspace is small -- a workspace
-- new since the last ANALYZE, like a fork's target or a fresh import -- and took the second:
-- each probe of a 10,000-file fork read all the rows inserted before it (quadratic: 5 s of a
-- 7 s fork in files_first_version, and as much again at commit in changes_tree_check). With the
-- parent named too, either index is a point lookup. Same bodies as before otherwise. (fs_upload
-- and fs_write plan each call with its own workspace, force_custom_plan, and keep theirs.)

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

CREATE OR REPLACE FUNCTION changes_tree_check()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET enable_seqscan = off
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

-- Fork --------------------------------------------------------------------------------------------

-- The files of p_source (now, or as at its checkpoint p_at) in p_target, which must have none:
-- the rows are copied and share their chunk sets; files rebuilt from history are cut anew.
-- Versions in the target start as new files do (1, or above a tombstone of the target).
-- Errors: DA013 fork into itself, DA014 target has files, DA012 no such checkpoint, 42501 no grant.
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

-- Down Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;

DROP FUNCTION fs_fork(text, text, bigint);
DROP TRIGGER files_chunks_set ON files;
DROP TRIGGER files_chunks_claim ON files;

-- 0003's chunks keyed by file, cut again from the files (forks' copies get their own chunks).
CREATE TABLE chunk_rows (
  workspace  text NOT NULL,
  path       text COLLATE "C" NOT NULL,
  first_line integer NOT NULL,
  line_count integer NOT NULL,
  content    text NOT NULL,
  PRIMARY KEY (workspace, path, first_line)
) WITH (toast_tuple_target = 8160);
INSERT INTO chunk_rows (workspace, path, first_line, line_count, content)
SELECT f.workspace, f.path, c.first_line, c.line_count, c.content
FROM files f JOIN chunks c ON c.chunk_set = f.chunk_set;
DO $$
DECLARE
  v_schema text := current_schema();
  v_forced boolean := (SELECT c.relforcerowsecurity FROM pg_catalog.pg_class c WHERE c.oid = 'chunks'::regclass);
  v_owner name := (SELECT pg_catalog.pg_get_userbyid(c.relowner) FROM pg_catalog.pg_class c WHERE c.oid = 'chunks'::regclass);
  v_acl aclitem[] := (SELECT c.relacl FROM pg_catalog.pg_class c WHERE c.oid = 'chunks'::regclass);
  v_grant record;
BEGIN
  DROP TABLE chunks;
  ALTER TABLE chunk_rows RENAME TO chunks;
  ALTER INDEX chunk_rows_pkey RENAME TO chunks_pkey;
  EXECUTE format('CREATE INDEX chunks_content_trgm_idx ON chunks USING gin (content %I.gin_trgm_ops)',
                 (SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'));
  ALTER TABLE chunks ENABLE ROW LEVEL SECURITY;
  IF v_forced THEN
    ALTER TABLE chunks FORCE ROW LEVEL SECURITY;
  END IF;
  -- The old table's owner and privileges (grant_workspace's SELECT, and any granted by hand).
  EXECUTE format('ALTER TABLE chunks OWNER TO %I', v_owner);
  FOR v_grant IN SELECT a.grantee, a.privilege_type, a.is_grantable FROM aclexplode(v_acl) a WHERE a.grantee <> 0 LOOP
    EXECUTE format('GRANT %s ON %I.chunks TO %I%s', v_grant.privilege_type, v_schema,
                   pg_catalog.pg_get_userbyid(v_grant.grantee), CASE WHEN v_grant.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
  END LOOP;
  FOR v_grant IN SELECT a.privilege_type FROM aclexplode(v_acl) a WHERE a.grantee = 0 LOOP
    EXECUTE format('GRANT %s ON %I.chunks TO PUBLIC', v_grant.privilege_type, v_schema);
  END LOOP;
END
$$;
CREATE POLICY chunks_granted ON chunks
  USING (workspace IN (SELECT g.workspace FROM workspace_grants g)
         OR EXISTS (SELECT 1 FROM workspace_grants g WHERE g.workspace IS NULL))
  WITH CHECK (workspace IN (SELECT g.workspace FROM workspace_grants g)
              OR EXISTS (SELECT 1 FROM workspace_grants g WHERE g.workspace IS NULL));

-- The live definitions before this version (0003's triggers, fs_read; 0006's fs_search).
CREATE OR REPLACE FUNCTION chunks_insert()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
AS $function$
BEGIN
  INSERT INTO chunks (workspace, path, first_line, line_count, content)
  SELECT n.workspace, n.path, c.first_line, c.line_count, c.content
  FROM new_rows n CROSS JOIN LATERAL text_chunks(n.content) c
  WHERE n.content IS NOT NULL;
  RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION chunks_delete()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
AS $function$
BEGIN
  DELETE FROM chunks c USING old_rows o WHERE c.workspace = o.workspace AND c.path = o.path;
  RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION chunks_update()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
AS $function$
DECLARE
  v_workspaces text[];
  v_paths text[];
  v_cut_workspaces text[];
  v_cut_paths text[];
  v_cut_first_lines integer[];
  v_cut_line_counts integer[];
  v_cut_contents text[];
BEGIN
  -- Rows whose content did not change keep their chunks; the rest are re-cut. (Raw SQL may even
  -- change a row's key: the old key's chunks go, the new key's are made.)
  -- One comparison of contents per row (a key only on one side is a key that changed).
  SELECT array_agg(coalesce(n.workspace, o.workspace)), array_agg(coalesce(n.path, o.path))
    INTO v_workspaces, v_paths
  FROM old_rows o
  FULL JOIN new_rows n ON n.workspace = o.workspace AND n.path = o.path
  WHERE o.path IS NULL OR n.path IS NULL OR o.content IS DISTINCT FROM n.content;
  IF v_paths IS NULL THEN
    RETURN NULL;
  END IF;
  -- The new cut, once. Chunks that come out identical (same first line, same text) stay as they
  -- are: a replacement inside a big file moves few slot boundaries, so most of its chunks -- and
  -- their trigram index entries -- are not rewritten.
  SELECT array_agg(n.workspace), array_agg(n.path), array_agg(c.first_line), array_agg(c.line_count), array_agg(c.content)
    INTO v_cut_workspaces, v_cut_paths, v_cut_first_lines, v_cut_line_counts, v_cut_contents
  FROM new_rows n
  JOIN unnest(v_workspaces, v_paths) AS k(workspace, path) ON k.workspace = n.workspace AND k.path = n.path
  CROSS JOIN LATERAL text_chunks(n.content) c
  WHERE n.content IS NOT NULL;
  -- Old chunks minus the new cut, as a set difference (hashed or sorted, linear). Not NOT EXISTS:
  -- the planner estimates one chunk per path, and on a big table it picked a nested-loop anti join
  -- that compared every old chunk of a 5 MB file with every new one (2.5 s instead of 0.1 s).
  DELETE FROM chunks c
  USING (
    SELECT o.workspace, o.path, o.first_line, o.content
    FROM chunks o JOIN unnest(v_workspaces, v_paths) AS k(workspace, path) ON o.workspace = k.workspace AND o.path = k.path
    EXCEPT
    SELECT f.workspace, f.path COLLATE "C", f.first_line, f.content
    FROM unnest(v_cut_workspaces, v_cut_paths, v_cut_first_lines, v_cut_contents) AS f(workspace, path, first_line, content)
  ) gone
  WHERE c.workspace = gone.workspace AND c.path = gone.path AND c.first_line = gone.first_line;
  INSERT INTO chunks (workspace, path, first_line, line_count, content)
  SELECT f.workspace, f.path, f.first_line, f.line_count, f.content
  FROM unnest(v_cut_workspaces, v_cut_paths, v_cut_first_lines, v_cut_line_counts, v_cut_contents)
       AS f(workspace, path, first_line, line_count, content)
  WHERE NOT EXISTS (SELECT 1 FROM chunks c
                    WHERE c.workspace = f.workspace AND c.path = f.path AND c.first_line = f.first_line);
  RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION fs_read(p_workspace text, p_path text, p_offset integer, p_limit integer)
 RETURNS TABLE(mime_type text, bytes bytea, total_lines integer, window_text text, window_lines integer)
 LANGUAGE sql
 STABLE
 SET search_path FROM CURRENT
AS $function$
  SELECT f.mime_type, f.bytes, f.line_count, w.text, w.n
  FROM files f
  CROSS JOIN LATERAL (
    SELECT string_agg(l.line, E'\n' ORDER BY c.first_line, l.n) AS text, count(*)::integer AS n
    FROM chunks c
    CROSS JOIN LATERAL chunk_lines(c.content) l
    WHERE c.workspace = f.workspace AND c.path = f.path
      AND c.first_line >= (SELECT coalesce(max(c0.first_line), 1) FROM chunks c0
                           WHERE c0.workspace = f.workspace AND c0.path = f.path
                             AND c0.first_line <= p_offset::bigint + 1)
      AND c.first_line <= p_offset::bigint + p_limit
      AND c.first_line + l.n - 1 > p_offset
      AND c.first_line + l.n - 1 <= p_offset::bigint + p_limit
  ) w
  WHERE f.workspace = p_workspace AND f.path = p_path
$function$;

CREATE OR REPLACE FUNCTION fs_search(p_workspace text, p_path text, p_allow_exact boolean, p_glob text, p_glob_regex text, p_glob_basename boolean, p_pattern text, p_regex boolean, p_ignore_case boolean, p_limit bigint, p_chunk_pattern text DEFAULT NULL::text)
 RETURNS TABLE(path text, line integer, text text)
 LANGUAGE plpgsql
 STABLE
 SET search_path FROM CURRENT
 SET jit TO 'off'
AS $function$
DECLARE
  s record;
  v_like text := '%' || replace(replace(replace(p_pattern, '\', '\\'), '%', '\%'), '_', '\_') || '%';
  v_chunk_test text;
  v_line_test text;
BEGIN
  s := search_scope(p_workspace, p_path, p_allow_exact, '');
  IF p_regex THEN
    v_chunk_test := CASE WHEN p_ignore_case THEN 'c.content ~* $4' ELSE 'c.content ~ $4' END;
    v_line_test := CASE WHEN p_ignore_case THEN 'l.line ~* $8' ELSE 'l.line ~ $8' END;
  ELSIF p_ignore_case THEN
    v_chunk_test := 'c.content ILIKE $4';
    v_line_test := 'l.line ILIKE $4';
  ELSE
    v_chunk_test := 'c.content LIKE $4';
    v_line_test := 'strpos(l.line, $8) > 0';
  END IF;
  v_chunk_test := v_chunk_test || format(' AND chunk_matches(c.content, $4, %L, %L)', p_regex, p_ignore_case);
  RETURN QUERY EXECUTE format($q$
    SELECT c.path, (c.first_line + l.n - 1)::integer, l.line
    FROM (
      SELECT c.path, c.first_line, c.content
      FROM chunks c
      CROSS JOIN LATERAL (SELECT CASE WHEN $5 THEN substr(c.path, length(c.path) - strpos(reverse(c.path), '/') + 2)
                                      ELSE substr(c.path, length($7) + 1) END AS rel) r
      WHERE c.workspace = $1 AND c.path >= $2 AND c.path < $3
        AND %s
        AND ($6 IS NULL OR r.rel = $10 OR r.rel ~ $6)
    ) c
    CROSS JOIN LATERAL chunk_lines(c.content) l
    WHERE %s
    ORDER BY c.path, c.first_line, l.n
    LIMIT $9
  $q$, v_chunk_test, v_line_test)
  USING p_workspace, s.lo, s.hi,
        CASE WHEN p_regex THEN '(?n)' || coalesce(p_chunk_pattern, p_pattern) ELSE v_like END,
        p_glob_basename OR s.exact, p_glob_regex, s.dir, p_pattern, p_limit, p_glob;
END
$function$;

CREATE OR REPLACE FUNCTION chunk_lines(p_content text)
 RETURNS TABLE(line text, n bigint)
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  SELECT t.line, t.n FROM string_to_table(p_content, E'\n') WITH ORDINALITY AS t(line, n)
  UNION ALL
  SELECT '', 1 WHERE p_content = ''
$function$;

CREATE OR REPLACE FUNCTION files_first_version()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET enable_seqscan = off
AS $function$
BEGIN
  PERFORM 1 FROM files f WHERE f.workspace = NEW.workspace AND f.path = NEW.path FOR UPDATE;
  NEW.version := coalesce((SELECT t.version FROM tombstones t
                           WHERE t.workspace = NEW.workspace AND t.path = NEW.path), 0) + 1;
  RETURN NEW;
END
$function$;

CREATE OR REPLACE FUNCTION changes_tree_check()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET enable_seqscan = off
AS $function$
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
$function$;

DROP INDEX files_chunk_set_idx;
ALTER TABLE files DROP CONSTRAINT files_chunk_set;
ALTER TABLE files DROP COLUMN chunk_set;
DROP FUNCTION chunks_assign();
DROP FUNCTION chunks_claim();
DROP FUNCTION chunks_collect(bigint[]);
DROP FUNCTION prune_chunks();
DROP SEQUENCE chunk_sets;
