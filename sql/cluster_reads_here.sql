-- On a partition, in a streamed search's session once its snapshot is taken: true if the
-- partition's read map still holds :workspace, DA022 if a split moved it (its rows here may be
-- gone); no lock on the map is kept (sql/cluster_partition_guard.sql).
SELECT {{schema}}.cluster_reads_here(:workspace) AS here
