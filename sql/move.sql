-- Move (:copy false) or copy (:copy true) the file or directory :from of :workspace to :to, in one
-- transaction; :overwrite replaces files at the paths written. status: 'moved' / 'copied' (files:
-- how many), 'not_found', 'into_itself', 'target_exists', 'parent_is_file', 'is_directory',
-- 'too_long' (conflict: the path in question; a new path over :maxBytes bytes for 'too_long').
SELECT status, files, conflict
FROM {{schema}}.fs_move(:workspace, :from, :to, :overwrite, :copy, :maxBytes)
