/**
 * Schema-wide views for operators (the CLI's `workspaces`, `stats` and `migrate status`), not
 * part of the agent protocol.
 */
import pg from "pg";
import { partitionClient } from "./cluster/partitions.js";
import { shippedMigrations } from "./migrate.js";
import * as sql from "./sql/queries.js";
import { SQLSTATE, sqlstateOf } from "./sqlstate.js";

export interface WorkspaceSummary {
  workspace: string;
  files: number;
  bytes: number;
  modified_at: string | null;
}

export interface RelationSize {
  name: string;
  kind: "table" | "index";
  bytes: number;
  estimated_rows: number | null;
}

export interface MigrationStatus {
  applied: string[];
  pending: string[];
}

export async function listWorkspaces(pool: pg.Pool, schema: string): Promise<WorkspaceSummary[]> {
  // On a cluster's front: each partition's, and a workspace is on one partition only.
  const partitions = await onEveryPartition(pool, schema, (db) => sql.workspaces.run(db, schema, {}));
  const rows = partitions?.flat() ?? (await sql.workspaces.run(pool, schema, {}));
  if (partitions) rows.sort((a, b) => (a.workspace < b.workspace ? -1 : a.workspace > b.workspace ? 1 : 0));
  return rows.map((r) => ({
    workspace: r.workspace,
    files: Number(r.files),
    bytes: Number(r.bytes),
    modified_at: r.modified_at.toISOString(),
  }));
}

export async function storageStats(pool: pg.Pool, schema: string): Promise<RelationSize[]> {
  const read = (db: pg.ClientBase | pg.Pool) =>
    sql.stats.run(db, schema, { schema }).then((rows) =>
      rows.map(
        (r): RelationSize => ({
          name: r.name,
          kind: r.kind,
          bytes: Number(r.bytes),
          estimated_rows: r.estimated_rows === null ? null : Math.max(0, Number(r.estimated_rows)),
        }),
      ),
    );
  const partitions = await onEveryPartition(pool, schema, read);
  if (!partitions) return read(pool);
  // On a cluster's front: each relation summed over the partitions, in stats.sql's order.
  const sums = new Map<string, RelationSize>();
  for (const r of partitions.flat()) {
    const sum = sums.get(r.name);
    if (!sum) sums.set(r.name, { ...r });
    else {
      sum.bytes += r.bytes;
      sum.estimated_rows =
        sum.estimated_rows === null ? r.estimated_rows : sum.estimated_rows + (r.estimated_rows ?? 0);
    }
  }
  return [...sums.values()].sort((a, b) => (a.kind === b.kind ? b.bytes - a.bytes : a.kind === "table" ? -1 : 1));
}

/**
 * `work` on a connection of its own to each partition, when `pool` is on the PL/Proxy front of
 * the schema's cluster (cluster/); null otherwise.
 */
async function onEveryPartition<R>(
  pool: pg.Pool,
  schema: string,
  work: (db: pg.ClientBase) => Promise<R>,
): Promise<R[] | null> {
  const partitions = await sql.clusterPartitions.run(pool, schema, { schema });
  if (partitions.length === 0) return null;
  const front = (pool as unknown as { options: pg.ClientConfig }).options;
  return Promise.all(
    partitions.map(async ({ options }) => {
      const client = new pg.Client(partitionClient(front, options));
      await client.connect();
      try {
        return await work(client);
      } finally {
        await client.end().catch(() => {});
      }
    }),
  );
}

/** Which shipped migrations are applied to `schema` (none when it is not installed). */
export async function migrationStatus(pool: pg.Pool, schema: string): Promise<MigrationStatus> {
  const applied = await sql.schemaVersion.run(pool, schema, {}).then(
    (rows) => rows.map((row) => row.name),
    (e) => {
      // Never migrated: no migrations table, or no schema at all.
      const code = sqlstateOf(e);
      if (code === SQLSTATE.undefinedTable || code === SQLSTATE.invalidSchemaName) return [] as string[];
      throw e;
    },
  );
  const shipped = await shippedMigrations();
  return { applied, pending: shipped.filter((name) => !applied.includes(name)) };
}
