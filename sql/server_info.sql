-- What initialize() checks: PostgreSQL 14+ and a UTF8 database.
SELECT current_setting('server_version_num')::int AS version, current_setting('server_encoding') AS encoding
