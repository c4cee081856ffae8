-- What initialize() checks: PostgreSQL 14+ and a UTF8 database; and whether this database is the
-- PL/Proxy front of a cluster (sql/cluster_install.sql made cluster_partition in the schema). The
-- catalog is read directly: a role without USAGE on the schema gets its clear error later
-- (open.ts), not a failed name lookup here.
SELECT current_setting('server_version_num')::int AS version, current_setting('server_encoding') AS encoding,
       EXISTS (SELECT 1 FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
               WHERE n.nspname = :schema AND p.proname = 'cluster_partition') AS proxy
