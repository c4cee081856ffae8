-- Does the schema named :schema exist (migrated or not)?
SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = :schema) AS exists
