-- Immediate children of the directory :dir (ends with '/') in :workspace.
SELECT path, is_dir, size, modified_at FROM {{schema}}.fs_ls(:workspace, :dir)
