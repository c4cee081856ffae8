SELECT {{schema}}.fs_delete($1, $2) AS deleted
