-- On the proxy database, before the partitions are migrated down: what sql/cluster_install.sql
-- made (its functions, the user-mapping guard, the migrations mirror, the SQL/MED server and its
-- user mappings), and the
-- schema when nothing else is in it.
DO $uninstall$
DECLARE
  v_schema name := current_setting('deepagents_backends.cluster')::jsonb->>'schema';
  f record;
BEGIN
  PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('deepagents-backends:cluster:' || v_schema));
  IF to_regnamespace(quote_ident(v_schema)) IS NULL THEN
    RETURN;
  END IF;
  FOR f IN SELECT p.oid::regprocedure AS signature
           FROM pg_catalog.pg_proc p
           WHERE p.pronamespace = quote_ident(v_schema)::regnamespace
             AND pg_catalog.obj_description(p.oid, 'pg_proc') = 'deepagents-backends proxy' LOOP
    EXECUTE format('DROP FUNCTION %s', f.signature);
  END LOOP;
  EXECUTE format('DROP EVENT TRIGGER IF EXISTS %I', 'deepagents_cluster_mappings_' || left(md5(v_schema), 24));
  EXECUTE format('DROP FUNCTION IF EXISTS %I.cluster_mappings_guard()', v_schema);
  EXECUTE format('DROP TABLE IF EXISTS %I.migrations', v_schema);
  EXECUTE format('DROP SERVER IF EXISTS %I CASCADE', v_schema);
  BEGIN
    EXECUTE format('DROP SCHEMA %I', v_schema);
  EXCEPTION WHEN dependent_objects_still_exist THEN
    NULL; -- other objects live in the schema: it is not ours alone, keep it
  END;
END
$uninstall$
