-- Up Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
--
-- Version 23: a search streamed through a cursor (grepStream / searchStream).
--
-- Why (issue 14, item 3): fs_search is a PL/pgSQL set-returning function, and the server keeps
-- every row such a function returns (a tuplestore) until it ends, so an uncapped search of a
-- 150 MB workspace answered nothing before it had found everything, and the client then held it
-- all. A cursor hands rows over as the plan produces them; the client fetches them in batches.
--
-- What: fs_search_open(cursor, ...) takes fs_search's arguments without the cap and opens the
-- named cursor (NO SCROLL; it lives until the caller's transaction ends) over every matching
-- line of the scope, ordered by path and line as fs_search orders them. Which query it opens:
--   - The trigram query (fs_search's, uncapped: candidate chunks from the index, sorted) when
--     the planner chooses the index for it and the pattern is sparse where the stream starts:
--     of 32 to 63 text files under 256 kB spread evenly over the first 1,024 of the scope in
--     path order, fewer than a quarter have a matching chunk (or there is no such file). Its sort waits for every candidate,
--     which for a sparse pattern is little. It is opened planned for all its rows
--     (cursor_tuple_fraction 1, for the OPEN only): planned for its first tenth, as a cursor
--     is by default, it walked the scope in path order with the index unused (a word in 7% of a
--     20 MiB tree: 202 ms instead of 27).
--   - Otherwise the scope read in path order, file by file (each file's chunks looked up by its
--     chunk set, its matching lines sorted on their own: planned with enable_sort off, for the
--     OPEN only, an Incremental Sort over the path order, never one sort of the whole result):
--     the first row arrives once the first matching file is read, whatever the pattern's
--     density or the planner's estimate of it.
-- The sample's rows are not kept: the cursor reads them again. One cursor is one statement: one
-- snapshot.
-- SECURITY INVOKER, like fs_search: the cursor reads as the caller, under row-level security.
-- Released: never edit this file; add a new migration instead.

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

-- The chunk test, its operators named in pg_catalog. It is unpinned (a per-call SET would cost
-- every chunk), which was safe while it ran only inside pinned callers; a stream's cursor runs it
-- at FETCH time under the caller's search_path, where an operator `~~(text, text)` of a schema
-- listed before pg_catalog would have been taken instead (found by review: the stream of a
-- session so set returned nothing). Only the caller's own session was affected (the cursor runs
-- as the caller), but a search must not depend on the session's settings.
CREATE OR REPLACE FUNCTION chunk_matches(p_content text, p_test text, p_regex boolean, p_ignore_case boolean)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE COST 1000 AS $$
BEGIN
  IF p_regex THEN
    RETURN CASE WHEN p_ignore_case THEN p_content OPERATOR(pg_catalog.~*) p_test
                ELSE p_content OPERATOR(pg_catalog.~) p_test END;
  END IF;
  RETURN CASE WHEN p_ignore_case THEN p_content OPERATOR(pg_catalog.~~*) p_test
              ELSE p_content OPERATOR(pg_catalog.~~) p_test END;
END
$$;

-- Down Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
DROP FUNCTION fs_search_open(refcursor, text, text, boolean, text, text, boolean, text, boolean, boolean, text);
CREATE OR REPLACE FUNCTION chunk_matches(p_content text, p_test text, p_regex boolean, p_ignore_case boolean)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE COST 1000 AS $$
BEGIN
  IF p_regex THEN
    RETURN CASE WHEN p_ignore_case THEN p_content ~* p_test ELSE p_content ~ p_test END;
  END IF;
  RETURN CASE WHEN p_ignore_case THEN p_content ILIKE p_test ELSE p_content LIKE p_test END;
END
$$;
