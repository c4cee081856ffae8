-- Up Migration
--
-- deepagents-backends schema, version 1: one row per (workspace, path) and one SQL function per
-- backend operation. node-pg-migrate runs this with search_path set to our schema only, so every
-- unqualified name below is created in (and resolved from) that schema; each function pins that
-- search_path with `SET search_path FROM CURRENT`, so callers' search_path never changes what it
-- touches. Released: never edit this file; add a new migration instead.

-- pg_trgm: reuse it wherever it already lives (often `public`); if missing, install it into our
-- own schema so `down` can remove exactly what we added. The advisory lock serialises installs
-- into different schemas of one database (each schema migrates under its own lock value).
DO $$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('deepagents-backends:pg_trgm'));
  IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
    EXECUTE format('CREATE EXTENSION pg_trgm SCHEMA %I', current_schema());
  END IF;
END
$$;

CREATE TABLE files (
  workspace   text NOT NULL,
  -- COLLATE "C": byte order, so a directory is one contiguous btree range ['/d/', '/d0').
  path        text COLLATE "C" NOT NULL,
  -- Directory part with its trailing slash ('/a/b/' for '/a/b/c.txt'): ls lists files by it.
  parent      text COLLATE "C" NOT NULL GENERATED ALWAYS AS (regexp_replace(path, '[^/]*$', '')) STORED,
  content     text,        -- text files, lossless (CRLF and trailing newline kept)
  bytes       bytea,       -- binary files, and uploads that are not valid UTF-8
  mime_type   text NOT NULL,
  size        bigint NOT NULL,   -- bytes
  line_count  integer NOT NULL,  -- lines split on \n; a trailing newline does not start a line
  version     bigint NOT NULL DEFAULT 1,
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  modified_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (workspace, path),
  CONSTRAINT files_one_body CHECK ((content IS NULL) <> (bytes IS NULL)),
  CONSTRAINT files_path_shape CHECK (left(path, 1) = '/' AND right(path, 1) <> '/' AND strpos(path, '//') = 0)
);

CREATE INDEX files_parent_idx ON files (workspace, parent, path);

-- GIN, not GiST: a GiST trigram signature of a whole file overflows the 8 kB index row limit.
-- The operator class is qualified with pg_trgm's schema, wherever it was installed.
DO $$
BEGIN
  EXECUTE format('CREATE INDEX files_content_trgm_idx ON files USING gin (content %I.gin_trgm_ops)',
                 (SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'));
END
$$;

-- Lines as deepagents counts them: split on \n, a trailing \n ends the last line.
CREATE FUNCTION text_line_count(t text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN
  CASE WHEN t IS NULL OR t = '' THEN 0
       ELSE length(t) - length(replace(t, E'\n', '')) + (right(t, 1) <> E'\n')::integer END;

-- The smallest string greater than every path that starts with `dir` (which ends with '/'):
-- '/' is 0x2F and '0' is 0x30 in byte order, so ['/d/', '/d0') is exactly the subtree of /d.
CREATE FUNCTION dir_upper_bound(dir text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN left(dir, -1) || '0';

CREATE FUNCTION fs_stat(p_workspace text, p_path text)
RETURNS TABLE (mime_type text, is_binary boolean, size bigint, line_count integer, version bigint,
               created_at timestamptz, modified_at timestamptz)
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
  SELECT f.mime_type, f.bytes IS NOT NULL, f.size, f.line_count, f.version, f.created_at, f.modified_at
  FROM files f WHERE f.workspace = p_workspace AND f.path = p_path
$$;

-- The content test of grep, as a function the planner prices by what it really costs: reading
-- (and de-TOASTing) a whole file. LIKE alone is costed as one cheap operator per row, which makes a
-- scan of every file look cheaper than the trigram index whenever contents live in TOAST.
-- plpgsql so it is not inlined (inlining would drop the COST).
CREATE FUNCTION content_has(p_content text, p_pattern text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE COST 1000 AS $$
BEGIN
  RETURN strpos(p_content, p_pattern) > 0;
END
$$;

-- Immediate children of `p_dir` (ends with '/'). Files come from the parent index; directories
-- by a skip scan over the primary key: one index probe per sub-directory, never a read of every
-- descendant of a large tree.
CREATE FUNCTION fs_ls(p_workspace text, p_dir text)
RETURNS TABLE (path text, is_dir boolean, size bigint, modified_at timestamptz)
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
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
$$;

-- A window of lines [offset, offset + limit) cut on the server; only the window leaves it.
-- string_to_table keeps the empty element after a trailing newline, exactly as JS split("\n").
CREATE FUNCTION fs_read(p_workspace text, p_path text, p_offset integer, p_limit integer)
RETURNS TABLE (mime_type text, bytes bytea, total_lines integer, window_text text, window_lines integer)
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
  SELECT f.mime_type, f.bytes, f.line_count, w.text, w.n
  FROM files f
  CROSS JOIN LATERAL (
    SELECT string_agg(l.line, E'\n' ORDER BY l.n) AS text, count(*)::integer AS n
    FROM string_to_table(f.content, E'\n') WITH ORDINALITY AS l(line, n)
    WHERE l.n > p_offset AND l.n <= p_offset::bigint + p_limit
  ) w
  WHERE f.workspace = p_workspace AND f.path = p_path
$$;

CREATE FUNCTION fs_read_raw(p_workspace text, p_path text)
RETURNS TABLE (mime_type text, content text, bytes bytea, created_at timestamptz, modified_at timestamptz)
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
  SELECT f.mime_type, f.content, f.bytes, f.created_at, f.modified_at
  FROM files f WHERE f.workspace = p_workspace AND f.path = p_path
$$;

-- Create or overwrite. p_if_version: NULL = unconditional, 0 = create only, N = only if the
-- current version is N (compare-and-set: the UPDATE re-checks the version under the row lock).
-- status: 'created' | 'updated' | 'version_mismatch' (version = current, 0 when missing).
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

-- String replacement under the row lock, so concurrent edits of different strings all land.
-- Occurrences are counted like JS split(): non-overlapping, left to right (PostgreSQL replace()
-- walks the string the same way). status: 'ok' | 'not_found' | 'binary' | 'empty_old' |
-- 'no_match' | 'multiple' | 'version_mismatch' | 'too_large' (version = the size it would have).
CREATE FUNCTION fs_edit(p_workspace text, p_path text, p_old text, p_new text,
                        p_replace_all boolean, p_if_version bigint, p_max_bytes bigint)
RETURNS TABLE (status text, occurrences integer, version bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  v_content text;
  v_binary  boolean;
  v_version bigint;
  v_count   integer;
  v_new     text;
BEGIN
  SELECT f.content, f.bytes IS NOT NULL, f.version INTO v_content, v_binary, v_version
    FROM files f WHERE f.workspace = p_workspace AND f.path = p_path FOR UPDATE;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'not_found'::text, 0, NULL::bigint; RETURN;
  END IF;
  IF p_if_version IS NOT NULL AND p_if_version <> v_version THEN
    RETURN QUERY SELECT 'version_mismatch'::text, 0, v_version; RETURN;
  END IF;
  IF v_binary THEN
    RETURN QUERY SELECT 'binary'::text, 0, v_version; RETURN;
  END IF;

  IF v_content = '' AND p_old = '' THEN
    v_new := p_new; v_count := 0;
  ELSIF p_old = '' THEN
    RETURN QUERY SELECT 'empty_old'::text, 0, v_version; RETURN;
  ELSE
    v_count := (length(v_content) - length(replace(v_content, p_old, ''))) / length(p_old);
    IF v_count = 0 THEN
      RETURN QUERY SELECT 'no_match'::text, 0, v_version; RETURN;
    END IF;
    IF v_count > 1 AND NOT p_replace_all THEN
      RETURN QUERY SELECT 'multiple'::text, v_count, v_version; RETURN;
    END IF;
    v_new := replace(v_content, p_old, p_new);
  END IF;
  IF octet_length(v_new) > p_max_bytes THEN
    RETURN QUERY SELECT 'too_large'::text, v_count, octet_length(v_new)::bigint; RETURN;
  END IF;

  UPDATE files f
     SET content = v_new, size = octet_length(v_new), line_count = text_line_count(v_new),
         version = f.version + 1, modified_at = clock_timestamp()
   WHERE f.workspace = p_workspace AND f.path = p_path
  RETURNING f.version INTO v_version;
  RETURN QUERY SELECT 'ok'::text, v_count, v_version;
END
$$;

-- Recursive and atomic: the path itself plus its subtree; '/' empties the workspace.
-- Returns how many files were removed (0 = not found).
CREATE FUNCTION fs_delete(p_workspace text, p_path text)
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

-- Where grep and glob look: exactly p_path when it names a file (and the caller allows it),
-- else the subtree under it. For a subtree, p_base (a glob's literal leading directory, or '')
-- narrows the range to [dir || base, dir || base || '0'): that file and everything below it.
CREATE FUNCTION search_scope(p_workspace text, p_path text, p_allow_exact boolean, p_base text,
                             OUT lo text, OUT hi text, OUT dir text, OUT exact boolean)
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $$
BEGIN
  exact := p_allow_exact AND p_path <> '/'
           AND EXISTS (SELECT 1 FROM files f WHERE f.workspace = p_workspace AND f.path = p_path);
  IF exact THEN
    -- Nothing sorts between a string and itself followed by U+0001: the range is that one path.
    lo := p_path; hi := p_path || chr(1); dir := p_path || '/';
    RETURN;
  END IF;
  dir := CASE WHEN p_path = '/' THEN '/' ELSE p_path || '/' END;
  IF p_base <> '' THEN
    lo := dir || p_base; hi := dir || p_base || '0';
  ELSE
    lo := dir; hi := dir_upper_bound(dir);
  END IF;
END
$$;

-- Files under p_path (or p_path itself) whose path relative to the search directory matches the
-- glob -- its basename when p_path names a file -- equal to the pattern itself or matching its
-- compiled regex, as picomatch tests; newest first.
CREATE FUNCTION fs_glob(p_workspace text, p_path text, p_allow_exact boolean, p_base text,
                        p_pattern text, p_regex text)
RETURNS TABLE (path text, size bigint, modified_at timestamptz)
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $$
DECLARE
  s record;
BEGIN
  s := search_scope(p_workspace, p_path, p_allow_exact, p_base);
  RETURN QUERY
    SELECT f.path, f.size, f.modified_at
    FROM files f
    CROSS JOIN LATERAL (SELECT CASE WHEN s.exact THEN substr(f.path, length(f.parent) + 1)
                                    ELSE substr(f.path, length(s.dir) + 1) END AS rel) r
    WHERE f.workspace = p_workspace AND f.path >= s.lo AND f.path < s.hi
      AND (r.rel = p_pattern OR r.rel ~ p_regex)
    ORDER BY f.modified_at DESC, f.path;
END
$$;

-- Search: literal grep (the protocol's), case-insensitive literals and regular expressions (ARE,
-- translated from JavaScript syntax by the driver). Files in scope are prefiltered on their whole
-- content — the trigram index answers LIKE, ILIKE, ~ and ~* (for 3+ character literals); a regex
-- runs there in newline-sensitive mode ((?n): ^ and $ at line breaks, . and [^...] never cross
-- one), so it accepts every file where some line matches. Lines are then split in path order and
-- the LIMIT stops the split as soon as enough lines matched. EXECUTE plans with the actual pattern,
-- so a selective one gets the index and a short literal a sequential scan. The optional glob
-- filter matches the basename (p_glob_basename) or the path relative to the search directory.
CREATE FUNCTION fs_search(p_workspace text, p_path text, p_allow_exact boolean, p_glob text,
                          p_glob_regex text, p_glob_basename boolean, p_pattern text,
                          p_regex boolean, p_ignore_case boolean, p_limit bigint)
RETURNS TABLE (path text, line integer, text text)
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $$
DECLARE
  s record;
  v_like text := '%' || replace(replace(replace(p_pattern, '\', '\\'), '%', '\%'), '_', '\_') || '%';
  v_file_test text;
  v_line_test text;
BEGIN
  s := search_scope(p_workspace, p_path, p_allow_exact, '');
  IF p_regex THEN
    v_file_test := CASE WHEN p_ignore_case THEN 'f.content ~* $4' ELSE 'f.content ~ $4' END;
    v_line_test := CASE WHEN p_ignore_case THEN 'l.line ~* $8' ELSE 'l.line ~ $8' END;
  ELSIF p_ignore_case THEN
    v_file_test := 'f.content ILIKE $4';
    v_line_test := 'l.line ILIKE $4';
  ELSE
    v_file_test := 'f.content LIKE $4 AND content_has(f.content, $8)';
    v_line_test := 'strpos(l.line, $8) > 0';
  END IF;
  RETURN QUERY EXECUTE format($q$
    SELECT f.path, l.n::integer, l.line
    FROM (
      SELECT f.path, f.content
      FROM files f
      CROSS JOIN LATERAL (SELECT CASE WHEN $5 THEN substr(f.path, length(f.parent) + 1)
                                      ELSE substr(f.path, length($7) + 1) END AS rel) r
      WHERE f.workspace = $1 AND f.path >= $2 AND f.path < $3
        AND %s
        AND ($6 IS NULL OR r.rel = $10 OR r.rel ~ $6)
    ) f
    CROSS JOIN LATERAL (
      SELECT t.line, t.n FROM string_to_table(f.content, E'\n') WITH ORDINALITY AS t(line, n)
      UNION ALL SELECT '', 1 WHERE f.content = ''
    ) l
    WHERE %s
    ORDER BY f.path, l.n
    LIMIT $9
  $q$, v_file_test, v_line_test)
  USING p_workspace, s.lo, s.hi,
        CASE WHEN p_regex THEN '(?n)' || p_pattern ELSE v_like END,
        p_glob_basename OR s.exact, p_glob_regex, s.dir, p_pattern, p_limit, p_glob;
END
$$;

-- The protocol's grep: a case-sensitive literal.
CREATE FUNCTION fs_grep(p_workspace text, p_path text, p_allow_exact boolean, p_glob text,
                        p_glob_regex text, p_glob_basename boolean, p_pattern text, p_limit bigint)
RETURNS TABLE (path text, line integer, text text)
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
  SELECT * FROM fs_search(p_workspace, p_path, p_allow_exact, p_glob, p_glob_regex, p_glob_basename,
                          p_pattern, false, false, p_limit)
$$;

-- Batch upsert of uploads in one statement (the caller removes duplicate paths; last one wins).
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

-- Batch download in input order; is_dir marks a missing file that has descendants.
CREATE FUNCTION fs_download(p_workspace text, p_paths text[])
RETURNS TABLE (ord bigint, content text, bytes bytea, is_dir boolean)
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
  SELECT u.ord, f.content, f.bytes,
         f.path IS NULL AND EXISTS (
           SELECT 1 FROM files d
           WHERE d.workspace = p_workspace AND d.path >= u.path || '/' AND d.path < u.path || '0')
  FROM unnest(p_paths) WITH ORDINALITY AS u(path, ord)
  LEFT JOIN files f ON f.workspace = p_workspace AND f.path = u.path
  ORDER BY u.ord
$$;

-- Down Migration

DROP FUNCTION fs_download(text, text[]);
DROP FUNCTION fs_upload(text, text[], text[], bytea[], text[]);
DROP FUNCTION fs_grep(text, text, boolean, text, text, boolean, text, bigint);
DROP FUNCTION fs_search(text, text, boolean, text, text, boolean, text, boolean, boolean, bigint);
DROP FUNCTION fs_glob(text, text, boolean, text, text, text);
DROP FUNCTION search_scope(text, text, boolean, text);
DROP FUNCTION fs_delete(text, text);
DROP FUNCTION fs_edit(text, text, text, text, boolean, bigint, bigint);
DROP FUNCTION fs_write(text, text, text, bytea, text, bigint);
DROP FUNCTION fs_read_raw(text, text);
DROP FUNCTION fs_read(text, text, integer, integer);
DROP FUNCTION fs_ls(text, text);
DROP FUNCTION fs_stat(text, text);
DROP FUNCTION content_has(text, text);
DROP FUNCTION dir_upper_bound(text);
DROP FUNCTION text_line_count(text);
DROP TABLE files;
-- pg_trgm goes only if this migration installed it (it then lives in our schema), and only if
-- nothing else has come to depend on it since; then it stays, and so does our schema.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'
             AND extnamespace = current_schema()::regnamespace) THEN
    BEGIN
      DROP EXTENSION pg_trgm;
    EXCEPTION WHEN dependent_objects_still_exist THEN
      RAISE NOTICE 'pg_trgm is kept in schema %: other objects use it', current_schema();
    END;
  END IF;
END
$$;
