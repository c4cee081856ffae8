-- workspace, paths[], contents[], bytes[], mime types[].
SELECT {{schema}}.fs_upload($1, $2, $3, $4, $5) AS written
