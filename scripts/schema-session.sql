-- Settings for reading the catalogs in scripts/schema.ts, inside its read-only transaction. They
-- decide how the pg_get_*def functions print, so they are fixed here, not taken from the server:
--   search_path = pg_catalog: every name outside pg_catalog comes out schema-qualified (our schema
--     is then replaced by its placeholder), every pg_catalog name unqualified;
--   quote_all_identifiers off: identifiers quoted only where they need it;
--   DateStyle, IntervalStyle, extra_float_digits: how constants in defaults and bodies print
--     (what pg_dump sets);
--   jit off: the catalog query's estimated cost is high enough for JIT, whose compilation took
--     4 s of a 40 ms query (PostgreSQL 15 built with LLVM).
SET LOCAL search_path = pg_catalog;
SET LOCAL quote_all_identifiers = off;
SET LOCAL DateStyle = 'ISO, MDY';
SET LOCAL IntervalStyle = postgres;
SET LOCAL extra_float_digits = 3;
SET LOCAL jit = off;
