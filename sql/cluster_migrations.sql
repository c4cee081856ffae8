-- On a partition: the migrations applied, with when, for the proxy's mirror of them
-- (sql/cluster_install.sql).
SELECT name, run_on FROM {{schema}}.migrations ORDER BY run_on, id
