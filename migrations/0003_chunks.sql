-- Up Migration
--
-- Version 3: text files are also stored as chunks — runs of whole lines of about 3 kB — and
-- search, grep and read() work on chunks instead of whole files.
--
-- Why (BENCHMARKS.md, "Search at scale"): with one row per file, every candidate file is
-- de-TOASTed and split whole. A LIMIT cannot stop inside a 5 MB file, a 100-line read decompresses
-- all of it, and a trigram match only says "these trigrams occur somewhere in the file", so a
-- regex like `deprecat\w+ since` rechecks hundreds of big files. A chunk row is small enough to
-- stay inline and uncompressed (toast_tuple_target below), the trigram index narrows a search to
-- the few kilobytes that hold the trigrams together, and ORDER BY path, first_line lets LIMIT stop
-- after the chunks it needs.
--
-- files.content stays the authoritative copy (edit, download and full reads use it, unchanged);
-- chunks are derived from it by the statement triggers below, inside the writing transaction, so
-- they are never out of date and no code path can forget them. Binary files have no chunks.
-- Released: never edit this file; add a new migration instead.

CREATE TABLE chunks (
  workspace  text NOT NULL,
  path       text COLLATE "C" NOT NULL,
  first_line integer NOT NULL,   -- 1-based line number (deepagents' numbering) of the first line
  line_count integer NOT NULL,
  -- Lines first_line .. first_line + line_count - 1 joined by \n, with no \n at either end, so a
  -- file is its chunks joined by \n in first_line order. '' is one empty line.
  content    text NOT NULL,
  PRIMARY KEY (workspace, path, first_line)
) WITH (toast_tuple_target = 8160); -- keep ~3 kB rows inline and uncompressed: no pglz per scan

-- The lines of a chunk with their position in it. string_to_table('') yields nothing, but a
-- chunk '' is one empty line. Plain SQL without SET, so the planner inlines it.
CREATE FUNCTION chunk_lines(p_content text) RETURNS TABLE (line text, n bigint)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT t.line, t.n FROM string_to_table(p_content, E'\n') WITH ORDINALITY AS t(line, n)
  UNION ALL
  SELECT '', 1 WHERE p_content = ''
$$;

-- A text cut into chunks: each line goes to the 3,000-byte slot its first byte falls in, so a
-- chunk is ~3 kB of whole lines (more only when one line is longer). The empty file is one
-- empty line, as JavaScript's "".split("\n") sees it.
CREATE FUNCTION text_chunks(p_content text)
RETURNS TABLE (first_line integer, line_count integer, content text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT min(s.n)::integer, count(*)::integer, string_agg(s.line, E'\n' ORDER BY s.n)
  FROM (
    SELECT t.line, t.n,
           (sum(octet_length(t.line) + 1) OVER (ORDER BY t.n ROWS UNBOUNDED PRECEDING)
              - octet_length(t.line) - 1) / 3000 AS slot
    FROM string_to_table(p_content, E'\n') WITH ORDINALITY AS t(line, n)
  ) s
  GROUP BY s.slot
  UNION ALL
  SELECT 1, 1, '' WHERE p_content = ''
$$;

-- Statement triggers with transition tables: an upload of 500 files cuts them in one INSERT.
-- An UPDATE re-cuts only rows whose content changed (INSERT ... ON CONFLICT DO UPDATE fires the
-- INSERT trigger for new rows and the UPDATE trigger for the others).
CREATE FUNCTION chunks_insert() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
  INSERT INTO chunks (workspace, path, first_line, line_count, content)
  SELECT n.workspace, n.path, c.first_line, c.line_count, c.content
  FROM new_rows n CROSS JOIN LATERAL text_chunks(n.content) c
  WHERE n.content IS NOT NULL;
  RETURN NULL;
END
$$;

CREATE FUNCTION chunks_update() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
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
$$;

CREATE FUNCTION chunks_delete() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
  DELETE FROM chunks c USING old_rows o WHERE c.workspace = o.workspace AND c.path = o.path;
  RETURN NULL;
END
$$;

CREATE FUNCTION chunks_truncate() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
  TRUNCATE chunks;
  RETURN NULL;
END
$$;

CREATE TRIGGER files_chunks_insert AFTER INSERT ON files
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION chunks_insert();
CREATE TRIGGER files_chunks_update AFTER UPDATE ON files
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION chunks_update();
CREATE TRIGGER files_chunks_delete AFTER DELETE ON files
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION chunks_delete();
CREATE TRIGGER files_chunks_truncate AFTER TRUNCATE ON files
FOR EACH STATEMENT EXECUTE FUNCTION chunks_truncate();

-- Existing files, then the index (one build is much cheaper than maintaining it row by row).
INSERT INTO chunks (workspace, path, first_line, line_count, content)
SELECT f.workspace, f.path, c.first_line, c.line_count, c.content
FROM files f CROSS JOIN LATERAL text_chunks(f.content) c
WHERE f.content IS NOT NULL;

DO $$
BEGIN
  EXECUTE format('CREATE INDEX chunks_content_trgm_idx ON chunks USING gin (content %I.gin_trgm_ops)',
                 (SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'));
END
$$;
DROP INDEX files_content_trgm_idx;

-- The window [offset, offset + limit) from the chunks that hold it: the one where line offset + 1
-- starts (the last chunk starting at or before it, one backward index probe) up to the last one
-- starting inside the window. A 100-line read of a 5 MB file touches two or three 3 kB rows.
CREATE OR REPLACE FUNCTION fs_read(p_workspace text, p_path text, p_offset integer, p_limit integer)
RETURNS TABLE (mime_type text, bytes bytea, total_lines integer, window_text text, window_lines integer)
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
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
$$;

-- The chunk test of a search, priced. LIKE, ILIKE, ~ and ~* are costed as one cheap operator per
-- row whatever the text's length, so on a workspace of a few thousand files the planner preferred
-- reading every chunk of the workspace through the primary key over the trigram index (a rare
-- literal took 30-40 ms instead of 2). Repeating the test through this function, declared COST
-- 1000, prices a chunk read honestly; it runs again only on the chunks the index let through.
-- plpgsql so it is not inlined (inlining would drop the COST).
CREATE FUNCTION chunk_matches(p_content text, p_test text, p_regex boolean, p_ignore_case boolean) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE COST 1000 AS $$
BEGIN
  IF p_regex THEN
    RETURN CASE WHEN p_ignore_case THEN p_content ~* p_test ELSE p_content ~ p_test END;
  END IF;
  RETURN CASE WHEN p_ignore_case THEN p_content ILIKE p_test ELSE p_content LIKE p_test END;
END
$$;

-- Search (same contract as in 0001) over chunks: the chunk test — LIKE, ILIKE, ~ or ~*, all
-- answered by the trigram index — picks chunks where some line matches (a regex runs in
-- newline-sensitive mode (?n), so it never matches across a line break), then those chunks are
-- split. Ordered by path and first_line, the primary key's order, so LIMIT stops the scan after
-- the chunks it needs. The glob filter matches the basename (p_glob_basename) or the path
-- relative to the search directory.
CREATE OR REPLACE FUNCTION fs_search(p_workspace text, p_path text, p_allow_exact boolean, p_glob text,
                                     p_glob_regex text, p_glob_basename boolean, p_pattern text,
                                     p_regex boolean, p_ignore_case boolean, p_limit bigint)
RETURNS TABLE (path text, line integer, text text)
-- jit off: the work is LIKE/regex calls that JIT cannot speed up, and a big scan's row estimate
-- would otherwise buy ~25 ms of compilation per search.
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
        CASE WHEN p_regex THEN '(?n)' || p_pattern ELSE v_like END,
        p_glob_basename OR s.exact, p_glob_regex, s.dir, p_pattern, p_limit, p_glob;
END
$$;

-- Down Migration

-- fs_read and fs_search go back to their 0001 definitions (whole-file rows), verbatim.
CREATE OR REPLACE FUNCTION fs_read(p_workspace text, p_path text, p_offset integer, p_limit integer)
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

CREATE OR REPLACE FUNCTION fs_search(p_workspace text, p_path text, p_allow_exact boolean, p_glob text,
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

DO $$
BEGIN
  EXECUTE format('CREATE INDEX files_content_trgm_idx ON files USING gin (content %I.gin_trgm_ops)',
                 (SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'));
END
$$;
DROP TRIGGER files_chunks_truncate ON files;
DROP TRIGGER files_chunks_delete ON files;
DROP TRIGGER files_chunks_update ON files;
DROP TRIGGER files_chunks_insert ON files;
DROP FUNCTION chunks_truncate();
DROP FUNCTION chunks_delete();
DROP FUNCTION chunks_update();
DROP FUNCTION chunks_insert();
DROP FUNCTION chunk_matches(text, text, boolean, boolean);
DROP FUNCTION text_chunks(text);
DROP FUNCTION chunk_lines(text);
DROP TABLE chunks;
