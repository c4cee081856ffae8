/**
 * A backend pointed at the PL/Proxy front of a cluster (docs/CLUSTER.md) makes every call there,
 * except what needs a session on the partition itself: watch() (NOTIFY is per server) and
 * streamed searches (a cursor, and a snapshot shared by two connections). For those, the front
 * says which partition holds the workspace and where it is (sql/cluster_partition.sql), and the
 * backend opens a pool there with its own settings: same role, password and TLS, the
 * partition's host, port and database. Pools open on first use, one per partition.
 */
import pg from "pg";
import { type PostgresBackendConfig, poolConfig } from "../config.js";
import { Connection } from "../connection.js";
import * as sql from "../sql/queries.js";
import { parseLibpqOptions } from "./options.js";

export class Partitions {
  /** Set by initialize(): this backend's database is the front of a cluster. */
  active = false;
  readonly #proxy: Connection;
  readonly #config: PostgresBackendConfig;
  readonly #schema: string;
  readonly #byIndex = new Map<number, Connection>();
  readonly #pools: pg.Pool[] = [];
  readonly #byWorkspace = new Map<string, Promise<Connection>>();

  constructor(proxy: Connection, config: PostgresBackendConfig, schema: string) {
    this.#proxy = proxy;
    this.#config = config;
    this.#schema = schema;
  }

  /** The partition holding `workspace` (asked of the front once per workspace). */
  of(workspace: string): Promise<Connection> {
    let found = this.#byWorkspace.get(workspace);
    if (!found) {
      found = this.#proxy.run(sql.clusterPartition, { workspace }).then(([row]) => this.#open(row));
      found.catch(() => this.#byWorkspace.delete(workspace)); // asked again next time
      this.#byWorkspace.set(workspace, found);
    }
    return found;
  }

  /** Every partition, in order (admin.ts merges what spans workspaces). */
  async all(): Promise<Connection[]> {
    const rows = await this.#proxy.run(sql.clusterPartitions, { schema: this.#schema });
    return rows.map((row) => this.#open(row));
  }

  #open({ partition, options }: { partition: number; options: string }): Connection {
    let connection = this.#byIndex.get(partition);
    if (!connection) {
      const pool = new pg.Pool({
        ...poolConfig(this.#config),
        ...partitionClient(this.#proxy.clientConfig(), options),
      });
      pool.on("error", () => {}); // an idle connection killed by the server: the pool drops it
      this.#pools.push(pool);
      connection = new Connection({ ...this.#config, pool }, this.#schema);
      this.#byIndex.set(partition, connection);
    }
    return connection;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#byIndex.values()].map((c) => c.close()));
    await Promise.all(this.#pools.map((p) => p.end()));
  }
}

/**
 * The settings of a connection to a partition: the front's (role, password, TLS, timeouts) with
 * the partition's host, port and database (its libpq options on the front's SQL/MED server).
 */
export function partitionClient(front: pg.ClientConfig, libpq: string): pg.ClientConfig {
  const options = parseLibpqOptions(libpq);
  const host = options.get("host");
  const port = options.get("port");
  const database = options.get("dbname");
  if (!front.connectionString) {
    return {
      ...front,
      host: host ?? front.host,
      port: port ? Number(port) : front.port,
      database: database ?? front.database,
    };
  }
  // A connection string wins over separate fields in node-postgres: rewrite it instead.
  const url = new URL(front.connectionString);
  if (host?.startsWith("/"))
    url.searchParams.set("host", host); // a Unix socket directory
  else if (host) url.hostname = host.includes(":") ? `[${host}]` : host;
  if (port) url.port = port;
  if (database) url.pathname = `/${encodeURIComponent(database)}`;
  return { ...front, connectionString: url.toString() };
}
