-- Up Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
--
-- Version 22: a capped search reads the scope in path order before it trusts the trigram index.
--
-- Why (issue 14, item 1: "a literal common in one workspace and rare in the table"): fs_search
-- lets the planner choose between the trigram index and reading the scope in path order, and
-- the planner estimates a pattern's selectivity over the whole table (chunks are too wide for
-- ANALYZE to keep their values: the estimate is near a default). A literal in every file of a
-- 2,000-file workspace and in none of the other 10,000 files of the table, capped at 100 matches,
-- took 86 ms through the index (every matching chunk of the workspace fetched and sorted) and
-- 7 ms in path order; capped at 1,000, 114 ms and 10 ms (PostgreSQL 18; on 15, BENCHMARKS.md).
--
-- What: when the planner chose the index for a capped search, fs_search first reads the scope in
-- path order, one file at a time (0014's path-order cursor, as a SCROLL cursor over every file
-- of the range, with the glob as a column). The matches are the answer, read again from the
-- cursor's start, if they fill the cap or the range ends; once fewer than a quarter of the files
-- read had a match after 32 files or 256 kB (8 files if none matched), or after 1,024 files or
-- 8 MiB without filling the cap, the trigram query answers for the whole scope instead, as
-- before: a result always comes from one statement (one snapshot). A pattern in no file pays 8
-- files read in path order before the index answers, a sparse one up to 32 (or 256 kB). Uncapped searches, and capped ones the planner already
-- reads in path order, are unchanged.
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
  v_indexed boolean;
  v_probe_files constant integer := 1024; -- the most files read in path order before the index
  v_seen integer := 0;
  v_hits integer := 0;
  v_bytes bigint := 0;
  v_switch boolean := false;
  v_glob_ok text := '$6 IS NULL OR r.rel = $10 OR r.rel ~ $6';
  v_matches text;
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

  -- A file's first p_limit matching lines (chunks in line order from the chunk set's key, lines
  -- in order within a chunk), for the path-order cursors below; %%s: a condition on the file.
  v_matches := format($q$
    CROSS JOIN LATERAL (
      SELECT array_agg(x.line ORDER BY x.line) AS lines, array_agg(x.text ORDER BY x.line) AS texts
      FROM (
        SELECT (c.first_line + l.n - 1)::integer AS line, l.line AS text
        FROM chunks c
        CROSS JOIN LATERAL chunk_lines(c.content) l
        WHERE c.chunk_set = f.chunk_set AND (%%s) AND %s AND %s
        ORDER BY c.first_line, l.n
        LIMIT $9
      ) x
    ) m
  $q$, v_chunk_test, v_line_test);

  IF p_limit >= 0 THEN -- (a negative one goes on to the query, which refuses it)
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || v_query INTO v_plan
    USING p_workspace, s.lo, s.hi, v_chunk_pattern, p_glob_basename OR s.exact, p_glob_regex, s.dir,
          p_pattern, p_limit, p_glob;
    -- (The node's field, quoted: a pattern naming the index appears in the plan escaped.)
    v_indexed := position('"Index Name": "chunks_content_trgm_idx"' IN v_plan) > 0;
    -- The path-order strategy, one row per file with its first matches (v_matches). Planned
    -- with enable_sort off, for this OPEN only: the planner believes a chunk set holds one chunk, and
    -- would sort all of a big file's matches to take the first few; with sorting off it sorts
    -- each chunk's lines only (Incremental Sort over the key's order) and stops.
    v_sort := current_setting('enable_sort');
    PERFORM set_config('enable_sort', 'off', true);
    IF NOT v_indexed THEN
      -- The files with a match, up to the cap (0014).
      OPEN v_files FOR EXECUTE format($q$
        SELECT f.path, m.lines, m.texts
        FROM files f
        %s
        %s
        WHERE %s AND m.lines IS NOT NULL
        ORDER BY f.path
        LIMIT $9
      $q$, v_rel, format(v_matches, 'true'), v_in_scope)
      USING p_workspace, s.lo, s.hi, v_chunk_pattern, p_glob_basename OR s.exact, p_glob_regex, s.dir,
            p_pattern, p_limit, p_glob;
    ELSE
      -- Every file of the path range, the glob's rejects included (with no lines and not read:
      -- they count as files without a match, so a selective glob over a big range cannot make
      -- the probe below walk all of it), with its size; at most one more than the probe reads.
      -- SCROLL: the probe's rows are kept (a tuplestore), and read again for the answer.
      OPEN v_files SCROLL FOR EXECUTE format($q$
        SELECT f.path, f.size, (%s) AS wanted, m.lines, m.texts
        FROM files f
        %s
        %s
        WHERE f.workspace = $1 AND f.path >= $2 AND f.path < $3
        ORDER BY f.path
        LIMIT %s
      $q$, v_glob_ok, v_rel, format(v_matches, v_glob_ok), v_probe_files + 1)
      USING p_workspace, s.lo, s.hi, v_chunk_pattern, p_glob_basename OR s.exact, p_glob_regex, s.dir,
            p_pattern, p_limit, p_glob;
    END IF;
    PERFORM set_config('enable_sort', v_sort, true);
    IF v_indexed AND p_limit > 0 THEN
      -- The planner chose the trigram index, from a selectivity it estimates over every
      -- workspace of the table: a pattern rare in the table but in most files of this workspace
      -- fetched and sorted every matching chunk of it to return the first few (25–41 ms against
      -- 3–4 ms in path order, capped at 100). So the range is read in path order first, one file
      -- at a time: if the matches fill the cap, or the range ends, that is the answer, read
      -- again from the start of the cursor; the trigram query answers instead, for the whole
      -- scope, once fewer than a quarter of the files read had a match after 32 files or 256 kB
      -- (8 files when none matched), or after v_probe_files files or 8 MiB without the cap
      -- filled (found by review: big files first, or a selective glob, made a rare pattern read
      -- far more before it gave up). Every row returned comes from one statement (the cursor's,
      -- or the trigram query's), so from one snapshot. What a pattern in no file pays: 8 files.
      LOOP
        FETCH v_files INTO v_file;
        EXIT WHEN NOT FOUND; -- the range ended
        v_seen := v_seen + 1;
        IF v_file.lines IS NOT NULL THEN
          v_hits := v_hits + 1;
          v_left := v_left - least(v_left, cardinality(v_file.lines));
          EXIT WHEN v_left = 0; -- the cap is filled
        END IF;
        IF v_file.wanted THEN
          v_bytes := v_bytes + v_file.size;
        END IF;
        IF v_seen > v_probe_files OR v_bytes >= 8388608
           OR (v_hits * 4 < v_seen AND (v_seen >= 32 OR v_bytes >= 262144 OR (v_hits = 0 AND v_seen >= 8))) THEN
          v_switch := true;
          EXIT;
        END IF;
      END LOOP;
      IF NOT v_switch THEN
        MOVE ABSOLUTE 0 FROM v_files;
        v_left := p_limit;
      END IF;
    END IF;
    IF NOT v_switch THEN
      -- One file at a time (a FOR loop would fetch ten, reading past the file that fills the cap).
      WHILE v_left > 0 LOOP
        FETCH v_files INTO v_file;
        EXIT WHEN NOT FOUND;
        CONTINUE WHEN v_file.lines IS NULL;
        RETURN QUERY SELECT v_file.path, u.line, u.text
                     FROM unnest(v_file.lines, v_file.texts) AS u(line, text) LIMIT v_left;
        v_left := v_left - least(v_left, cardinality(v_file.lines));
      END LOOP;
      CLOSE v_files;
      RETURN;
    END IF;
    CLOSE v_files;
  END IF;
  RETURN QUERY EXECUTE v_query
  USING p_workspace, s.lo, s.hi, v_chunk_pattern, p_glob_basename OR s.exact, p_glob_regex, s.dir,
        p_pattern, p_limit, p_glob;
END
$$;

-- Down Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;

-- 0014's definition.
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
