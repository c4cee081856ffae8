-- Inside a write's transaction: :tag, the writer file history keeps with each version the
-- transaction writes (the session setting deepagents_backends.tag, until the transaction ends).
SELECT set_config('deepagents_backends.tag', :tag, true)
