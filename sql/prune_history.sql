-- Apply the history retention to :workspace (NULL = every workspace): how many versions and
-- blobs went.
SELECT versions, blobs FROM {{schema}}.prune_history(:workspace)
