-- Does the schema exist (migrated or not)? $1: its name.
SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1) AS exists
