-- The bodies of :paths (an array) in :workspace, one row per path in input order (ord, from 1);
-- content and bytes both NULL when there is no such file (is_dir: it is a directory).
SELECT ord, content, bytes, is_dir FROM {{schema}}.fs_download(:workspace, :paths)
