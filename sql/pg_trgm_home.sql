-- Before every migration run (up and down), in its own transaction: pg_trgm must live where every
-- schema owner of the database can use it, never inside one application's schema. Extensions are
-- database-wide: inside schema A, the next owner's migration could not use its operator class
-- (permission denied for schema A), and DROP SCHEMA A CASCADE would take every other schema's
-- trigram index with it. Older versions of this package (migration 0001) installed a missing
-- pg_trgm into the migrated schema; this moves it out.
--   - pg_trgm elsewhere: used where it is (the role needs USAGE on that schema; SQLSTATE DA004
--     naming the DBA's command when it has not).
--   - missing before "down": nothing to do.
--   - missing before "up": installed into `public` when the role may create there, else into a
--     schema `extensions` (created, USAGE granted to everyone). A role that can do neither gets
--     DA004 naming the one command a DBA runs.
--   - inside the migrated schema, or (for a superuser) inside another schema of this package (an
--     older version put it there): moved to that same place. Only
--     a superuser can move it (a trusted extension's objects belong to the bootstrap superuser);
--     otherwise it stays, with a WARNING naming the DBA's command -- this schema works as before,
--     and another owner's migrate says the same in its error.
-- The advisory lock serialises this with the same step of migrations of other schemas.
DO $$
DECLARE
  v_ours   name := current_setting('deepagents_backends.migrating_schema');
  v_home   name;
  v_target name;
BEGIN
  PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('deepagents-backends:pg_trgm'));
  SELECT n.nspname INTO v_home
  FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
  WHERE e.extname = 'pg_trgm';
  IF v_home IS NULL AND current_setting('deepagents_backends.migrating_direction') = 'down' THEN
    RETURN;
  END IF;
  -- Inside another schema of this package (it has our files and migrations tables): a superuser
  -- moves it out as below; anyone else uses it where it is.
  IF v_home IS NOT NULL AND v_home <> v_ours
     AND NOT (EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                      WHERE n.nspname = v_home AND c.relname = 'files')
              AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                          WHERE n.nspname = v_home AND c.relname = 'migrations')
              AND (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)) THEN
    IF NOT pg_catalog.has_schema_privilege(v_home, 'USAGE') THEN
      RAISE EXCEPTION 'pg_trgm is installed in schema "%", which role "%" cannot use; a superuser runs: ALTER EXTENSION pg_trgm SET SCHEMA public; (or, to leave it there: GRANT USAGE ON SCHEMA % TO %;)',
        v_home, current_user, quote_ident(v_home), quote_ident(current_user) USING ERRCODE = 'DA004';
    END IF;
    RETURN;
  END IF;

  IF v_home IS NOT NULL AND NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
    RAISE WARNING 'pg_trgm lives inside schema "%" (installed there by an older deepagents-backends), where other schemas cannot use it; a superuser runs: ALTER EXTENSION pg_trgm SET SCHEMA public;',
      v_home;
    RETURN;
  END IF;

  IF pg_catalog.has_schema_privilege('public', 'CREATE') THEN
    v_target := 'public';
  ELSIF EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'extensions') THEN
    IF pg_catalog.has_schema_privilege('extensions', 'CREATE') THEN
      v_target := 'extensions';
    END IF;
  ELSIF pg_catalog.has_database_privilege(current_database(), 'CREATE') THEN
    CREATE SCHEMA extensions;
    GRANT USAGE ON SCHEMA extensions TO PUBLIC;
    v_target := 'extensions';
  END IF;

  IF v_target IS NULL AND v_home IS NULL THEN
    RAISE EXCEPTION 'pg_trgm is not installed, and role "%" may not create it in a schema every schema owner can use; a database owner or superuser runs: CREATE EXTENSION pg_trgm SCHEMA public;',
      current_user USING ERRCODE = 'DA004';
  END IF;
  IF v_home IS NULL THEN
    EXECUTE format('CREATE EXTENSION pg_trgm SCHEMA %I', v_target);
    RETURN;
  END IF;
  BEGIN
    IF v_target IS NULL THEN
      RAISE insufficient_privilege;
    END IF;
    EXECUTE format('ALTER EXTENSION pg_trgm SET SCHEMA %I', v_target);
  EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'pg_trgm lives inside schema "%" (installed there by an older deepagents-backends), where other schemas cannot use it; a superuser runs: ALTER EXTENSION pg_trgm SET SCHEMA public;',
      v_home;
  END;
END
$$
