/**
 * The SQL the driver sends, loaded from sql/*.sql (one file per operation). Each statement is a
 * single call of a function installed by the migrations, so every backend call is one round trip.
 * Files name the schema as {{schema}}; it is substituted as a quoted identifier.
 */
import { readdirSync, readFileSync } from "node:fs";
import pg from "pg";

const SQL_DIR = new URL("../../sql/", import.meta.url);

const raw: Record<string, string> = Object.fromEntries(
  readdirSync(SQL_DIR)
    .filter((f) => f.endsWith(".sql"))
    .map((f) => [f.slice(0, -4), readFileSync(new URL(f, SQL_DIR), "utf8")]),
);

const NAMES = [
  "ls",
  "read",
  "read_raw",
  "stat",
  "write",
  "edit",
  "delete",
  "grep",
  "glob",
  "upload",
  "download",
  "analyze",
  "schema_version",
  "changes",
  "changes_head",
  "prune_changes",
  "workspaces",
  "stats",
  "search",
  "server_info",
  "migrations_installed",
  "migrations_drop",
  "advisory_lock",
  "advisory_unlock",
  "rls_check",
  "grant_workspace",
  "revoke_workspace",
  "pg_trgm_scope",
  "pg_trgm_home",
  "schema_exists",
] as const;

export type StatementName = (typeof NAMES)[number];

export type Statements = Record<StatementName, string>;

const cache = new Map<string, Statements>();

export function statementsFor(schema: string): Statements {
  let statements = cache.get(schema);
  if (!statements) {
    const ident = pg.escapeIdentifier(schema);
    statements = Object.fromEntries(
      Object.entries(raw).map(([name, text]) => [name, text.replaceAll("{{schema}}", ident)]),
    ) as Statements;
    for (const name of NAMES) {
      if (!(name in statements)) throw new Error(`deepagents-backends: missing sql/${name}.sql`);
    }
    cache.set(schema, statements);
  }
  return statements;
}
