-- Version :version of :path in :workspace, read as read.sql reads the file: binary whole, text as
-- the lines after :offset, at most :limit of them. No row: that version is not kept.
SELECT mime_type, bytes, total_lines, window_text, window_lines FROM {{schema}}.fs_read_version(:workspace, :path, :version, :offset, :limit)
