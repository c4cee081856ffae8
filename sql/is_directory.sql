-- Whether :path of :workspace is a directory: made by mkdir, or holding a file.
SELECT {{schema}}.fs_is_directory(:workspace, :path) AS is_dir
