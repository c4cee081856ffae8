/**
 * A schema of a test file's own (beside the run's shared TEST_SCHEMA), for tests whose workspace
 * names are fixed or that change the schema itself.
 *
 * pg_trgm must never be installed into it: migrations install pg_trgm into the first schema that
 * needs it, and dropping that schema would drop the extension and, with it, the trigram indexes
 * of every other schema of the run (DROP SCHEMA ... CASCADE even deadlocks with their writes).
 * So the shared schema is migrated first — pg_trgm lands there, or already exists elsewhere — and
 * the private one is removed with the down migrations, which keep a pg_trgm others still use.
 */
import { migrate } from "../../src/index.js";
import { adminClient, databaseUrl, testBackend, TEST_SCHEMA } from "../helpers/db.js";

export async function privateSchema(suffix: string): Promise<{ schema: string; drop(): Promise<void> }> {
  const schema = `${TEST_SCHEMA}_${suffix}`.slice(0, 63);
  await (await testBackend()).close();
  return {
    schema,
    async drop() {
      const url = await databaseUrl();
      await migrate({ connectionString: url, schema, direction: "down" }).catch((e) =>
        console.log(`down migration of ${schema} failed: ${e.message}`),
      );
      const admin = await adminClient();
      try {
        const { rows } = await admin.query(
          "SELECT extnamespace::regnamespace::text AS s FROM pg_extension WHERE extname = 'pg_trgm'",
        );
        if (rows[0]?.s === schema) console.log(`${schema} still holds pg_trgm: left in place`);
        else await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await admin.end();
      }
    },
  };
}
