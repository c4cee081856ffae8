-- The paths that cut the text files of the scope (:path, :allowExact) of :workspace into :parts
-- runs of about equal bytes, in path order; none when they hold less than :minBytes in all.
SELECT {{schema}}.fs_search_split(:workspace, :path, :allowExact, :parts, :minBytes) AS bounds
