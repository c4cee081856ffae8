-- A window of lines of one file: workspace, path, offset, limit.
SELECT mime_type, bytes, total_lines, window_text, window_lines FROM {{schema}}.fs_read($1, $2, $3, $4)
