-- On a proxy database: the partition holding :workspace and where it is (libpq options),
-- by PL/Proxy's own mapping (sql/cluster_install.sql).
SELECT partition, options FROM {{schema}}.cluster_partition(:workspace)
