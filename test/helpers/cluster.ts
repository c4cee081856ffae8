/**
 * A sharded deployment for the cluster suites (test/cluster.*.test.ts): four partition databases
 * spread over the servers of CLUSTER_SERVERS (test/services/plproxy/start-partitions.sh: two
 * more PostgreSQL 15 clusters), and the PL/Proxy front in a database of DATABASE_URL's server.
 * test/run.ts migrates it once per run under the run's schema (and drops it afterwards); a file
 * run on its own does it itself. Without CLUSTER_SERVERS (the embedded PostgreSQL has no
 * PL/Proxy) the suites say so and skip.
 */
import pg from "pg";
import { test } from "uvu";
import type { PostgresBackend } from "../../src/index.js";
import type { PostgresBackendConfig } from "../../src/postgres/config.js";
import { migrate } from "../../src/postgres/migrate.js";
import { databaseUrl, TEST_SCHEMA, testBackend, uniqueName } from "./db.js";

export const PARTITIONS = 4;
const PROXY_DATABASE = "deepagents_test_proxy";

/** The servers that hold partitions (postgres:// URLs of a database to connect to), or null. */
export function clusterServers(): string[] | null {
  const servers = process.env.CLUSTER_SERVERS?.split(",").filter(Boolean) ?? [];
  return servers.length > 0 ? servers : null;
}

export const withDatabase = (url: string, database: string) => {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
};

export interface TestCluster {
  /** The PL/Proxy front. */
  proxyUrl: string;
  /** The partitions' databases, in PL/Proxy's order. */
  partitions: string[];
}

/** The databases of the test cluster on `servers` and `main` (none is created here). */
export function clusterLayout(servers: string[], main: string): TestCluster {
  return {
    proxyUrl: withDatabase(main, PROXY_DATABASE),
    partitions: Array.from({ length: PARTITIONS }, (_, i) =>
      withDatabase(servers[i % servers.length], `deepagents_test_part_${i}`),
    ),
  };
}

/** `body` on a client of its own connected to `url` (ended afterwards). */
export async function onDatabase<T>(url: string, body: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await body(c);
  } finally {
    await c.end();
  }
}

/** Creates the database of `url` when it is missing (on its server's `postgres` database). */
export async function createDatabase(url: string): Promise<void> {
  const u = new URL(url);
  const name = u.pathname.slice(1);
  const admin = new pg.Client({ connectionString: withDatabase(url, "postgres") });
  await admin.connect();
  try {
    const { rows } = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (rows.length === 0) await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } catch (e) {
    // 42P04 duplicate_database, or 23505 when another process created it at the same moment
    if (!["42P04", "23505"].includes((e as { code?: string }).code ?? "")) throw e;
  } finally {
    await admin.end();
  }
}

/** Creates the databases (when missing) and migrates the cluster under `schema`. */
export async function prepareCluster(servers: string[], main: string, schema: string): Promise<TestCluster> {
  const layout = clusterLayout(servers, main);
  for (const url of [layout.proxyUrl, ...layout.partitions]) await createDatabase(url);
  await migrate({ connectionString: layout.proxyUrl, schema, cluster: { partitions: layout.partitions } });
  return layout;
}

/** Drops what prepareCluster made under `schema` (the databases stay for the next run). */
export async function dropCluster(servers: string[], main: string, schema: string): Promise<void> {
  const layout = clusterLayout(servers, main);
  const run = (url: string, sql: string) => onDatabase(url, (c) => c.query(sql));
  const id = pg.escapeIdentifier(schema);
  await run(layout.proxyUrl, `DROP SERVER IF EXISTS ${id} CASCADE; DROP SCHEMA IF EXISTS ${id} CASCADE`);
  for (const url of layout.partitions) await run(url, `DROP SCHEMA IF EXISTS ${id} CASCADE`);
}

let prepared: Promise<TestCluster> | undefined;

/** This run's cluster (test/run.ts prepared it: CLUSTER_PROXY_URL), or null without servers. */
export function testCluster(): Promise<TestCluster> | null {
  const servers = clusterServers();
  if (!servers) return null;
  prepared ??= (async () => {
    const main = await databaseUrl();
    if (process.env.CLUSTER_PROXY_URL) return clusterLayout(servers, main);
    return prepareCluster(servers, main, TEST_SCHEMA);
  })();
  return prepared;
}

/** A backend on the cluster's front, in a workspace no other test uses. */
export async function clusterBackend(config: PostgresBackendConfig = {}): Promise<PostgresBackend> {
  const cluster = await testCluster();
  if (!cluster) throw new Error("no cluster: CLUSTER_SERVERS is not set");
  return testBackend({ connectionString: cluster.proxyUrl, ...config });
}

/**
 * PL/Proxy's mapping as the tests compute it, and plain clients of the partitions: what the
 * suites check the front's routing against.
 */
export class PartitionView {
  readonly #front: pg.Client;
  readonly #urls: string[];
  private constructor(front: pg.Client, urls: string[]) {
    this.#front = front;
    this.#urls = urls;
  }
  static async open(cluster: TestCluster): Promise<PartitionView> {
    const front = new pg.Client({ connectionString: cluster.proxyUrl });
    await front.connect();
    return new PartitionView(front, cluster.partitions);
  }
  /** hashtext(workspace) & (partitions - 1), computed on the front. */
  async of(workspace: string): Promise<number> {
    const { rows } = await this.#front.query("SELECT pg_catalog.hashtext($1) & $2 AS p", [workspace, PARTITIONS - 1]);
    return rows[0].p;
  }
  /** A new client of the partition holding `workspace` (the caller ends it). */
  async client(workspace: string): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: this.#urls[await this.of(workspace)] });
    await client.connect();
    return client;
  }
  /** A fresh workspace name on partition `p` (or, with on = false, on any other). */
  async nameOn(p: number, on = true): Promise<string> {
    for (;;) {
      const name = uniqueName("px");
      if (((await this.of(name)) === p) === on) return name;
    }
  }
  end(): Promise<void> {
    return this.#front.end();
  }
}

/**
 * Without CLUSTER_SERVERS: one skipped test that says why, and true (the file then registers
 * nothing else). The sharded suites need Debian's PostgreSQL with PL/Proxy; CI starts it.
 */
export function skipWithoutCluster(what: string): boolean {
  if (clusterServers()) return false;
  const why = `${what}: skipped, no cluster (CLUSTER_SERVERS unset; PL/Proxy runs on the Debian PostgreSQL 15 only: test/services/plproxy/start-partitions.sh)`;
  console.log(why);
  test.skip(why, () => {});
  test.run();
  return true;
}

/**
 * Workspace names that PL/Proxy puts on one partition together with the same name followed by
 * each of `suffixes` (a fork stays on one partition: the history suite forks into such names).
 */
export async function namesSharingPartition(count: number, suffixes: string[]): Promise<string[]> {
  const cluster = await testCluster();
  const client = new pg.Client({ connectionString: cluster!.proxyUrl });
  await client.connect();
  try {
    const mask = PARTITIONS - 1;
    const same = suffixes
      .map((_, i) => `(pg_catalog.hashtext(b || $${i + 2}) & ${mask}) = (pg_catalog.hashtext(b) & ${mask})`)
      .join(" AND ");
    const { rows } = await client.query(
      `SELECT b FROM (SELECT 'hc_' || substr(md5(random()::text || g), 1, 12) AS b
                      FROM generate_series(1, $1::int) g) c
       WHERE ${same} LIMIT ${count}`,
      [count * 4 ** suffixes.length * 3, ...suffixes],
    );
    return rows.map((r) => r.b);
  } finally {
    await client.end();
  }
}
