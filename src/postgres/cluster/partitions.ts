/**
 * A backend pointed at the PL/Proxy front of a cluster (docs/CLUSTER.md) makes every call there,
 * except what needs a session on the partition itself: watch() (NOTIFY is per server) and
 * streamed searches (a cursor, and a snapshot shared by two connections). For those, the front
 * says which partition holds the workspace and where it is (sql/cluster_partition.sql), and the
 * backend opens a pool there with its own settings: same role, password and TLS, the
 * partition's host, port and database. Pools open on first use, one per partition.
 */
import pg from "pg";
import { type PostgresBackendConfig, poolConfig, type SslMode, sslFromMode } from "../config.js";
import { Connection } from "../connection.js";
import * as sql from "../sql/queries.js";
import { parseLibpqOptions } from "./options.js";

export class Partitions {
  /** Set by initialize(): this backend's database is the front of a cluster. */
  active = false;
  readonly #proxy: Connection;
  readonly #config: PostgresBackendConfig;
  readonly #schema: string;
  /** One pool per partition, by where it is (its libpq options on the front). */
  readonly #byPlace = new Map<string, Connection>();
  readonly #pools: pg.Pool[] = [];

  constructor(proxy: Connection, config: PostgresBackendConfig, schema: string) {
    this.#proxy = proxy;
    this.#config = config;
    this.#schema = schema;
  }

  /**
   * The partition holding `workspace`, asked of the front each time (a round trip per watch()
   * or stream opened): splitCluster() may have moved the workspace since.
   */
  async of(workspace: string): Promise<Connection> {
    const [row] = await this.#proxy.run(sql.clusterPartition, { workspace });
    return this.#open(row.options);
  }

  #open(options: string): Connection {
    let connection = this.#byPlace.get(options);
    if (!connection) {
      const pool = new pg.Pool({
        ...poolConfig(this.#config),
        ...partitionClient(this.#proxy.clientConfig(), options),
      });
      pool.on("error", () => {}); // an idle connection killed by the server: the pool drops it
      this.#pools.push(pool);
      connection = new Connection({ ...this.#config, pool }, this.#schema);
      this.#byPlace.set(options, connection);
    }
    return connection;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#byPlace.values()].map((c) => c.close()));
    await Promise.all(this.#pools.map((p) => p.end()));
  }
}

/** libpq's sslmodes, weakest first. */
const SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"];

/**
 * The settings of a connection to a partition: the front's (role, password, TLS, timeouts) with
 * the partition's host, port and database (its libpq options on the front's SQL/MED server), and
 * the stricter of the two sslmodes.
 */
export function partitionClient(front: pg.ClientConfig, libpq: string): pg.ClientConfig {
  const options = parseLibpqOptions(libpq);
  const host = options.get("host");
  const port = options.get("port");
  const database = options.get("dbname");
  const sslmode = options.get("sslmode");
  if (!front.connectionString) {
    const config = {
      ...front,
      host: host ?? front.host,
      port: port ? Number(port) : front.port,
      database: database ?? front.database,
    };
    // The partition asks for TLS and the front's settings have none: the partition's mode.
    if (sslmode && SSL_MODES.indexOf(sslmode) >= SSL_MODES.indexOf("prefer") && !front.ssl) {
      config.ssl = sslFromMode(sslmode as SslMode);
    }
    return config;
  }
  // A connection string wins over separate fields in node-postgres: rewrite it. Its own host and
  // port parameters would win over the rewritten place: they go.
  const url = new URL(front.connectionString.replace(/^(postgres(?:ql)?:\/\/[^/?#]*@)(?=[/?#]|$)/, "$1localhost"));
  for (const key of ["host", "hostaddr", "port"]) url.searchParams.delete(key);
  if (host?.startsWith("/"))
    url.searchParams.set("host", host); // a Unix socket directory
  else if (host) url.hostname = host.includes(":") ? `[${host}]` : host;
  url.port = port ?? "";
  if (database) url.pathname = `/${encodeURIComponent(database)}`;
  const mode = url.searchParams.get("sslmode") ?? "disable";
  if (sslmode && SSL_MODES.indexOf(sslmode) > SSL_MODES.indexOf(mode)) url.searchParams.set("sslmode", sslmode);
  return { ...front, connectionString: url.toString() };
}
