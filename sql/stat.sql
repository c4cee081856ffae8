SELECT mime_type, is_binary, size, line_count, version, created_at, modified_at FROM {{schema}}.fs_stat($1, $2)
