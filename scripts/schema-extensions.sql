-- Objects of extensions installed outside schema $1 and pg_catalog (pg_trgm), as the DDL of
-- scripts/schema-catalog.sql names them: schema-qualified. Where pg_trgm lives differs between
-- databases (public, or a schema `extensions`: sql/pg_trgm_home.sql), so scripts/schema.ts writes
-- that schema as @extschema:<extension>@, PostgreSQL's own notation in extension scripts.
-- Names as the DDL prints them: quoted where needed; operators appear as OPERATOR(schema.op).
SELECT DISTINCT e.extname, quote_ident(n.nspname) AS schema_ident, m.name, m.operator
FROM pg_extension e
JOIN pg_namespace n ON n.oid = e.extnamespace
JOIN pg_depend d ON d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid AND d.deptype = 'e'
CROSS JOIN LATERAL (
  SELECT quote_ident(p.proname) AS name, false AS operator FROM pg_proc p WHERE d.classid = 'pg_proc'::regclass AND p.oid = d.objid
  UNION ALL
  SELECT quote_ident(t.typname), false FROM pg_type t WHERE d.classid = 'pg_type'::regclass AND t.oid = d.objid
  UNION ALL
  SELECT quote_ident(c.opcname), false FROM pg_opclass c WHERE d.classid = 'pg_opclass'::regclass AND c.oid = d.objid
  UNION ALL
  SELECT quote_ident(f.opfname), false FROM pg_opfamily f WHERE d.classid = 'pg_opfamily'::regclass AND f.oid = d.objid
  UNION ALL
  SELECT o.oprname::text, true FROM pg_operator o WHERE d.classid = 'pg_operator'::regclass AND o.oid = d.objid
) m
WHERE n.nspname NOT IN ('pg_catalog', $1)
ORDER BY e.extname, m.name
