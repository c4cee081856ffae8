-- The partitions of the cluster of this schema, in order, when this database is its PL/Proxy
-- front (sql/cluster_install.sql: the SQL/MED server is named after the schema); no rows
-- otherwise.
SELECT substr(o.option_name, 2)::int AS partition, o.option_value AS options
FROM pg_catalog.pg_foreign_server s
JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw AND w.fdwname = 'plproxy'
CROSS JOIN LATERAL pg_catalog.pg_options_to_table(s.srvoptions) o
WHERE s.srvname = :schema AND o.option_name ~ '^p[0-9]+$'
ORDER BY 1
