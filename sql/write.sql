-- Create or overwrite :path in :workspace with :text (a text file) or :bytes (binary) of type
-- :mimeType, if the file is at :ifVersion (NULL = any, 0 = must not exist). Status
-- 'parent_is_file' / 'is_directory' (conflict: the path in the way) writes nothing.
SELECT status, version, conflict FROM {{schema}}.fs_write(:workspace, :path, :text, :bytes, :mimeType, :ifVersion)
