/**
 * A login role of a test file's own, granted some workspaces of a schema: a backend that runs as
 * it with rowLevelSecurity, and a raw connection as it (search_path set to the schema) for the
 * SQL an attacker would send. `end()` closes both and drops the role.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { grantWorkspace, PostgresBackend } from "../../src/index.js";
import { adminClient, databaseUrl, urlAs } from "../helpers/db.js";

export async function restrictedRole(
  owner: PostgresBackend,
  prefix: string,
  workspaces: string[],
): Promise<{ role: string; backend: PostgresBackend; raw: pg.Client; end(): Promise<void> }> {
  const url = await databaseUrl();
  const role = `${prefix}_${randomBytes(4).toString("hex")}`;
  const password = randomBytes(12).toString("hex");
  const admin = await adminClient();
  await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
  for (const workspace of workspaces) await grantWorkspace(owner.pool, owner.schema, role, workspace);
  const backend = new PostgresBackend({
    connectionString: urlAs(url, role, password),
    schema: owner.schema,
    workspace: workspaces[0],
    rowLevelSecurity: true,
    maxPoolSize: 2,
  });
  const raw = new pg.Client({ connectionString: urlAs(url, role, password) });
  await raw.connect();
  await raw.query(`SET search_path = ${owner.schema}`);
  return {
    role,
    backend,
    raw,
    async end() {
      await raw.end().catch(() => {});
      await backend.close();
      await admin.query(`DROP OWNED BY ${role}`).catch(() => {});
      await admin
        .query(`DROP ROLE IF EXISTS ${role}`)
        .catch((e) => console.log(`could not drop ${role}: ${e.message}`));
      await admin.end();
    },
  };
}
