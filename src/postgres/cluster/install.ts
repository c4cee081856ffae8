/**
 * migrate({ cluster }): the schema on every partition (migrate.ts, one after the other), then the
 * PL/Proxy front on the database migrate() was pointed at (sql/cluster_install.sql), made from
 * the partitions' own catalog, so the proxy's functions are exactly theirs. Down reverses it:
 * the front first, so no call reaches a partition being emptied.
 */
import pg from "pg";
import { clusterErrors } from "../../protocol.js";
import { clientConfig, validateSchema } from "../config.js";
import { type MigrateOptions, type MigrationRecord, migrate } from "../migrate.js";
import * as sql from "../sql/queries.js";
import { sqlstateOf } from "../sqlstate.js";
import { type ClusterOptions, libpqOptions, validateCluster } from "./options.js";

export async function migrateCluster(
  options: MigrateOptions & { cluster: ClusterOptions },
): Promise<MigrationRecord[]> {
  const schema = validateSchema(options.schema);
  const urls = validateCluster(options.cluster);
  const log = options.log ?? (() => {});
  const { cluster: _, pool, ...rest } = options;
  const onPartition = (url: URL) => ({ ...rest, pool: undefined, connectionString: url.toString(), schema });
  if (options.direction === "down") {
    if (!options.dryRun)
      await onProxy(options, (client) => runDefinition(client, schema, { schema }, sql.clusterUninstall));
    const reverted: MigrationRecord[] = [];
    for (const [i, url] of urls.entries()) {
      log(`partition ${i}: ${libpqOptions(url)}`);
      const done = await migrate(onPartition(url));
      if (i === 0) reverted.push(...done);
    }
    return reverted;
  }
  const applied: MigrationRecord[] = [];
  for (const [i, url] of urls.entries()) {
    log(`partition ${i}: ${libpqOptions(url)}`);
    const done = await migrate(onPartition(url));
    if (i === 0) applied.push(...done);
  }
  if (options.dryRun) return applied;
  const first = await catalog(urls[0], schema);
  for (const url of urls.slice(1)) {
    const other = await catalog(url, schema);
    const [a, b] = [first, other].map((c) => c.migrations.map((m) => m.name).join(","));
    if (a !== b) throw new Error(clusterErrors.partitionsDiffer(libpqOptions(urls[0]), libpqOptions(url)));
  }
  log(`proxy: ${urls.length} partitions, ${first.functions.length} functions read from partition 0`);
  await onProxy(options, (client) =>
    runDefinition(
      client,
      schema,
      {
        schema,
        partitions: urls.map(libpqOptions),
        functions: first.functions,
        migrations: first.migrations.map((m) => ({ name: m.name, run_on: m.run_on.toISOString() })),
      },
      sql.clusterInstall,
    ),
  );
  return applied;
}

/** A partition's migrations and function signatures (sql/cluster_migrations.sql, cluster_signatures.sql). */
async function catalog(url: URL, schema: string) {
  const client = new pg.Client(clientConfig({ connectionString: url.toString() }));
  await client.connect();
  try {
    return {
      migrations: await sql.clusterMigrations.run(client, schema, {}),
      functions: await sql.clusterSignatures.run(client, schema, { schema }),
    };
  } finally {
    await client.end().catch(() => {});
  }
}

/** A connection to the proxy database: one of options.pool's (discarded after), or its own. */
async function onProxy(options: MigrateOptions, work: (client: pg.ClientBase) => Promise<void>): Promise<void> {
  const pooled = options.pool ? await options.pool.connect() : undefined;
  const own = pooled ? undefined : new pg.Client(clientConfig(options));
  await own?.connect();
  const client = (pooled ?? own)!;
  try {
    await work(client);
  } finally {
    pooled?.release(true);
    await own?.end().catch(() => {});
  }
}

/** The definition set for the DO block (sql/cluster_scope.sql), then the block, in one transaction. */
async function runDefinition(
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
