-- Up Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
--
-- Version 18: the small helpers every write calls, made cheap to call.
--
-- Why (pg_stat_user_functions over 300 writes and edits of a 10 KB file, BENCHMARKS.md "Cost of
-- the write paths"): a SQL function that is not inlined is planned again on every call, and four
-- of ours were not inlined, or were SQL where PL/pgSQL would keep its plan:
-- 1. file_body (the bytes of a text or binary body) was declared IMMUTABLE around convert_to,
--    which is STABLE: the planner inlines no function whose body is more volatile than declared,
--    so each use was a call (12 us; history uses two per retired version). Now STABLE: inlined.
-- 2. file_text (a row's text, inline or its chunk set's) pinned search_path, and the planner
--    inlines no function with a SET clause. Its body is SQL-standard (RETURN ...): names in it
--    are bound when it is created, the only one (chunk_set_text, pinned itself) qualified, so the
--    pin protected nothing. Reset: inlined. (15 us a call; edits and history call it.)
-- 3. history_enabled, once per changed row, called history_policy, which read the schema's and
--    the workspace's settings in two statements: now one statement each (20 us -> measured in
--    BENCHMARKS.md).
-- 4. changes_channel, once per workspace at every commit, was a SQL function with a pinned
--    search_path (it must be pinned: current_schema() names the channel), planned on every call
--    (about 50 us): now PL/pgSQL, whose expression is prepared once per session.
-- 5. chunks_update re-planned its statements on every write (0016 gave it force_custom_plan, as
--    the other statement triggers): 0.7 ms of a 10 KB write, which went from 2.4 ms at 0015 to
--    3.2 at 0016 (history off, measured side by side). It now keeps one plan per session: each of
--    its statements is linear in the rows whatever the plan (key probes per set, set differences
--    hashed or sorted), so a plan made for one row serves 2,000 — an upload of 2,000 files over
--    themselves took 409 ms with it, 401 re-planned; a 10 KB write 2.25 ms instead of 2.93. One
--    statement was not: it picked the new rows of the sets to re-cut with `= ANY (v_sets)`,
--    which a generic plan cannot hash (the array is a parameter): rows x sets comparisons, 372
--    ms for 16,000 files against 6 (found by review). The sets' texts are now taken in the
--    statement that picks the sets, and the cut reads them from the arrays.
-- Released: never edit this file; add a new migration instead.

ALTER FUNCTION file_body(text, bytea) STABLE;
ALTER FUNCTION file_text(text, bigint) RESET search_path;

-- (and takes each set's text in the statement that picks the sets: see 5 above)
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


CREATE OR REPLACE FUNCTION history_policy(p_workspace text, OUT enabled boolean, OUT keep_versions integer, OUT keep_days integer)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path FROM CURRENT
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
BEGIN
  -- The workspace's setting where it has one; its retention only if it sets one of the two.
  SELECT coalesce(w.enabled, d.enabled, true),
         CASE WHEN w.keep_versions IS NOT NULL OR w.keep_days IS NOT NULL THEN w.keep_versions ELSE d.keep_versions END,
         CASE WHEN w.keep_versions IS NOT NULL OR w.keep_days IS NOT NULL THEN w.keep_days ELSE d.keep_days END
    INTO enabled, keep_versions, keep_days
  FROM (SELECT) x
  LEFT JOIN history_settings d ON d.scope = ''
  LEFT JOIN history_settings w ON w.scope = p_workspace;
END
$function$;

CREATE OR REPLACE FUNCTION history_enabled(p_workspace text)
 RETURNS boolean
 LANGUAGE plpgsql
 STABLE
 SET search_path FROM CURRENT
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
BEGIN
  RETURN coalesce((SELECT s.enabled FROM history_settings s WHERE s.scope = p_workspace),
                  (SELECT s.enabled FROM history_settings s WHERE s.scope = ''), true);
END
$function$;

CREATE OR REPLACE FUNCTION changes_channel(p_workspace text)
 RETURNS text
 LANGUAGE plpgsql
 STABLE
 SET search_path FROM CURRENT
AS $function$
BEGIN
  -- The schema's name (cut to 20 characters: NOTIFY channels are identifiers, 63 bytes at most)
  -- and a digest of schema and workspace: a workspace's own channel, whatever its name.
  RETURN left(current_schema()::text, 20) || '.changes.'
         || left(encode(sha256(convert_to(current_schema()::text || E'\n' || p_workspace, 'UTF8')), 'hex'), 32);
END
$function$;

-- Down Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;

CREATE OR REPLACE FUNCTION changes_channel(p_workspace text) RETURNS text
LANGUAGE sql STABLE SET search_path FROM CURRENT
RETURN left(current_schema()::text, 20) || '.changes.'
       || left(encode(sha256(convert_to(current_schema()::text || E'\n' || p_workspace, 'UTF8')), 'hex'), 32);

CREATE OR REPLACE FUNCTION history_enabled(p_workspace text)
 RETURNS boolean
 LANGUAGE plpgsql
 STABLE
 SET search_path FROM CURRENT
AS $function$
BEGIN
  RETURN (history_policy(p_workspace)).enabled;
END
$function$;

CREATE OR REPLACE FUNCTION history_policy(p_workspace text, OUT enabled boolean, OUT keep_versions integer, OUT keep_days integer)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path FROM CURRENT
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
  d history_settings;
  w history_settings;
BEGIN
  SELECT * INTO d FROM history_settings s WHERE s.scope = '';
  SELECT * INTO w FROM history_settings s WHERE s.scope = p_workspace;
  enabled := coalesce(w.enabled, d.enabled, true);
  IF w.keep_versions IS NOT NULL OR w.keep_days IS NOT NULL THEN
    keep_versions := w.keep_versions;
    keep_days := w.keep_days;
  ELSE
    keep_versions := d.keep_versions;
    keep_days := d.keep_days;
  END IF;
END
$function$;

CREATE OR REPLACE FUNCTION chunks_update()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
DECLARE
  v_sets bigint[];
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
  SELECT array_agg(g.chunk_set) INTO v_sets
  FROM (
    SELECT u.chunk_set
    FROM (SELECT n.chunk_set, n.hash, true AS is_new FROM new_rows n
          WHERE n.chunk_set IS NOT NULL AND n.content IS NOT NULL
          UNION ALL
          SELECT o.chunk_set, o.hash, false FROM old_rows o WHERE o.chunk_set IS NOT NULL) u
    GROUP BY u.chunk_set
    HAVING bool_or(u.is_new)
       AND NOT (array_agg(u.hash) FILTER (WHERE u.is_new)
                <@ coalesce(array_agg(u.hash) FILTER (WHERE NOT u.is_new), '{}'))
  ) g;
  IF v_sets IS NOT NULL THEN
    SELECT array_agg(s.chunk_set), array_agg(c.first_line), array_agg(c.line_count), array_agg(c.content)
      INTO v_cut_sets, v_cut_first_lines, v_cut_line_counts, v_cut_contents
    FROM (SELECT DISTINCT ON (n.chunk_set) n.chunk_set, n.content
          FROM new_rows n WHERE n.chunk_set = ANY (v_sets) AND n.content IS NOT NULL
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
  -- Sets left unused, if any (most writes re-cut their set in place and leave none: no call).
  SELECT array_agg(g.chunk_set) INTO v_gone
  FROM (SELECT o.chunk_set FROM old_rows o EXCEPT SELECT n.chunk_set FROM new_rows n) g;
  IF v_gone IS NOT NULL THEN
    PERFORM chunks_collect(v_gone);
  END IF;
  RETURN NULL;
END
$function$;

ALTER FUNCTION file_text(text, bigint) SET search_path FROM CURRENT;
ALTER FUNCTION file_body(text, bytea) IMMUTABLE;
