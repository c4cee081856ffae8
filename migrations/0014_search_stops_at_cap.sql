-- Up Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
--
-- Version 14: a capped search that reads files in path order stops where the cap is reached.
--
-- Why (BENCHMARKS.md, "Search at scale", run of 2026-12-06): since 0010 joins files and chunks
-- on the chunk set, the planner knows its rows come in path order (the files' primary key) but
-- not in line order within a file, so for `ORDER BY path, line LIMIT n` it sorts each file's
-- matches (Incremental Sort) — and a sort group ends only at the first row of the next file with
-- a match. A common literal capped at 100 read all 1,168 matching chunks of a 5 MB file, then
-- every file of a 10,000-file directory without a match, to find where the next group began:
-- 42 ms instead of 6 ms before 0010 (chunks then carried the path, and each group was a chunk).
--
-- fs_search still lets the planner choose between its two strategies (the trigram index, for a
-- selective pattern; or reading the scope in path order and stopping at the cap, for a common
-- one): it plans the query as before (EXPLAIN) and, when the planner reads in path order, runs
-- that strategy as a cursor of one row per file, in path order, each holding that file's first
-- matches in line order (at most the cap), fetched one at a time until the cap is reached. No
-- sort, so nothing is read past the file that fills it. Uncapped searches and the trigram
-- strategy run the query as before. The function is VOLATILE now: PostgreSQL refuses EXPLAIN in a
-- STABLE one. It writes nothing; each of its statements takes a fresh snapshot, as the single
-- statement of the trigram strategy always did.
-- Released: never edit this file; add a new migration instead.

CREATE OR REPLACE FUNCTION fs_search(p_workspace text, p_path text, p_allow_exact boolean, p_glob text,
                                     p_glob_regex text, p_glob_basename boolean, p_pattern text,
                                     p_regex boolean, p_ignore_case boolean, p_limit bigint,
                                     p_chunk_pattern text DEFAULT NULL)
RETURNS TABLE (path text, line integer, text text)
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT SET jit = off AS $$
DECLARE
  s record;
  v_like text := '%' || replace(replace(replace(p_pattern, '\', '\\'), '%', '\%'), '_', '\_') || '%';
  v_chunk_test text;
  v_line_test text;
  v_query text;
  v_plan text;
  v_files refcursor;
  v_file record;
  v_left bigint := p_limit;
  v_sort text;
  v_chunk_pattern text := CASE WHEN p_regex THEN '(?n)' || coalesce(p_chunk_pattern, p_pattern) ELSE v_like END;
  -- The file's path relative to the scope (or its name), and the rows of the scope and glob: one
  -- text for both strategies, so they answer for the same files.
  v_rel text := $f$CROSS JOIN LATERAL (SELECT CASE WHEN $5 THEN substr(f.path, length(f.path) - strpos(reverse(f.path), '/') + 2)
                                               ELSE substr(f.path, length($7) + 1) END AS rel) r$f$;
  v_in_scope text := $f$f.workspace = $1 AND f.path >= $2 AND f.path < $3 AND ($6 IS NULL OR r.rel = $10 OR r.rel ~ $6)$f$;
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
  v_query := format($q$
    SELECT c.path, (c.first_line + l.n - 1)::integer, l.line
    FROM (
      SELECT f.path, c.first_line, c.content
      FROM files f
      JOIN chunks c ON c.chunk_set = f.chunk_set
      %s
      WHERE %s AND %s
    ) c
    CROSS JOIN LATERAL chunk_lines(c.content) l
    WHERE %s
    ORDER BY c.path, c.first_line, l.n
    LIMIT $9
  $q$, v_rel, v_in_scope, v_chunk_test, v_line_test);

  IF p_limit >= 0 THEN -- (a negative one goes on to the query, which refuses it)
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || v_query INTO v_plan
    USING p_workspace, s.lo, s.hi, v_chunk_pattern, p_glob_basename OR s.exact, p_glob_regex, s.dir,
          p_pattern, p_limit, p_glob;
    -- (The node's field, quoted: a pattern naming the index appears in the plan escaped.)
    IF position('"Index Name": "chunks_content_trgm_idx"' IN v_plan) = 0 THEN
      -- The path-order strategy, one row per file with a match: its first p_limit matching lines
      -- (chunks in line order from the chunk set's key, lines in order within a chunk). Planned
      -- with enable_sort off, for this OPEN only: the planner believes a chunk set holds one
      -- chunk, and would sort all of a big file's matches to take the first few; with sorting
      -- off it sorts each chunk's lines only (Incremental Sort over the key's order) and stops.
      v_sort := current_setting('enable_sort');
      PERFORM set_config('enable_sort', 'off', true);
      OPEN v_files FOR EXECUTE format($q$
        SELECT f.path, m.lines, m.texts
        FROM files f
        %s
        CROSS JOIN LATERAL (
          SELECT array_agg(x.line ORDER BY x.line) AS lines, array_agg(x.text ORDER BY x.line) AS texts
          FROM (
            SELECT (c.first_line + l.n - 1)::integer AS line, l.line AS text
            FROM chunks c
            CROSS JOIN LATERAL chunk_lines(c.content) l
            WHERE c.chunk_set = f.chunk_set AND %s AND %s
            ORDER BY c.first_line, l.n
            LIMIT $9
          ) x
        ) m
        WHERE %s AND m.lines IS NOT NULL
        ORDER BY f.path
        LIMIT $9
      $q$, v_rel, v_chunk_test, v_line_test, v_in_scope)
      USING p_workspace, s.lo, s.hi, v_chunk_pattern, p_glob_basename OR s.exact, p_glob_regex, s.dir,
            p_pattern, p_limit, p_glob;
      PERFORM set_config('enable_sort', v_sort, true);
      -- One file at a time (a FOR loop would fetch ten, reading past the file that fills the cap).
      WHILE v_left > 0 LOOP
        FETCH v_files INTO v_file;
        EXIT WHEN NOT FOUND;
        RETURN QUERY SELECT v_file.path, u.line, u.text
                     FROM unnest(v_file.lines, v_file.texts) AS u(line, text) LIMIT v_left;
        v_left := v_left - least(v_left, cardinality(v_file.lines));
      END LOOP;
      CLOSE v_files;
      RETURN;
    END IF;
  END IF;
  RETURN QUERY EXECUTE v_query
  USING p_workspace, s.lo, s.hi, v_chunk_pattern, p_glob_basename OR s.exact, p_glob_regex, s.dir,
        p_pattern, p_limit, p_glob;
END
$$;

-- Down Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;

-- 0010's definition.
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
