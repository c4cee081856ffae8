SELECT ord, content, bytes, is_dir FROM {{schema}}.fs_download($1, $2)
