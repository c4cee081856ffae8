-- Metadata of :path in :workspace, without its content.
SELECT mime_type, is_binary, size, line_count, version, created_at, modified_at FROM {{schema}}.fs_stat(:workspace, :path)
