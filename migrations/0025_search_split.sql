-- Up Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
--
-- Version 25: a streamed search read by two connections at once, each over its part of the scope.
--
-- Why (issue 14, item 2): a search the trigram index cannot narrow (a common literal uncapped, a
-- regex without trigrams) reads and tests every chunk of the scope, and one cursor does that on
-- one backend: one core. The machine this is measured on has two, and ripgrep uses both.
-- Measured on 100 MiB of C source (PostgreSQL 15, 2 cores), the path-order read of a common
-- literal: 0.60 s as one statement, 0.38-0.42 s as two over the halves of the scope at once.
--
-- What:
--   - fs_search_split(workspace, path, allow_exact, parts, min_bytes): the paths that cut the
--     scope's text files, in path order, into `parts` runs of about equal bytes; none when they
--     hold less than min_bytes in all (a small scope is read by one cursor). SECURITY INVOKER: it
--     sees the files the caller sees.
--   - fs_search_open takes the part of the scope its cursor reads, [p_from, p_to) (NULL: the
--     scope's own end), and says which query it opened (o_path_order: the scope read in path
--     order; false: the trigram query). Only a read in path order is worth a second connection:
--     the trigram query of each part would look up the same index entries again. The client opens one cursor per part, each on its own connection, in
--     REPEATABLE READ transactions that share one snapshot (pg_export_snapshot / SET TRANSACTION
--     SNAPSHOT), and hands their rows over part after part: the same rows in the same order as
--     one cursor over the whole scope. Each part still chooses its own query (0023: trigram or
--     path order, by the sample of its own first files).
--   - The path-order query reads a chunk's lines with string_to_table (see the comment there).
-- Released: never edit this file; add a new migration instead.

DROP FUNCTION fs_search_open(refcursor, text, text, boolean, text, text, boolean, text, boolean, boolean, text);

CREATE FUNCTION fs_search_open(p_cursor refcursor, p_workspace text, p_path text, p_allow_exact boolean,
                               p_glob text, p_glob_regex text, p_glob_basename boolean, p_pattern text,
                               p_regex boolean, p_ignore_case boolean, p_chunk_pattern text,
                               p_from text, p_to text, OUT o_cursor refcursor, OUT o_path_order boolean)
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT SET jit = off AS $$
DECLARE
  s record;
  v_cursor refcursor := p_cursor;
  v_like text := '%' || replace(replace(replace(p_pattern, '\', '\\'), '%', '\%'), '_', '\_') || '%';
  v_chunk_pattern text := CASE WHEN p_regex THEN '(?n)' || coalesce(p_chunk_pattern, p_pattern) ELSE v_like END;
  v_chunk_test text;
  v_line_test text;
  v_indexed_query text;
  v_path_query text;
  v_plan text;
  v_seen bigint;
  v_hits bigint;
  v_sort text;
  v_fraction text;
  v_lo text;
  v_hi text;
  -- The same texts as fs_search's (0022): the file's path relative to the scope (or its name),
  -- and the rows of the scope and glob, so both queries answer for the same files as it does.
  v_rel text := $f$CROSS JOIN LATERAL (SELECT CASE WHEN $5 THEN substr(f.path, length(f.path) - strpos(reverse(f.path), '/') + 2)
                                               ELSE substr(f.path, length($7) + 1) END AS rel) r$f$;
  v_in_scope text := $f$f.workspace = $1 AND f.path >= $2 AND f.path < $3 AND ($6 IS NULL OR r.rel = $9 OR r.rel ~ $6)$f$;
BEGIN
  IF p_cursor IS NULL THEN
    RAISE EXCEPTION 'fs_search_open: the cursor name is null' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  s := search_scope(p_workspace, p_path, p_allow_exact, '');
  -- The part of the scope this cursor reads: [p_from, p_to), either end NULL for the scope's own.
  v_lo := greatest(s.lo COLLATE "C", p_from);
  v_hi := least(s.hi COLLATE "C", p_to);
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

  v_indexed_query := format($q$
    SELECT c.path, (c.first_line + l.n - 1)::integer AS line, l.line AS text
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
  $q$, v_rel, v_in_scope, v_chunk_test, v_line_test);

  v_path_query := format($q$
    SELECT f.path, m.line, m.text
    FROM files f
    %s
    CROSS JOIN LATERAL (
      -- OFFSET 0: read per file, by the chunk set's key. Pulled up into the outer query, the
      -- planner joined every file to every candidate chunk of the trigram index (16 million
      -- comparisons for a word in a quarter of 6,300 files: 22 s instead of 0.2 under EXPLAIN
      -- ANALYZE).
      -- The lines by string_to_table, not chunk_lines (0010's array, kept for its row estimate,
      -- which this plan's shape does not depend on): a sixth less time for a common literal.
      SELECT (c.first_line + l.n - 1)::integer AS line, l.line AS text
      FROM chunks c
      CROSS JOIN LATERAL (SELECT t.line, t.n FROM string_to_table(c.content, E'\n') WITH ORDINALITY AS t(line, n)
                          UNION ALL
                          SELECT '', 1 WHERE c.content = '') l
      WHERE c.chunk_set = f.chunk_set AND %s AND %s
      OFFSET 0
    ) m
    WHERE %s
    ORDER BY f.path, m.line
  $q$, v_rel, v_chunk_test, v_line_test, v_in_scope);

  EXECUTE 'EXPLAIN (FORMAT JSON) ' || v_indexed_query INTO v_plan
  USING p_workspace, v_lo, v_hi, v_chunk_pattern, p_glob_basename OR s.exact, p_glob_regex, s.dir,
        p_pattern, p_glob;
  -- (The node's field, quoted: a pattern naming the index appears in the plan escaped.)
  IF position('"Index Name": "chunks_content_trgm_idx"' IN v_plan) > 0 THEN
    -- How dense the pattern is where the stream reads first: 32 to 63 text files under 256 kB
    -- spread evenly over the first 1,024 of the scope in path order (their rows of `files` read
    -- in the primary key's order; the text of the sampled ones, at most 16 MiB). Over the whole
    -- scope, the sample cost a scan and sort of every file of it: 8 ms of a rare literal's 11 on
    -- 6,300 files.
    EXECUTE format($q$
      SELECT count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM chunks c WHERE c.chunk_set = p.chunk_set AND %s))
      FROM (
        SELECT f.chunk_set, row_number() OVER () AS n, count(*) OVER () AS total
        FROM (
          SELECT f.chunk_set
          FROM files f
          %s
          WHERE %s AND f.chunk_set IS NOT NULL AND f.size <= 262144
          ORDER BY f.path
          LIMIT 1024
        ) f
      ) p
      WHERE (p.n - 1) %% greatest(1, p.total / 32) = 0
    $q$, v_chunk_test, v_rel, v_in_scope) INTO v_seen, v_hits
    USING p_workspace, v_lo, v_hi, v_chunk_pattern, p_glob_basename OR s.exact, p_glob_regex, s.dir,
          p_pattern, p_glob;
    -- (No file sampled: every file of the range is over 256 kB, or the range is empty; the
    -- planner's choice stands, rather than a path-order read of big files for a sparse pattern.)
    IF v_seen = 0 OR v_hits * 4 < v_seen THEN
      -- Planned for all its rows, as the EXPLAIN above was: a cursor is otherwise planned for its
      -- first tenth (cursor_tuple_fraction), and the planner then walks the scope in path order
      -- with the index unused (measured: 202 ms against 27 for a word in 7% of a 20 MiB tree).
      v_fraction := current_setting('cursor_tuple_fraction');
      PERFORM set_config('cursor_tuple_fraction', '1', true);
      OPEN v_cursor NO SCROLL FOR EXECUTE v_indexed_query
      USING p_workspace, v_lo, v_hi, v_chunk_pattern, p_glob_basename OR s.exact, p_glob_regex, s.dir,
            p_pattern, p_glob;
      PERFORM set_config('cursor_tuple_fraction', v_fraction, true);
      o_cursor := v_cursor;
      o_path_order := false;
      RETURN;
    END IF;
  END IF;
  v_sort := current_setting('enable_sort');
  PERFORM set_config('enable_sort', 'off', true);
  OPEN v_cursor NO SCROLL FOR EXECUTE v_path_query
  USING p_workspace, v_lo, v_hi, v_chunk_pattern, p_glob_basename OR s.exact, p_glob_regex, s.dir,
        p_pattern, p_glob;
  PERFORM set_config('enable_sort', v_sort, true);
  o_cursor := v_cursor;
  o_path_order := true;
  RETURN;
END
$$;

-- The paths that cut the text of the scope into p_parts runs of about equal bytes, in path order
-- (each boundary is the first path of the run it starts); empty when the scope holds less than
-- p_min_bytes of text, or p_parts < 2. Reads `files` only (sizes), in path order by its key.
CREATE FUNCTION fs_search_split(p_workspace text, p_path text, p_allow_exact boolean, p_parts integer,
                                p_min_bytes bigint)
RETURNS text[]
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT SET jit = off AS $$
DECLARE
  s record;
  v_bounds text[];
BEGIN
  IF p_parts IS NULL OR p_parts < 2 THEN
    RETURN '{}';
  END IF;
  s := search_scope(p_workspace, p_path, p_allow_exact, '');
  SELECT coalesce(array_agg(b.path ORDER BY b.path), '{}') INTO v_bounds
  FROM (
    SELECT min(r.path COLLATE "C") AS path
    FROM (
      SELECT f.path, sum(f.size) OVER (ORDER BY f.path ROWS UNBOUNDED PRECEDING) - f.size AS before,
             sum(f.size) OVER () AS total
      FROM files f
      WHERE f.workspace = p_workspace AND f.path >= s.lo AND f.path < s.hi AND f.chunk_set IS NOT NULL
    ) r
    WHERE r.total >= p_min_bytes AND r.before > 0
    GROUP BY floor(r.before * p_parts / r.total)
    HAVING floor(r.before * p_parts / r.total) > 0
  ) b;
  RETURN v_bounds;
END
$$;

-- Down Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
DROP FUNCTION fs_search_split(text, text, boolean, integer, bigint);
DROP FUNCTION fs_search_open(refcursor, text, text, boolean, text, text, boolean, text, boolean, boolean, text, text, text);
-- 0023's
CREATE FUNCTION fs_search_open(p_cursor refcursor, p_workspace text, p_path text, p_allow_exact boolean,
                               p_glob text, p_glob_regex text, p_glob_basename boolean, p_pattern text,
                               p_regex boolean, p_ignore_case boolean, p_chunk_pattern text)
RETURNS refcursor
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT SET jit = off AS $$
DECLARE
  s record;
  v_cursor refcursor := p_cursor;
  v_like text := '%' || replace(replace(replace(p_pattern, '\', '\\'), '%', '\%'), '_', '\_') || '%';
  v_chunk_pattern text := CASE WHEN p_regex THEN '(?n)' || coalesce(p_chunk_pattern, p_pattern) ELSE v_like END;
  v_chunk_test text;
  v_line_test text;
  v_indexed_query text;
  v_path_query text;
  v_plan text;
  v_seen bigint;
  v_hits bigint;
  v_sort text;
  v_fraction text;
  -- The same texts as fs_search's (0022): the file's path relative to the scope (or its name),
  -- and the rows of the scope and glob, so both queries answer for the same files as it does.
  v_rel text := $f$CROSS JOIN LATERAL (SELECT CASE WHEN $5 THEN substr(f.path, length(f.path) - strpos(reverse(f.path), '/') + 2)
                                               ELSE substr(f.path, length($7) + 1) END AS rel) r$f$;
  v_in_scope text := $f$f.workspace = $1 AND f.path >= $2 AND f.path < $3 AND ($6 IS NULL OR r.rel = $9 OR r.rel ~ $6)$f$;
BEGIN
  IF p_cursor IS NULL THEN
    RAISE EXCEPTION 'fs_search_open: the cursor name is null' USING ERRCODE = 'null_value_not_allowed';
  END IF;
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

  v_indexed_query := format($q$
    SELECT c.path, (c.first_line + l.n - 1)::integer AS line, l.line AS text
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
  $q$, v_rel, v_in_scope, v_chunk_test, v_line_test);

  v_path_query := format($q$
    SELECT f.path, m.line, m.text
    FROM files f
    %s
    CROSS JOIN LATERAL (
      -- OFFSET 0: read per file, by the chunk set's key. Pulled up into the outer query, the
      -- planner joined every file to every candidate chunk of the trigram index (16 million
      -- comparisons for a word in a quarter of 6,300 files: 22 s instead of 0.2 under EXPLAIN
      -- ANALYZE).
      SELECT (c.first_line + l.n - 1)::integer AS line, l.line AS text
      FROM chunks c
      CROSS JOIN LATERAL chunk_lines(c.content) l
      WHERE c.chunk_set = f.chunk_set AND %s AND %s
      OFFSET 0
    ) m
    WHERE %s
    ORDER BY f.path, m.line
  $q$, v_rel, v_chunk_test, v_line_test, v_in_scope);

  EXECUTE 'EXPLAIN (FORMAT JSON) ' || v_indexed_query INTO v_plan
  USING p_workspace, s.lo, s.hi, v_chunk_pattern, p_glob_basename OR s.exact, p_glob_regex, s.dir,
        p_pattern, p_glob;
  -- (The node's field, quoted: a pattern naming the index appears in the plan escaped.)
  IF position('"Index Name": "chunks_content_trgm_idx"' IN v_plan) > 0 THEN
    -- How dense the pattern is where the stream reads first: 32 to 63 text files under 256 kB
    -- spread evenly over the first 1,024 of the scope in path order (their rows of `files` read
    -- in the primary key's order; the text of the sampled ones, at most 16 MiB). Over the whole
    -- scope, the sample cost a scan and sort of every file of it: 8 ms of a rare literal's 11 on
    -- 6,300 files.
    EXECUTE format($q$
      SELECT count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM chunks c WHERE c.chunk_set = p.chunk_set AND %s))
      FROM (
        SELECT f.chunk_set, row_number() OVER () AS n, count(*) OVER () AS total
        FROM (
          SELECT f.chunk_set
          FROM files f
          %s
          WHERE %s AND f.chunk_set IS NOT NULL AND f.size <= 262144
          ORDER BY f.path
          LIMIT 1024
        ) f
      ) p
      WHERE (p.n - 1) %% greatest(1, p.total / 32) = 0
    $q$, v_chunk_test, v_rel, v_in_scope) INTO v_seen, v_hits
    USING p_workspace, s.lo, s.hi, v_chunk_pattern, p_glob_basename OR s.exact, p_glob_regex, s.dir,
          p_pattern, p_glob;
    -- (No file sampled: every file of the range is over 256 kB, or the range is empty; the
    -- planner's choice stands, rather than a path-order read of big files for a sparse pattern.)
    IF v_seen = 0 OR v_hits * 4 < v_seen THEN
      -- Planned for all its rows, as the EXPLAIN above was: a cursor is otherwise planned for its
      -- first tenth (cursor_tuple_fraction), and the planner then walks the scope in path order
      -- with the index unused (measured: 202 ms against 27 for a word in 7% of a 20 MiB tree).
      v_fraction := current_setting('cursor_tuple_fraction');
      PERFORM set_config('cursor_tuple_fraction', '1', true);
      OPEN v_cursor NO SCROLL FOR EXECUTE v_indexed_query
      USING p_workspace, s.lo, s.hi, v_chunk_pattern, p_glob_basename OR s.exact, p_glob_regex, s.dir,
            p_pattern, p_glob;
      PERFORM set_config('cursor_tuple_fraction', v_fraction, true);
      RETURN v_cursor;
    END IF;
  END IF;
  v_sort := current_setting('enable_sort');
  PERFORM set_config('enable_sort', 'off', true);
  OPEN v_cursor NO SCROLL FOR EXECUTE v_path_query
  USING p_workspace, s.lo, s.hi, v_chunk_pattern, p_glob_basename OR s.exact, p_glob_regex, s.dir,
        p_pattern, p_glob;
  PERFORM set_config('enable_sort', v_sort, true);
  RETURN v_cursor;
END
$$;
