/**
 * What PostgresBackend.initialize() checks before the first operation: a server we support (14+,
 * UTF-8), a schema at the latest migration (applied here unless told not to), and with
 * rowLevelSecurity a role that really is restricted and was granted the workspace.
 */
import type pg from "pg";
import { clusterErrors, setupErrors } from "../protocol.js";
import { migrationStatus } from "./admin.js";
import type { PostgresBackendConfig } from "./config.js";
import { migrate } from "./migrate.js";
import * as sql from "./sql/queries.js";
import { SQLSTATE, sqlstateOf } from "./sqlstate.js";

const MIN_SERVER_VERSION = 140000;

export interface OpenOptions {
  /** Apply pending migrations (default true); false only checks the schema is up to date. */
  migrate?: boolean;
}

export async function openSchema(
  pool: pg.Pool,
  schema: string,
  workspace: string,
  config: PostgresBackendConfig,
  { migrate: shouldMigrate = true }: OpenOptions,
): Promise<{ proxy: boolean }> {
  if (config.rowLevelSecurity) shouldMigrate = false; // a restricted role cannot migrate
  const [server] = await sql.serverInfo.run(pool, schema, { schema });
  if (server.version < MIN_SERVER_VERSION) throw new Error(setupErrors.serverTooOld(server.version));
  if (server.encoding !== "UTF8") throw new Error(setupErrors.notUtf8(server.encoding));
  const { proxy } = server;
  if (proxy) {
    // The PL/Proxy front of a cluster: only migrate({ cluster }) updates it (and its partitions).
    // Row-level security is checked on the partition (backend.ts): the front has no tables.
    const { pending } = await migrationStatus(pool, schema);
    if (pending.length > 0) throw new Error(clusterErrors.proxyOutdated(schema, pending));
    return { proxy };
  }
  if (shouldMigrate) {
    // One query when the schema is up to date (the usual case): the runner takes a connection of
    // its own, a lock and several queries (a third of opening a backend, measured).
    const status = await migrationStatus(pool, schema).catch(() => null);
    if (status?.pending.length !== 0) await migrate({ ...config, pool, schema, direction: "up" });
    return { proxy };
  }
  const { pending } = await migrationStatus(pool, schema).catch((e) => {
    if (config.rowLevelSecurity && sqlstateOf(e) === SQLSTATE.insufficientPrivilege) {
      throw new Error(setupErrors.rlsCannotRead(schema, (e as Error).message));
    }
    throw e;
  });
  if (pending.length > 0) throw new Error(setupErrors.schemaOutdated(schema, pending));
  if (config.rowLevelSecurity) await checkRowLevelSecurity(pool, schema, workspace);
  return { proxy };
}

/**
 * rowLevelSecurity: refuse to run unrestricted (the owner, a superuser or a BYPASSRLS role would
 * see every workspace) or in a workspace the role was not granted.
 */
export async function checkRowLevelSecurity(pool: pg.Pool, schema: string, workspace: string): Promise<void> {
  const [{ role, active, granted }] = await sql.rlsCheck.run(pool, schema, { workspace });
  if (!active) throw new Error(setupErrors.rlsNotActive(role, schema));
  if (!granted) throw new Error(setupErrors.workspaceNotGranted(workspace, role, schema));
}
