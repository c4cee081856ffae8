-- On a migrated partition of a cluster (src/postgres/cluster/): every function of the schema,
-- with what sql/cluster_install.sql needs to define a proxy of it on the proxy database: the
-- argument list as declared (defaults included), the names of its inputs in order, its result,
-- the types of its output columns, whether it may write (volatile), and whether PUBLIC may
-- execute it (the proxy repeats the partition's grant).
SELECT p.proname AS name,
       pg_catalog.pg_get_function_arguments(p.oid) AS arguments,
       pg_catalog.pg_get_function_result(p.oid) AS result,
       CASE WHEN p.proargmodes IS NULL THEN coalesce(p.proargnames, '{}')
            ELSE ARRAY(SELECT a.n FROM unnest(p.proargnames, p.proargmodes) WITH ORDINALITY AS a(n, m, i)
                       WHERE a.m IN ('i', 'b', 'v') ORDER BY a.i)
       END AS inputs,
       CASE WHEN p.proargmodes IS NULL OR NOT p.proargmodes && ARRAY['o', 'b', 't']::"char"[]
            THEN ARRAY[pg_catalog.format_type(p.prorettype, NULL)]
            ELSE ARRAY(SELECT pg_catalog.format_type(a.t, NULL)
                       FROM unnest(p.proallargtypes, p.proargmodes) WITH ORDINALITY AS a(t, m, i)
                       WHERE a.m IN ('o', 'b', 't') ORDER BY a.i)
       END AS output_types,
       p.proretset AS returns_set,
       p.provolatile = 'v' AS volatile,
       pg_catalog.has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
FROM pg_catalog.pg_proc p
WHERE p.pronamespace = :schema::regnamespace AND p.prokind = 'f'
ORDER BY p.proname, p.oid
