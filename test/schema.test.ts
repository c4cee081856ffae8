/**
 * docs/schema.sql is the schema the migrations install: a freshly migrated schema of the test
 * database dumps (scripts/schema.ts) to exactly that file, on every PostgreSQL version CI runs
 * (15 and the embedded 18). The schema has a random name, which the dump writes as "deepagents".
 */
import { readFile } from "node:fs/promises";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { migrate } from "../src/postgres/migrate.js";
import { dumpSchema, firstDifference, SCHEMA_FILE } from "../scripts/schema.js";
import { adminClient, databaseUrl, uniqueName } from "./helpers/db.js";

const admin = await adminClient();
const schema = uniqueName("schema_dump");
await migrate({ connectionString: await databaseUrl(), schema });
// docs/schema.sql is dumped on a server built with lz4. On one without (the embedded server's
// binaries), migration 0024 leaves the chunks as 0003–0023 kept them: inline, uncompressed.
const lz4 = (
  await admin.query("SELECT 'lz4' = ANY(enumvals) AS lz4 FROM pg_settings WHERE name = 'default_toast_compression'")
).rows[0].lz4 as boolean;
const documented = await readFile(SCHEMA_FILE, "utf8");
const file = lz4
  ? documented
  : documented.replace(/(CREATE TABLE deepagents\.chunks \([^;]*\) WITH \(toast_tuple_target=)128\);/, "$18160);");
const installed = await dumpSchema(admin, schema);

test.after(async () => {
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
});

test("docs/schema.sql is the schema the migrations install", () => {
  const difference = firstDifference(file, installed);
  assert.ok(
    difference === null,
    `docs/schema.sql is out of date with migrations/: ${difference}. Run \`npm run schema\` and review its diff.`,
  );
  assert.not.ok(installed.includes(schema), "the schema's own name is written as the placeholder");
});

// The cases below change the schema (it is dropped afterwards): the dump must show the change.

test("a function whose body differs is reported at that function", async () => {
  await admin.query(
    `CREATE OR REPLACE FUNCTION ${schema}.text_line_count(t text) RETURNS integer
     LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN 0`,
  );
  const difference = firstDifference(installed, await dumpSchema(admin, schema));
  assert.ok(difference, "the changed function went unnoticed");
  assert.match(difference, /in "CREATE OR REPLACE FUNCTION deepagents\.text_line_count\(t text\)"/);
  assert.match(difference, /the migrated schema "RETURN 0;"/);
});

test("a changed grant or RLS flag is reported", async () => {
  await admin.query(`GRANT EXECUTE ON FUNCTION ${schema}.grant_workspace(name, text) TO PUBLIC`);
  await admin.query(`ALTER TABLE ${schema}.chunks FORCE ROW LEVEL SECURITY`);
  const dump = await dumpSchema(admin, schema);
  const revoke = "REVOKE EXECUTE ON FUNCTION deepagents.grant_workspace(name,text) FROM PUBLIC;";
  assert.ok(installed.includes(revoke));
  assert.not.ok(dump.includes(revoke));
  assert.not.ok(installed.includes("FORCE ROW LEVEL SECURITY"));
  assert.ok(dump.includes("ALTER TABLE deepagents.chunks FORCE ROW LEVEL SECURITY;"));
});

test.run();
