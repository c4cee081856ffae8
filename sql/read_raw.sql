-- The whole body of :path in :workspace (content for text, bytes for binary) and its timestamps.
SELECT mime_type, content, bytes, created_at, modified_at FROM {{schema}}.fs_read_raw(:workspace, :path)
