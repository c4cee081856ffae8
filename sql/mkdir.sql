-- Make the directory :path of :workspace (and its ancestors), kept while empty; :parents as
-- mkdir -p. status: 'created', 'exists' (a directory already), 'is_file', 'parent_is_file' /
-- 'parent_missing' (conflict: the file above, or the missing parent).
SELECT status, conflict FROM {{schema}}.fs_mkdir(:workspace, :path, :parents)
