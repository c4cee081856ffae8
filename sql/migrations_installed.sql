-- Is our migrations table there (has this schema ever been migrated)?
SELECT to_regclass('{{schema}}.migrations') IS NOT NULL AS installed
