-- workspace, paths[], contents[], bytes[], mime types[]. Returns the paths it refused (a path
-- under a file: 'parent_is_file', conflict = that file; a directory: 'is_directory'); every
-- other path is written by the same statement.
SELECT path, status, conflict FROM {{schema}}.fs_upload($1, $2, $3, $4, $5)
