-- Size of every table and index of the schema.
SELECT c.relname AS name,
       CASE c.relkind WHEN 'i' THEN 'index' ELSE 'table' END AS kind,
       pg_total_relation_size(c.oid)::bigint AS bytes,
       CASE WHEN c.relkind = 'r' THEN c.reltuples::bigint END AS estimated_rows
FROM pg_class c
WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'i')
ORDER BY c.relkind DESC, pg_total_relation_size(c.oid) DESC
