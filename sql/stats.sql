-- Size of every table and index of the schema named :schema; live rows as the statistics
-- collector counts them (NULL for an index).
SELECT c.relname AS name,
       CASE c.relkind WHEN 'i' THEN 'index' ELSE 'table' END AS kind,
       pg_total_relation_size(c.oid)::bigint AS bytes,
       s.n_live_tup AS estimated_rows
FROM pg_class c
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.relnamespace = :schema::regnamespace AND c.relkind IN ('r', 'i')
ORDER BY c.relkind DESC, pg_total_relation_size(c.oid) DESC
