-- Write :paths with their :texts (text files) or :bytes (binary) and :mimeTypes (parallel arrays)
-- into :workspace. Returns the paths it refused (a path under a file: 'parent_is_file', conflict
-- = that file; a directory: 'is_directory'); every other path is written by the same statement.
SELECT path, status, conflict FROM {{schema}}.fs_upload(:workspace, :paths, :texts, :bytes, :mimeTypes)
