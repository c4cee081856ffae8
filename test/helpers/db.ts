/**
 * Test database access. `npm test` (test/run.ts) provides DATABASE_URL; a file run on its own
 * without it gets an embedded PostgreSQL for that process.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { PostgresBackend } from "../../src/index.js";
import type { PostgresBackendConfig } from "../../src/postgres/config.js";
import { startEmbeddedPostgres } from "../../src/postgres/embedded/index.js";

/**
 * Every test file of one run shares this schema (test/run.ts picks a fresh one per run and drops
 * it afterwards, so a run never sees an older install); files isolate themselves by workspace.
 */
export const TEST_SCHEMA = process.env.TEST_SCHEMA || "deepagents_test";

let url: Promise<string> | undefined;

export function databaseUrl(): Promise<string> {
  url ??= (async () => {
    if (process.env.DATABASE_URL) return process.env.DATABASE_URL;
    const dataDir = await mkdtemp(path.join(tmpdir(), "deepagents-backends-file-"));
    const server = await startEmbeddedPostgres({ dataDir, persistent: false });
    // The server's child process keeps the event loop alive, so "beforeExit" never comes: stop
    // it once uvu has reported (it sets process.exitCode when its last test has run).
    const finished = setInterval(async () => {
      if (process.exitCode === undefined) return;
      clearInterval(finished);
      await server.stop().catch(() => {});
      await rm(dataDir, { recursive: true, force: true });
      process.exit(process.exitCode);
    }, 100);
    return server.connectionString;
  })();
  return url;
}

export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(5).toString("hex")}`;
}

/** A backend on the shared test schema, in a workspace no other test uses. */
export async function testBackend(config: PostgresBackendConfig = {}): Promise<PostgresBackend> {
  const backend = new PostgresBackend({
    connectionString: await databaseUrl(),
    schema: TEST_SCHEMA,
    workspace: uniqueName("ws"),
    maxPoolSize: 4,
    minPoolSize: 0,
    ...config,
  });
  await backend.initialize();
  return backend;
}

/** A plain client for assertions on the database itself. */
export async function adminClient(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: await databaseUrl() });
  await client.connect();
  return client;
}

/** The same server and database as `url`, logged in as `role`. */
export function urlAs(url: string, role: string, password: string): string {
  const u = new URL(url);
  u.username = role;
  u.password = password;
  return u.toString();
}
