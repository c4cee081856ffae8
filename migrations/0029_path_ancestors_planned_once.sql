-- Up Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
--
-- Version 29: path_ancestors without a query planned on every call.
--
-- 0005's path_ancestors is a SQL function whose body is a sub-select (ARRAY(SELECT ...)), which
-- PostgreSQL never inlines: every call ran it as a query of its own, planned anew. fs_write calls
-- it once per write (its parent-is-a-file check), the flush once per created file, fs_mkdir and
-- fs_move too: 74 us of the 0.66 ms fs_write took (track_functions, one pgbench client,
-- synchronous_commit off; BENCHMARKS.md). The same loop in PL/pgSQL takes 6 us: its expressions
-- are simple ones, evaluated without the executor. Same results ('/a/b/c' -> {/a,/a/b}; '/', '/a'
-- and '' -> {}), still IMMUTABLE STRICT PARALLEL SAFE, and still a pure helper without a pinned
-- search_path (SECURITY.md): every name in it is pg_catalog's, qualified, types included, so a
-- caller's temporary objects cannot stand in for one (functions and operators are never looked up
-- in pg_temp; types would be).
-- Released: never edit this file; add a new migration instead.

CREATE OR REPLACE FUNCTION path_ancestors(p_path text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  v_parts pg_catalog.text[] := pg_catalog.string_to_array(p_path, '/');
  v_dirs pg_catalog.text[] := '{}';
BEGIN
  FOR i IN 2 .. pg_catalog.cardinality(v_parts) - 1 LOOP
    v_dirs := v_dirs || pg_catalog.array_to_string(v_parts[1:i], '/');
  END LOOP;
  RETURN v_dirs;
END
$$;

-- Down Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;

-- 0005's.
CREATE OR REPLACE FUNCTION path_ancestors(p_path text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE RETURN
  ARRAY(SELECT array_to_string(s.parts[1:i], '/')
        FROM (SELECT string_to_array(p_path, '/') AS parts) s
        CROSS JOIN generate_series(2, cardinality(s.parts) - 1) AS i
        ORDER BY i);
