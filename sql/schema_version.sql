-- Names of the migrations applied to our schema, oldest first (empty when not installed).
SELECT name FROM {{schema}}.migrations ORDER BY run_on, id
