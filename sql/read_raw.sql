SELECT mime_type, content, bytes, created_at, modified_at FROM {{schema}}.fs_read_raw($1, $2)
