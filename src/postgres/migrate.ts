/**
 * Versioned schema installs with node-pg-migrate's programmatic runner. Our migrations (SQL files
 * shipped in migrations/) live in their own schema with their own migrations table, under an
 * advisory lock value derived from the schema name: concurrent migrate() calls from many
 * processes apply each migration exactly once, and never wait on another app's node-pg-migrate.
 */
import { fileURLToPath } from "node:url";
import pg from "pg";
import type { runner } from "node-pg-migrate";
import { clientConfig, validateSchema, type ConnectionOptions } from "./config.js";
import * as sql from "./sql/queries.js";
import { SQLSTATE, sqlstateOf } from "./sqlstate.js";
import { clusterErrors, setupErrors } from "../protocol.js";
import type { ClusterOptions } from "./cluster/options.js";

export const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations/", import.meta.url));
export const MIGRATIONS_TABLE = "migrations";

export interface MigrateOptions extends ConnectionOptions {
  /** Borrow one connection from this pool instead of opening one (it is discarded afterwards). */
  pool?: pg.Pool;
  /** Default "deepagents". */
  schema?: string;
  /** "up" applies every pending migration; "down" reverts them all (or `count`). */
  direction?: "up" | "down";
  /** How many migrations to apply or revert. Default: all. */
  count?: number;
  /** Report what would run without changing anything. */
  dryRun?: boolean;
  /** Progress messages; silent by default. */
  log?: (message: string) => void;
  /**
   * A sharded deployment: migrate every partition, then install the PL/Proxy front on the
   * database this connects to (cluster/install.ts, docs/CLUSTER.md).
   */
  cluster?: ClusterOptions;
}

export interface MigrationRecord {
  name: string;
}

/** A 52-bit advisory lock key of our own per schema (fits a JS number and a bigint). */
export function migrationLockValue(schema: string): number {
  let hash = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(`deepagents-backends:migrate:${schema}`, "utf8")) {
    hash = BigInt.asUintN(64, (hash ^ BigInt(byte)) * 0x100000001b3n);
  }
  return Number(hash & 0xfffffffffffffn);
}

export async function migrate(options: MigrateOptions): Promise<MigrationRecord[]> {
  if (options.cluster !== undefined) {
    const { migrateCluster } = await import("./cluster/install.js");
    return migrateCluster({ ...options, cluster: options.cluster });
  }
  const schema = validateSchema(options.schema);
  const direction = options.direction ?? "up";
  if (direction !== "up" && direction !== "down") throw new Error(setupErrors.invalidDirection(direction));
  const lockValue = migrationLockValue(schema);
  const log = options.log ?? (() => {});
  const { client, release } = await connect(options);
  try {
    await client.query("SET statement_timeout = 0"); // index builds in later migrations may be slow
    // The PL/Proxy front of a cluster holds proxies of our functions: migrating it as a database
    // of its own would put the real ones over them.
    if ((await sql.serverInfo.run(client, schema, { schema }))[0].proxy)
      throw new Error(clusterErrors.proxyNotMigratable(schema));
    if (direction === "down" && !(await schemaInstalled(client, schema))) return [];
    if (!options.dryRun) await placePgTrgm(client, schema, direction, log);
    // Loaded here, when there is something to migrate: opening a backend on an up-to-date schema
    // never gets this far (open.ts), and the package takes 140 ms to load.
    const { runner } = await import("node-pg-migrate");
    const applied = await runner({
      dbClient: client,
      dir: MIGRATIONS_DIR,
      migrationsTable: MIGRATIONS_TABLE,
      schema,
      // Only when missing: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the
      // schema exists, and a DBA may have made the schema for a role that has no such right.
      createSchema: direction === "up" && !(await schemaExists(client, schema)),
      direction,
      count: options.count ?? Number.POSITIVE_INFINITY,
      singleTransaction: true,
      checkOrder: true,
      lockValue,
      advisoryLockMode: "wait",
      dryRun: options.dryRun ?? false,
      log,
      verbose: false,
    } as Parameters<typeof runner>[0]);
    if (direction === "down" && !options.dryRun) await dropSchemaIfEmpty(client, schema, lockValue);
    return applied.map((m) => ({ name: m.name }));
  } finally {
    await release();
  }
}

/**
 * A connection of its own: the runner changes the session's search_path, so a pooled connection
 * is destroyed afterwards instead of going back to the pool.
 */
async function connect(options: MigrateOptions): Promise<{ client: pg.ClientBase; release: () => Promise<void> }> {
  if (options.pool) {
    const client = await options.pool.connect();
    return { client, release: async () => client.release(true) };
  }
  const client = new pg.Client(clientConfig(options));
  await client.connect();
  return { client, release: () => client.end().catch(() => {}) };
}

/**
 * pg_trgm where every schema owner can use it (sql/pg_trgm_home.sql), in a transaction of its own.
 * Before "down" it is best effort: a pg_trgm this role may not move stays where it is, and 0001's
 * down then keeps it while anything else uses it.
 */
async function placePgTrgm(
  client: pg.ClientBase,
  schema: string,
  direction: "up" | "down",
  log: (message: string) => void,
): Promise<void> {
  const warn = (notice: { severity?: string; message?: string }) =>
    log(`${notice.severity ?? "NOTICE"}: ${notice.message ?? ""}`);
  client.on("notice", warn);
  await client.query("BEGIN");
  try {
    await sql.pgTrgmScope.run(client, schema, { schema, direction });
    await sql.pgTrgmHome.run(client, schema, {});
    await client.query("COMMIT");
  } catch (e) {
    await client.query("ROLLBACK").catch(() => {});
    if (direction === "down" && sqlstateOf(e) === SQLSTATE.pgTrgmUnusable) return;
    throw e;
  } finally {
    client.off("notice", warn);
  }
}

async function schemaExists(client: pg.ClientBase, schema: string): Promise<boolean> {
  const rows = await sql.schemaExists.run(client, schema, { schema });
  return rows[0].exists;
}

async function schemaInstalled(client: pg.ClientBase, schema: string): Promise<boolean> {
  const rows = await sql.migrationsInstalled.run(client, schema, {});
  return rows[0].installed;
}

/** Names of the migrations shipped with this package, in order. */
export async function shippedMigrations(): Promise<string[]> {
  const { readdir } = await import("node:fs/promises");
  return (await readdir(MIGRATIONS_DIR))
    .filter((f) => f.endsWith(".sql"))
    .sort()
    .map((f) => f.slice(0, -4));
}

/** After the last migration is reverted, drop what the runner created (sql/migrations_drop.sql). */
async function dropSchemaIfEmpty(client: pg.ClientBase, schema: string, lockValue: number): Promise<void> {
  await sql.advisoryLock.run(client, schema, { lockValue });
  try {
    await sql.migrationsDrop.run(client, schema, {});
  } finally {
    await sql.advisoryUnlock.run(client, schema, { lockValue });
  }
}
