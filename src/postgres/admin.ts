/**
 * Schema-wide views for operators (the CLI's `workspaces`, `stats` and `migrate status`), not
 * part of the agent protocol.
 */
import type pg from "pg";
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
  const rows = await sql.workspaces.run(pool, schema, {});
  return rows.map((r) => ({
    workspace: r.workspace,
    files: Number(r.files),
    bytes: Number(r.bytes),
    modified_at: r.modified_at.toISOString(),
  }));
}

export async function storageStats(pool: pg.Pool, schema: string): Promise<RelationSize[]> {
  const rows = await sql.stats.run(pool, schema, { schema });
  return rows.map((r) => ({
    name: r.name,
    kind: r.kind,
    bytes: Number(r.bytes),
    estimated_rows: r.estimated_rows === null ? null : Math.max(0, Number(r.estimated_rows)),
  }));
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
