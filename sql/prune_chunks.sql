-- Search chunks of chunk sets no file uses any more (what a REPEATABLE READ writer, or two
-- concurrent deletes of a set's last files, leave to be swept). The schema owner's.
SELECT {{schema}}.prune_chunks() AS chunk_sets
