-- The files of :workspace (now, or as at its checkpoint :at) copied into :target, which must have
-- none; chunk sets are shared, not copied. One row: how many files, how many bytes.
SELECT files, bytes FROM {{schema}}.fs_fork(:workspace, :target, :at)
