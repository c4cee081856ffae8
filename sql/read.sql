-- A window of lines of :path in :workspace: :limit lines after the first :offset.
SELECT mime_type, bytes, total_lines, window_text, window_lines FROM {{schema}}.fs_read(:workspace, :path, :offset, :limit)
