-- Up Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
--
-- Version 6: a regex search answers line by line, as JavaScript does (issue 11 of the project's
-- tracker, item 6). 0003's chunk test ran the line pattern itself over a chunk -- many lines
-- joined by \n -- in newline-sensitive mode. That keeps `.`, `[^...]`, `^` and `$` inside a line,
-- but not lookarounds: for the line "xfoo" followed by "bar", `foo(?!\s)` matches the line (its
-- end is not white space) but not the chunk (the next character is the \n), so the chunk, and
-- the matching line, were dropped.
--
-- The chunk test now takes its own pattern, p_chunk_pattern (src/regex.ts: the line pattern with
-- every lookaround removed), which matches every chunk holding a line the line pattern matches;
-- the line test still runs the real pattern on each line. Without one (grep, literals), the chunk
-- test is the pattern, as before. The trigram index answers the chunk test as before.
-- Released: never edit this file; add a new migration instead.

DROP FUNCTION fs_search(text, text, boolean, text, text, boolean, text, boolean, boolean, bigint);

-- 0003's fs_search with the chunk pattern. The default keeps fs_grep's 10-argument call as is.
CREATE FUNCTION fs_search(p_workspace text, p_path text, p_allow_exact boolean, p_glob text,
                          p_glob_regex text, p_glob_basename boolean, p_pattern text,
                          p_regex boolean, p_ignore_case boolean, p_limit bigint,
                          p_chunk_pattern text DEFAULT NULL)
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
        CASE WHEN p_regex THEN '(?n)' || coalesce(p_chunk_pattern, p_pattern) ELSE v_like END,
        p_glob_basename OR s.exact, p_glob_regex, s.dir, p_pattern, p_limit, p_glob;
END
$$;

-- Down Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;

-- 0003's fs_search, verbatim (pinned to `<schema>, pg_temp` like every function since 0005).
DROP FUNCTION fs_search(text, text, boolean, text, text, boolean, text, boolean, boolean, bigint, text);
CREATE FUNCTION fs_search(p_workspace text, p_path text, p_allow_exact boolean, p_glob text,
                          p_glob_regex text, p_glob_basename boolean, p_pattern text,
                          p_regex boolean, p_ignore_case boolean, p_limit bigint)
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
