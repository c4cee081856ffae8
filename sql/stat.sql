-- Metadata of :path in :workspace, without its content; no file there: one row of NULLs, with
-- is_dir telling whether a directory is (asked only then: one round trip either way).
SELECT f.mime_type, f.is_binary, f.size, f.line_count, f.version, f.created_at, f.modified_at,
       f.mime_type IS NULL AND {{schema}}.fs_is_directory(:workspace, :path) AS is_dir
FROM (VALUES (1)) AS one(x) LEFT JOIN {{schema}}.fs_stat(:workspace, :path) f ON true
