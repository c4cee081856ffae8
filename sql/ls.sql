-- Immediate children of a directory ($2 ends with '/').
SELECT path, is_dir, size, modified_at FROM {{schema}}.fs_ls($1, $2)
