-- Files of :workspace under :path (itself too when :allowExact and it is a file) whose path
-- matches :pattern (:regex, its compiled form), searched from the literal prefix :base.
SELECT path, size, modified_at FROM {{schema}}.fs_glob(:workspace, :path, :allowExact, :base, :pattern, :regex)
