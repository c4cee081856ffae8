-- The files of :workspace (now, or as at its checkpoint :at) copied into :target, which must have
-- none; chunk sets are shared, not copied. With :history, the version rows too. One row: how many
-- files, how many bytes, how many versions.
SELECT files, bytes, versions FROM {{schema}}.fs_fork(:workspace, :target, :at, :history)
