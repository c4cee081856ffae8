-- Names of the migrations applied to our schema, oldest first. Fails with undefined_table or
-- invalid_schema_name when the schema was never migrated (migrationStatus() reads that as none).
SELECT name FROM {{schema}}.migrations ORDER BY run_on, id
