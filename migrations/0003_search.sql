-- Up Migration
--
-- search(): grep beyond the protocol — case-insensitive literals and regular expressions (ARE,
-- translated from JavaScript syntax by the driver). The whole-file prefilter is the trigram
-- index (pg_trgm answers ILIKE, ~ and ~*); lines are matched in path order and LIMIT stops early.
-- The content prefilter runs the regex in newline-sensitive mode ((?n): ^ and $ at line breaks,
-- . and [^...] never cross one), so it accepts every file where some line matches.
-- Released: never edit this file; add a new migration instead.

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

-- Down Migration

DROP FUNCTION fs_search(text, text, boolean, text, text, boolean, text, boolean, boolean, bigint);
