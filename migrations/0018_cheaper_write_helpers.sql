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
--    themselves took 409 ms with it, 401 re-planned; a 10 KB write 2.25 ms instead of 2.93.
-- Released: never edit this file; add a new migration instead.

ALTER FUNCTION file_body(text, bytea) STABLE;
ALTER FUNCTION file_text(text, bigint) RESET search_path;

ALTER FUNCTION chunks_update() SET plan_cache_mode = force_generic_plan;

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

ALTER FUNCTION chunks_update() SET plan_cache_mode = force_custom_plan;
ALTER FUNCTION file_text(text, bigint) SET search_path FROM CURRENT;
ALTER FUNCTION file_body(text, bytea) IMMUTABLE;
