/**
 * migrate({ cluster }): the schema on every partition (migrate.ts, one after the other), then the
 * PL/Proxy front on the database migrate() was pointed at (sql/cluster_install.sql), made from
 * the partitions' own catalog, so the proxy's functions are exactly theirs. Down reverses it:
 * the front first, so no call reaches a partition being emptied.
 */
import pg from "pg";
import { clusterErrors } from "../../protocol.js";
import { type ConnectionOptions, clientConfig, validateSchema } from "../config.js";
import { type MigrateOptions, type MigrationRecord, migrate } from "../migrate.js";
import * as sql from "../sql/queries.js";
import { SQLSTATE, sqlstateOf } from "../sqlstate.js";
import { type ClusterOptions, libpqOptions, validateCluster } from "./options.js";

export async function migrateCluster(
  options: MigrateOptions & { cluster: ClusterOptions },
): Promise<MigrationRecord[]> {
  const schema = validateSchema(options.schema);
  const urls = validateCluster(options.cluster);
  const log = options.log ?? (() => {});
  // Partitions at different migrations, or a front removed over partitions still migrated.
  if (options.count !== undefined) throw new Error(clusterErrors.noCount());
  if (options.direction === "down") {
    if (!options.dryRun) {
      await onFront(options, (client) => runDefinition(client, schema, { schema }, sql.clusterUninstall));
      for (const url of urls) {
        await onPartition(options, url, (client) =>
          runDefinition(client, schema, { schema }, sql.clusterPartitionDrop),
        );
      }
    }
    return migratePartitions(options, schema, urls);
  }
  const applied = await migratePartitions(options, schema, urls);
  if (options.dryRun) return applied;
  const mask = urls.length - 1;
  // (not while a split moves the maps)
  await onFront(options, async (lock) => {
    await takeSplitLock(lock, schema);
    try {
      for (const [index, url] of urls.entries()) {
        await onPartition(options, url, async (client) => {
          await partitionMap(client, schema, { mask, index }, { mask, index });
          await partitionCheck(client, schema, urls.length, index, "add");
          await partitionCheck(client, schema, urls.length, index, "validate");
        });
      }
      log(`front: ${urls.length} partitions`);
      await installFront(options, schema, urls);
    } finally {
      await lock.query("SELECT pg_catalog.pg_advisory_unlock_all()");
    }
  });
  return applied;
}

/** migrate() on each partition in order; what partition 0 applied (or reverted). */
export async function migratePartitions(
  options: MigrateOptions,
  schema: string,
  urls: URL[],
): Promise<MigrationRecord[]> {
  const { cluster: _, pool: __, ...rest } = options;
  const done: MigrationRecord[] = [];
  for (const [i, url] of urls.entries()) {
    options.log?.(`partition ${i}: ${libpqOptions(url)}`);
    const records = await migrate({ ...rest, connectionString: url.toString(), schema });
    if (i === 0) done.push(...records);
  }
  return done;
}

/**
 * The front's server, user mapping and functions for `urls` (sql/cluster_install.sql), from the
 * partitions' catalog; every partition must be at one migration. `split`: the front had half as
 * many partitions (splitCluster()).
 */
export async function installFront(
  options: MigrateOptions,
  schema: string,
  urls: URL[],
  { split = false }: { split?: boolean } = {},
): Promise<void> {
  const first = await onPartition(options, urls[0], (client) => catalog(client, schema));
  for (const url of urls.slice(1)) {
    const other = await onPartition(options, url, (client) => catalog(client, schema));
    const [a, b] = [first, other].map((c) => c.migrations.map((m) => m.name).join(","));
    if (a !== b) throw new Error(clusterErrors.partitionsDiffer(libpqOptions(urls[0]), libpqOptions(url)));
  }
  const definition = {
    schema,
    split,
    partitions: urls.map(libpqOptions),
    functions: first.functions,
    migrations: first.migrations.map((m) => ({ name: m.name, run_on: m.run_on.toISOString() })),
  };
  await onFront(options, (client) => runDefinition(client, schema, definition, sql.clusterInstall));
}

/**
 * The partition's CHECK that its files and directories are of workspaces PL/Proxy maps to it
 * (sql/cluster_partition_check.sql): "add" NOT VALID, then "validate".
 */
export function partitionCheck(
  client: pg.ClientBase,
  schema: string,
  count: number,
  index: number,
  step: "add" | "validate",
): Promise<void> {
  return runDefinition(client, schema, { schema, mask: count - 1, index, step }, sql.clusterPartitionCheck);
}

/**
 * Which workspaces the partition answers for, to writes and to reads (sql/cluster_partition_guard.sql);
 * waits for the calls in flight there.
 */
export function partitionMap(
  client: pg.ClientBase,
  schema: string,
  write: { mask: number; index: number },
  read: { mask: number; index: number },
): Promise<void> {
  const definition = {
    schema,
    write_mask: write.mask,
    write_index: write.index,
    read_mask: read.mask,
    read_index: read.index,
  };
  return retryLockTimeout(() => runDefinition(client, schema, definition, sql.clusterPartitionGuard));
}

/** Changing the maps gives up after its lock_timeout (a transaction holds the map open): again, a few times. */
async function retryLockTimeout(work: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (e) {
      if (sqlstateOf(e) !== SQLSTATE.lockNotAvailable || attempt >= 10) throw e;
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
}

/**
 * The front's split lock (a session advisory lock on `client`'s connection, released when it
 * ends): one split or cluster migration at a time, and the calls on every partition wait for it.
 */
export async function takeSplitLock(client: pg.ClientBase, schema: string): Promise<void> {
  const [{ locked }] = (
    await client.query("SELECT pg_catalog.pg_try_advisory_lock(pg_catalog.hashtext($1)) AS locked", [
      `deepagents-backends:cluster-split:${schema}`,
    ])
  ).rows;
  if (!locked) throw new Error(clusterErrors.splitRunning(schema));
}

/** A partition's migrations and function signatures (sql/cluster_migrations.sql, cluster_signatures.sql). */
async function catalog(client: pg.ClientBase, schema: string) {
  return {
    migrations: await sql.clusterMigrations.run(client, schema, {}),
    functions: await sql.clusterSignatures.run(client, schema, { schema }),
  };
}

/**
 * How migrate() reaches a partition: its URL (role, password, place, sslmode), and the TLS
 * settings given for the front (options.ssl, options.sslmode), which a URL cannot carry.
 */
export function partitionConnection(options: ConnectionOptions, url: URL): ConnectionOptions {
  return { connectionString: url.toString(), ssl: options.ssl, sslmode: options.sslmode };
}

/** `work` on a connection of its own to a partition (partitionConnection). */
export async function onPartition<R>(
  options: ConnectionOptions,
  url: URL,
  work: (client: pg.Client) => Promise<R>,
): Promise<R> {
  const client = new pg.Client(clientConfig({ ...partitionConnection(options, url), statementTimeoutMs: 0 }));
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** `work` on a connection to the front: one of options.pool's (discarded after), or its own. */
export async function onFront<R>(options: MigrateOptions, work: (client: pg.ClientBase) => Promise<R>): Promise<R> {
  const pooled = options.pool ? await options.pool.connect() : undefined;
  const own = pooled ? undefined : new pg.Client(clientConfig(options));
  await own?.connect();
  const client = (pooled ?? own)!;
  try {
    return await work(client);
  } finally {
    pooled?.release(true);
    await own?.end().catch(() => {});
  }
}

/** The definition set for a DO block (sql/cluster_scope.sql), then the block, in one transaction. */
export async function runDefinition(
  client: pg.ClientBase,
  schema: string,
  definition: object,
  block: typeof sql.clusterInstall,
): Promise<void> {
  await client.query("BEGIN");
  try {
    await client.query("SET LOCAL statement_timeout = 0");
    await sql.clusterScope.run(client, schema, { definition: JSON.stringify(definition) });
    await block.run(client, schema, {});
    await client.query("COMMIT");
  } catch (e) {
    await client.query("ROLLBACK").catch(() => {});
    // 58P01 undefined_file: CREATE EXTENSION found no plproxy.control on the front's server.
    if (sqlstateOf(e) === "58P01" && /plproxy/.test((e as Error).message)) throw new Error(clusterErrors.noPlProxy());
    throw e;
  }
}
