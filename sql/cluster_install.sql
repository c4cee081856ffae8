-- On the proxy database of a cluster, in the transaction of sql/cluster_scope.sql (which set the
-- definition, src/postgres/cluster/install.ts): PL/Proxy's cluster (a SQL/MED server named after
-- the schema, one option pN per partition, a user mapping for PUBLIC without a user, so each role
-- reaches the partitions as itself) and, in the schema, one function per function of the
-- partitions' schema that the package calls, with the same name, arguments and result. Each runs
-- its original on the partition that holds the workspace:
--   workspace  on hashtext(p_workspace) (or p_source / p_scope): the workspace's partition;
--   fork       both workspaces must be on one partition: PL/Proxy's RUN ON function
--              (cluster_fork_route) refuses two (DA020: a fork across partitions would be two
--              transactions, and PL/Proxy has no two-phase commit);
--   or-all     NULL (or '' for set_history's scope) means every workspace: run on all partitions
--              and merge (sum of counts, bool_or of booleans); otherwise as "workspace";
--   all        on all partitions, merged the same way.
-- The writer's tag (sql/set_tag.sql) is a setting of the proxy's transaction, which the partition
-- never sees: each call passes it along and sets it in the partition's transaction before the
-- original runs (set_config(), evaluated as part of the routed argument, so before the call).
-- A partition commits each call on its own: the proxy adds no transaction across calls.
-- Every function made here carries the comment 'deepagents-backends proxy'; installing again
-- drops those first, so an upgrade (new migrations on the partitions) replaces them all.
-- migrations mirrors the partitions' migrations table: the backend checks the schema as usual.
DO $install$
DECLARE
  v_def     jsonb := current_setting('deepagents_backends.cluster')::jsonb;
  v_schema  name := v_def->>'schema';
  v_server  name := v_schema; -- the SQL/MED server is named after the schema
  v_count   int := jsonb_array_length(v_def->'partitions');
  v_mark    text := 'deepagents-backends proxy';
  -- (a digest: two schemas with one long prefix must not share a guard)
  v_guard   name := 'deepagents_cluster_mappings_' || left(md5(v_schema), 24);
  v_options text;
  v_had     int;
  v_cluster text;
  v_route   text;
  v_arg     text;
  v_merge   text;
  v_body    text;
  v_calls   text;
  v_returns text;
  v_lock    text;
  v_tag     text := 'coalesce(pg_catalog.current_setting(''deepagents_backends.tag'', true), '''')';
  v_made    text[] := '{}';
  f         record;
  -- Every function the package calls (sql/*.sql): name, route, routing argument.
  v_routes  text[] := ARRAY[
    'changes_channel workspace p_workspace', 'fs_changes workspace p_workspace',
    'fs_changes_head workspace p_workspace', 'fs_checkpoint workspace p_workspace',
    'fs_checkpoints workspace p_workspace', 'fs_delete workspace p_workspace',
    'fs_delete_checkpoint workspace p_workspace', 'fs_diff workspace p_workspace',
    'fs_download workspace p_workspace', 'fs_edit workspace p_workspace',
    'fs_glob workspace p_workspace', 'fs_grep workspace p_workspace',
    'fs_history workspace p_workspace', 'fs_is_directory workspace p_workspace',
    'fs_ls workspace p_workspace', 'fs_mkdir workspace p_workspace',
    'fs_move workspace p_workspace', 'fs_read workspace p_workspace',
    'fs_read_raw workspace p_workspace', 'fs_read_version workspace p_workspace',
    'fs_restore workspace p_workspace', 'fs_rewind workspace p_workspace',
    'fs_search workspace p_workspace', 'fs_stat workspace p_workspace',
    'fs_upload workspace p_workspace', 'fs_write workspace p_workspace',
    'history_policy workspace p_workspace',
    'fs_fork fork p_source',
    'grant_workspace or-all p_workspace', 'revoke_workspace or-all p_workspace',
    'prune_history or-all p_workspace', 'set_history or-all p_scope',
    'prune_changes all', 'prune_chunks all'];
BEGIN
  PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('deepagents-backends:cluster:' || v_schema));
  -- PL/Proxy adds user=<current_user> only when "user=" is nowhere in a partition's options.
  IF EXISTS (SELECT 1 FROM jsonb_array_elements_text(v_def->'partitions') AS t(p) WHERE strpos(t.p, 'user=') > 0) THEN
    RAISE EXCEPTION 'a partition''s options contain "user=": every role would reach it as one user';
  END IF;
  CREATE EXTENSION IF NOT EXISTS plproxy;

  SELECT string_agg(format('%s %L', 'p' || (i - 1), p), ', ' ORDER BY i) INTO v_options
  FROM jsonb_array_elements_text(v_def->'partitions') WITH ORDINALITY AS t(p, i);
  SELECT count(*) INTO v_had
  FROM pg_catalog.pg_foreign_server s, pg_catalog.pg_options_to_table(s.srvoptions) o
  WHERE s.srvname = v_server AND o.option_name ~ '^p[0-9]+$';
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_foreign_server WHERE srvname = v_server) THEN
    EXECUTE format('CREATE SERVER %I FOREIGN DATA WRAPPER plproxy OPTIONS (%s)', v_server, v_options);
  ELSIF v_had <> v_count AND NOT (coalesce((v_def->>'split')::boolean, false) AND v_count = 2 * v_had) THEN
    RAISE EXCEPTION USING ERRCODE = 'DA021',
      MESSAGE = format('cluster %s has %s partitions, not %s: changing the number of partitions moves workspaces between them (splitCluster() doubles it)',
                       v_server, v_had, v_count);
  ELSE
    -- The same partitions, maybe at new addresses (a partition moved to another server); or, from
    -- splitCluster() (src/postgres/cluster/split.ts), twice as many: the new ones added.
    SELECT string_agg(format('%s %s %L', CASE WHEN i <= v_had THEN 'SET' ELSE 'ADD' END, 'p' || (i - 1), p), ', ' ORDER BY i)
    INTO v_options
    FROM jsonb_array_elements_text(v_def->'partitions') WITH ORDINALITY AS t(p, i);
    EXECUTE format('ALTER SERVER %I OPTIONS (%s)', v_server, v_options);
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_user_mappings WHERE srvname = v_server AND usename = 'public') THEN
    EXECUTE format('CREATE USER MAPPING FOR PUBLIC SERVER %I', v_server);
  END IF;
  EXECUTE format('GRANT USAGE ON FOREIGN SERVER %I TO PUBLIC', v_server);
  v_cluster := format('CLUSTER %L;', v_server);

  EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', v_schema);
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO PUBLIC', v_schema);
  -- USAGE on a server also lets a role make a user mapping of its own, which PL/Proxy would
  -- prefer to PUBLIC's: one naming user 'postgres' would reach the partitions as that user
  -- (under trust, or with the front's ~/.pgpass). Only a superuser or a member of the server's
  -- owner may make or change a user mapping of a PL/Proxy server in this database.
  EXECUTE format($f$CREATE OR REPLACE FUNCTION %I.cluster_mappings_guard() RETURNS event_trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $b$
    DECLARE
      v_server name;
    BEGIN
      SELECT s.srvname INTO v_server
      FROM pg_event_trigger_ddl_commands() c
      -- (pg_user_mappings: the view any role may read; the table holds passwords)
      JOIN pg_user_mappings m ON c.classid = 'pg_user_mapping'::regclass AND m.umid = c.objid
      JOIN pg_foreign_server s ON s.oid = m.srvid
      JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw AND w.fdwname = 'plproxy'
      WHERE NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user)
        AND NOT pg_has_role(current_user, s.srvowner, 'USAGE')
      LIMIT 1;
      IF v_server IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
          MESSAGE = format('only the owner of PL/Proxy cluster %%s makes its user mappings: each role reaches the partitions as itself', v_server);
      END IF;
    END $b$$f$, v_schema);
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = v_guard) THEN
    EXECUTE format($f$CREATE EVENT TRIGGER %I ON ddl_command_end
      WHEN TAG IN ('CREATE USER MAPPING', 'ALTER USER MAPPING') EXECUTE FUNCTION %I.cluster_mappings_guard()$f$,
      v_guard, v_schema);
  END IF;
  FOR f IN SELECT p.oid::regprocedure AS signature
           FROM pg_catalog.pg_proc p
           WHERE p.pronamespace = quote_ident(v_schema)::regnamespace AND pg_catalog.obj_description(p.oid, 'pg_proc') = v_mark LOOP
    EXECUTE format('DROP FUNCTION %s', f.signature);
  END LOOP;

  EXECUTE format('CREATE TABLE IF NOT EXISTS %I.migrations (id serial PRIMARY KEY, name varchar(255) NOT NULL, run_on timestamp NOT NULL)', v_schema);
  -- (initialize() of any role reads it: the names of migrations are all it holds)
  EXECUTE format('GRANT SELECT ON %I.migrations TO PUBLIC', v_schema);
  EXECUTE format('DELETE FROM %I.migrations', v_schema);
  EXECUTE format('INSERT INTO %I.migrations (name, run_on) SELECT m.name, m.run_on FROM jsonb_to_recordset(%L::jsonb) AS m(name text, run_on timestamp) ORDER BY m.run_on, m.name',
                 v_schema, v_def->'migrations');

  -- Which partition holds a workspace (PL/Proxy's own mapping: hashtext & (count - 1)), and
  -- its connection options: watch() and streamed searches connect there (src/postgres/cluster/).
  EXECUTE format($f$CREATE FUNCTION %1$I.cluster_partition(p_workspace text, OUT partition int, OUT options text)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $b$
      SELECT h.i, o.option_value
      FROM (SELECT pg_catalog.hashtext(p_workspace) & %2$s) AS h(i),
           pg_catalog.pg_foreign_server s, pg_catalog.pg_options_to_table(s.srvoptions) o
      WHERE s.srvname = %3$L AND o.option_name = 'p' || h.i::text
    $b$$f$, v_schema, v_count - 1, v_server);
  EXECUTE format('COMMENT ON FUNCTION %I.cluster_partition(text) IS %L', v_schema, v_mark);
  -- A fork's route (PL/Proxy's RUN ON, so a direct call of the proxy cannot skip it): the
  -- source's partition, when the target's is the same; DA020 otherwise.
  EXECUTE format($f$CREATE FUNCTION %1$I.cluster_fork_route(p_source text, p_target text) RETURNS integer
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $b$
    BEGIN
      IF (hashtext(p_source) & %2$s) <> (hashtext(p_target) & %2$s) THEN
        RAISE EXCEPTION USING ERRCODE = 'DA020',
          MESSAGE = format('workspaces %%s and %%s are on different partitions of the cluster', p_source, p_target);
      END IF;
      RETURN hashtext(p_source);
    END $b$$f$, v_schema, v_count - 1);
  EXECUTE format('COMMENT ON FUNCTION %I.cluster_fork_route(text, text) IS %L', v_schema, v_mark);

  FOR f IN
    SELECT s.*, r.route, r.arg
    FROM jsonb_to_recordset(v_def->'functions')
           AS s(name text, arguments text, result text, inputs text[], output_types text[], returns_set boolean, volatile boolean, public_execute boolean)
    JOIN (SELECT split_part(r, ' ', 1), split_part(r, ' ', 2), nullif(split_part(r, ' ', 3), '')
          FROM unnest(v_routes) AS r) AS r(name, route, arg) ON r.name = s.name
    -- an overload without the routing argument (fs_changes_head()) is not the package's call
    WHERE r.arg IS NULL OR r.arg = ANY (s.inputs)
  LOOP
    v_calls := array_to_string(f.inputs, ', ');
    -- pg_get_function_result() says TABLE(...) for a set of rows, and the type otherwise.
    v_returns := CASE WHEN f.returns_set AND f.result NOT LIKE 'TABLE(%' THEN 'SETOF ' ELSE '' END || f.result;
    IF f.route <> 'all' THEN
      -- The original on the workspace's partition, after the tag is set there.
      EXECUTE format($f$CREATE FUNCTION %1$I.%2$I(p__tag text, %3$s) RETURNS %4$s LANGUAGE plproxy AS $b$
          %5$s RUN ON %6$s;
          SELECT * FROM %1$I.%7$I(%8$s);
        $b$$f$, v_schema, f.name || '__px', f.arguments, v_returns, v_cluster,
        CASE WHEN f.route = 'fork' THEN format('%I.cluster_fork_route(p_source, p_target)', v_schema)
             ELSE format('pg_catalog.hashtext(%s)', f.arg) END,
        f.name,
        array_to_string(array_replace(array_replace(f.inputs, f.arg,
          format('%I.cluster_here(pg_catalog.substr(pg_catalog.set_config(%L, p__tag, true), 1, 0) OPERATOR(pg_catalog.||) %s, %s)',
                 v_schema, 'deepagents_backends.tag', f.arg,
                 CASE WHEN f.volatile AND f.name <> 'fs_search' THEN 'true' ELSE 'false' END)),
          -- (a fork writes its target too)
          CASE WHEN f.route = 'fork' THEN 'p_target' END, format('%I.cluster_here(p_target, true)', v_schema)), ', '));
      EXECUTE format('COMMENT ON FUNCTION %I.%I IS %L', v_schema, f.name || '__px', v_mark);
      v_made := v_made || (f.name || '__px');
    END IF;
    IF f.route IN ('or-all', 'all') THEN
      -- The original on every partition, then one row merged from theirs.
      EXECUTE format($f$CREATE FUNCTION %1$I.%2$I(%3$s) RETURNS %4$s LANGUAGE plproxy AS $b$
          %5$s RUN ON ALL;
          SELECT * FROM %1$I.%6$I(%7$s);
        $b$$f$, v_schema, f.name || '__all', f.arguments,
        CASE WHEN f.result LIKE 'TABLE(%' THEN f.result ELSE 'SETOF ' || f.result END, v_cluster, f.name, v_calls);
      EXECUTE format('COMMENT ON FUNCTION %I.%I IS %L', v_schema, f.name || '__all', v_mark);
      v_made := v_made || (f.name || '__all');
      SELECT string_agg(CASE WHEN t = 'boolean' THEN format('pg_catalog.bool_or(r.c%s)', i) ELSE format('pg_catalog.sum(r.c%s)::%s', i, t) END, ', ' ORDER BY i),
             string_agg('c' || i, ', ' ORDER BY i)
      INTO v_merge, v_body
      FROM unnest(f.output_types) WITH ORDINALITY AS o(t, i);
      v_merge := format('SELECT %s FROM %I.%I(%s) AS r(%s)', v_merge, v_schema, f.name || '__all', v_calls, v_body);
    END IF;
    -- A call on every partition holds the front's cluster lock shared: splitCluster() holds it
    -- exclusively, so such a call waits for a split instead of reaching some partitions before
    -- their workspaces moved and others after.
    v_lock := format('SELECT pg_catalog.pg_advisory_xact_lock_shared(pg_catalog.hashtext(%L))',
                     'deepagents-backends:cluster-split:' || v_schema);
    v_body := CASE f.route
      WHEN 'all' THEN v_lock || '; ' || v_merge
      WHEN 'or-all' THEN NULL
      ELSE format('SELECT * FROM %I.%I(%s, %s)', v_schema, f.name || '__px', v_tag, v_calls)
    END;
    -- Each branch has a condition on the arguments alone, so PostgreSQL runs only the chosen one.
    v_body := coalesce(v_body, format('%s WHERE %s IS NULL OR %s = ''''; SELECT * FROM %I.%I(%s, %s) WHERE %s IS NOT NULL AND %s <> '''' UNION ALL %s HAVING %s IS NULL OR %s = ''''',
                  v_lock, f.arg, f.arg, v_schema, f.name || '__px', v_tag, v_calls,
                  f.arg, f.arg, v_merge, f.arg, f.arg));
    EXECUTE format('CREATE FUNCTION %I.%I(%s) RETURNS %s LANGUAGE sql AS %L', v_schema, f.name, f.arguments, v_returns, v_body);
    EXECUTE format('COMMENT ON FUNCTION %I.%I IS %L', v_schema, f.name, v_mark);
    v_made := v_made || f.name;
    IF NOT f.public_execute THEN
      -- The partition refuses such a call anyway (the role reaches it as itself); this says so first.
      FOR v_arg IN SELECT unnest(ARRAY[f.name, f.name || '__px', f.name || '__all']) LOOP
        IF v_arg = ANY (v_made) THEN
          EXECUTE format('REVOKE EXECUTE ON FUNCTION %I.%I FROM PUBLIC', v_schema, v_arg);
        END IF;
      END LOOP;
    END IF;
  END LOOP;
  -- A partition without one of them is not at this package's migration: say which.
  SELECT string_agg(split_part(r, ' ', 1), ', ') INTO v_body
  FROM unnest(v_routes) AS r WHERE split_part(r, ' ', 1) <> ALL (v_made);
  IF v_body IS NOT NULL THEN
    RAISE EXCEPTION 'the partitions of cluster % have no function %', v_server, v_body;
  END IF;
END
$install$
