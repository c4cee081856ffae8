-- After the last migration is reverted, remove what the migration runner itself created: our
-- migrations table, and the schema if nothing else lives in it (never `public`). One statement,
-- so it is all or nothing; the caller holds the migration lock.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM {{schema}}.migrations) THEN
    RETURN; -- migrations are still applied
  END IF;
  DROP TABLE {{schema}}.migrations;
  IF '{{schema}}' <> '"public"' THEN
    BEGIN
      DROP SCHEMA {{schema}};
    EXCEPTION WHEN dependent_objects_still_exist THEN
      NULL; -- other objects live in the schema: it is not ours alone, keep it
    END;
  END IF;
END
$$
