-- The cluster definition (JSON, src/postgres/cluster/install.ts) for sql/cluster_install.sql in
-- the same transaction (a DO block takes no parameters).
SELECT set_config('deepagents_backends.cluster', :definition, true)
