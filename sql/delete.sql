-- :path and everything under it in :workspace; deleted = how many files went (0 = not found).
SELECT {{schema}}.fs_delete(:workspace, :path) AS deleted
