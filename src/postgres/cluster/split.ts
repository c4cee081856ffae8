/**
 * splitCluster(): twice as many partitions (docs/CLUSTER.md, "Adding partitions"). PL/Proxy maps
 * a workspace to hashtext(workspace) & (count - 1), so doubling the count keeps each workspace on
 * its partition j or moves it to j + count: half of each partition's workspaces move, each to a
 * new partition of its own.
 *   0. A fence on each old partition: the CHECK that its files and directories belong to it under
 *      the new map (NOT VALID). From then on a moving workspace's writes fail there (the caller
 *      retries; nothing acknowledged can land where the copy has already passed).
 *   1. For each old partition j, in one transaction there that makes its other writers wait
 *      (SHARE locks on every workspace table; reads go on): the moving workspaces' rows are
 *      copied to partition j + count as they are (the target's triggers off: files, chunks,
 *      history, checkpoints, change log; ids and versions kept, so change-feed cursors and
 *      checkpoint ids stay valid), grants made again with grant_workspace(), the target's
 *      sequences moved past the source's, the target fenced for its own index, and committed;
 *      then the rows are deleted from j (triggers off: a move is not a delete in any log), and
 *      each moved workspace's log there gets a horizon above every id (a watch still reading it
 *      there is told to resync).
 *   2. The front is made again for the new count; only then do the old partitions commit.
 *   3. The fences are validated and the old partitions' unused chunks and blobs swept.
 * A failure before step 2 undoes steps 0 and 1 (the new partitions are emptied again).
 */
import pg from "pg";
import { clusterErrors } from "../../protocol.js";
import { clientConfig, validateSchema } from "../config.js";
import type { MigrateOptions } from "../migrate.js";
import * as sql from "../sql/queries.js";
import {
  installFront,
  migratePartitions,
  onFront,
  onPartition,
  partitionCheck,
  partitionConnection,
  runInOpenTransaction,
} from "./install.js";
import { type ClusterOptions, libpqOptions, validateCluster } from "./options.js";

export interface SplitReport {
  /** Per old partition: the workspaces moved to its new twin, and the rows copied. */
  moved: Array<{ from: number; to: number; workspaces: number; rows: number }>;
}

/** How each table of the schema is split: which rows move (a predicate on `m`, the moving test). */
const TABLES: Record<string, { moves: (m: (column: string) => string) => string | null }> = {
  files: { moves: (m) => m("workspace") },
  directories: { moves: (m) => m("workspace") },
  changes: { moves: (m) => m("workspace") },
  changes_horizon: { moves: (m) => m("workspace") },
  checkpoints: { moves: (m) => m("workspace") },
  file_versions: { moves: (m) => m("workspace") },
  tombstones: { moves: (m) => m("workspace") },
  // A workspace's own settings move; the schema default ('') is copied to the new partition.
  history_settings: { moves: (m) => `(t.scope = '' OR ${m("scope")})` },
  // Shared by forks: the sets and blobs the moving rows use are copied (and swept from the
  // source afterwards if nothing there uses them any more).
  chunks: { moves: (m) => `t.chunk_set IN (SELECT f.chunk_set FROM {{schema}}.files f WHERE ${m("f.workspace")})` },
  blobs: {
    moves: (m) =>
      `t.hash IN (SELECT v.blob FROM {{schema}}.file_versions v WHERE v.blob IS NOT NULL AND ${m("v.workspace")})`,
  },
  // Made again on the target with grant_workspace() (rows and table privileges).
  workspace_grants: { moves: () => null },
  // A transaction's own, empty between transactions; and the migrations, which the target has.
  changes_flush: { moves: () => null },
  changes_pending: { moves: () => null },
  fork_marks: { moves: () => null },
  migrations: { moves: () => null },
};
/** The tables whose moving rows are deleted from the source (not the shared ones, swept later). */
const OWN_ROWS = ["files", "directories", "changes", "changes_horizon", "checkpoints", "file_versions", "tombstones"];
/** Rows per INSERT on the target (a file may be 64 MiB: the batch is held in memory twice). */
const BATCH = 50;

export async function splitCluster(options: MigrateOptions & { cluster: ClusterOptions }): Promise<SplitReport> {
  const schema = validateSchema(options.schema);
  const urls = validateCluster(options.cluster);
  const count = urls.length / 2;
  const log = options.log ?? (() => {});
  const current = await onFront(options, (c) => sql.clusterPartitions.run(c, schema, { schema }));
  const expected = urls.slice(0, count).map(libpqOptions);
  if (count < 1 || current.length !== count || current.some((p, i) => p.options !== expected[i])) {
    throw new Error(
      clusterErrors.splitMismatch(
        current.map((p) => p.options),
        urls.length,
      ),
    );
  }
  // The new partitions: migrated, and empty.
  await migratePartitions(options, schema, urls.slice(count));
  for (const url of urls.slice(count)) {
    const [{ n }] = (
      await onPartition(options, url, (c) => c.query(`SELECT count(*)::int AS n FROM ${id(schema)}.files`))
    ).rows;
    if (n > 0) throw new Error(clusterErrors.splitTargetNotEmpty(libpqOptions(url)));
  }
  const report: SplitReport = { moved: [] };
  const sources: pg.Client[] = [];
  let switched = false;
  try {
    // The fence, first and in a short transaction of its own on each old partition: from here on
    // a moving workspace's rows cannot be written there (CHECK with the new map, NOT VALID), so a
    // write of one fails until the front routes it to its new partition. (Adding it needs an
    // ACCESS EXCLUSIVE lock for a moment: inside the long transaction below it would deadlock
    // with the writers that transaction makes wait.)
    for (let j = 0; j < count; j++)
      await onPartition(options, urls[j], (c) => partitionCheck(c, schema, 2 * count, j, "add"));
    for (let j = 0; j < count; j++) {
      const source = await open(options, urls[j]);
      sources.push(source);
      log(`partition ${j} -> ${j + count}`);
      report.moved.push(await moveHalf(options, source, urls[j + count], schema, j, count));
    }
    log(`front: ${urls.length} partitions`);
    await installFront(options, schema, urls, { split: true });
    switched = true;
    for (const source of sources) await source.query("COMMIT");
  } catch (e) {
    await Promise.all(sources.map((s) => s.query("ROLLBACK").catch(() => {})));
    if (!switched) {
      // Nothing moved: the old partitions get their fence back for the old map, the new ones are
      // emptied again (they were empty), and the front still routes as before.
      for (let j = 0; j < count; j++) {
        await onPartition(options, urls[j], (c) => partitionCheck(c, schema, count, j, "add")).catch(() => {});
        await onPartition(options, urls[j + count], (c) => emptyPartition(c, schema)).catch(() => {});
      }
    }
    throw e;
  } finally {
    await Promise.all(sources.map((s) => s.end().catch(() => {})));
  }
  // Outside the switch: check the rows already there, and sweep what the sources no longer use.
  for (const [index, url] of urls.entries()) {
    await onPartition(options, url, (c) => partitionCheck(c, schema, urls.length, index, "validate"));
    if (index < count) {
      await onPartition(options, url, async (c) => {
        await sql.pruneChunks.run(c, schema, {});
        await c.query(`SELECT ${id(schema)}.history_collect_blobs()`);
      });
    }
  }
  return report;
}

const id = (name: string) => `"${name.replace(/"/g, '""')}"`;

async function open(options: MigrateOptions, url: URL): Promise<pg.Client> {
  const client = new pg.Client(clientConfig({ ...partitionConnection(options, url), statementTimeoutMs: 0 }));
  await client.connect();
  return client;
}

/**
 * Partition j's moving half to `targetUrl` (committed there), and deleted from `source` in the
 * open transaction it begins there (left open: the caller commits it once the front routes to
 * the target).
 */
async function moveHalf(
  options: MigrateOptions,
  source: pg.Client,
  targetUrl: URL,
  schema: string,
  j: number,
  count: number,
): Promise<SplitReport["moved"][number]> {
  const s = id(schema);
  const mask = 2 * count - 1;
  const to = j + count;
  const moving = (column: string) =>
    `(pg_catalog.hashtext(${column.includes(".") ? column : `t.${column}`}) & ${mask}) = ${to}`;
  await source.query("BEGIN");
  await source.query("SET LOCAL statement_timeout = 0");
  const tables = (
    await source.query<{ name: string }>(
      "SELECT c.relname AS name FROM pg_catalog.pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'r' ORDER BY 1",
      [schema],
    )
  ).rows.map((r) => r.name);
  const unknown = tables.filter((t) => !(t in TABLES));
  if (unknown.length > 0) throw new Error(clusterErrors.splitUnknownTables(unknown));
  // Writers wait from here (a write in flight finishes first; the fence already refuses a moving
  // workspace's inserts and updates, and this makes its deletes wait too); readers go on.
  await source.query(
    `LOCK TABLE ${OWN_ROWS.concat("history_settings", "workspace_grants")
      .map((t) => `${s}.${t}`)
      .join(", ")} IN SHARE MODE`,
  );
  let rows = 0;
  await onPartition(options, targetUrl, async (target) => {
    await target.query("BEGIN");
    try {
      await target.query("SET LOCAL session_replication_role = replica"); // as they are: no trigger runs
      await target.query(`DELETE FROM ${s}.history_settings WHERE scope = ''`); // the source's default wins
      for (const table of tables) {
        const where = TABLES[table].moves(moving);
        if (where) rows += await copyRows(source, target, schema, table, where.replaceAll("{{schema}}", s));
      }
      const grants = await source.query<{ role_name: string; workspace: string | null }>(
        `SELECT t.role_name, t.workspace FROM ${s}.workspace_grants t WHERE t.workspace IS NULL OR ${moving("workspace")}`,
      );
      await target.query("SET LOCAL session_replication_role = origin");
      for (const g of grants.rows)
        await sql.grantWorkspace.run(target, schema, { role: g.role_name, workspace: g.workspace });
      // Ids and versions go on from the source's: a change id or checkpoint id is never reused.
      const sequences = await source.query<{ name: string; last: string | null }>(
        "SELECT sequencename AS name, last_value::text AS last FROM pg_catalog.pg_sequences WHERE schemaname = $1",
        [schema],
      );
      for (const q of sequences.rows) {
        if (q.last !== null) await target.query("SELECT pg_catalog.setval($1, $2)", [`${s}.${id(q.name)}`, q.last]);
      }
      await runInOpenTransaction(target, schema, { schema, mask, index: to, step: "add" }, sql.clusterPartitionCheck);
      await target.query("COMMIT");
    } catch (e) {
      await target.query("ROLLBACK").catch(() => {});
      throw e;
    }
  });
  // The source forgets them: rows deleted with triggers off (a move is not a delete in any log),
  // each moved workspace's log closed with a horizon above every id (a watcher still reading it
  // here is told to resync, and a new watch() asks the front, which now names the target).
  await source.query("SET LOCAL session_replication_role = replica");
  const moved = await source.query<{ workspace: string }>(
    `SELECT DISTINCT t.workspace FROM (${OWN_ROWS.map((t) => `SELECT workspace FROM ${s}.${t}`).join(" UNION ")}) t WHERE ${moving("workspace")}`,
  );
  for (const table of OWN_ROWS) await source.query(`DELETE FROM ${s}.${table} t WHERE ${moving("workspace")}`);
  await source.query(`DELETE FROM ${s}.history_settings t WHERE t.scope <> '' AND ${moving("scope")}`);
  await source.query(`DELETE FROM ${s}.workspace_grants t WHERE ${moving("workspace")}`);
  await source.query(
    `INSERT INTO ${s}.changes_horizon (workspace, pruned_to) SELECT w, 9223372036854775807 FROM unnest($1::text[]) AS w`,
    [moved.rows.map((r) => r.workspace)],
  );
  await source.query("SET LOCAL session_replication_role = origin");
  return { from: j, to, workspaces: moved.rows.length, rows };
}

/** Every row of the schema's data tables deleted, triggers off: a new partition as it was. */
async function emptyPartition(client: pg.ClientBase, schema: string): Promise<void> {
  await client.query("BEGIN");
  await client.query("SET LOCAL session_replication_role = replica");
  for (const [table, rule] of Object.entries(TABLES)) {
    if (table !== "migrations" && (rule.moves(() => "true") !== null || table === "workspace_grants")) {
      await client.query(`DELETE FROM ${id(schema)}.${id(table)}`);
    }
  }
  await client.query("COMMIT");
}

/** The rows of `table` matching `where` (alias t), from source to target in batches; how many. */
async function copyRows(
  source: pg.Client,
  target: pg.Client,
  schema: string,
  table: string,
  where: string,
): Promise<number> {
  const s = id(schema);
  // Generated columns are computed again; identity values are kept (OVERRIDING SYSTEM VALUE).
  const columns = (
    await source.query<{ name: string }>(
      `SELECT a.attname AS name FROM pg_catalog.pg_attribute a
       WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
       ORDER BY a.attnum`,
      [`${s}.${id(table)}`],
    )
  ).rows.map((r) => id(r.name));
  const list = columns.join(", ");
  // A cursor in the source's open transaction (its snapshot, under its locks).
  await source.query(
    `DECLARE split_rows NO SCROLL CURSOR FOR SELECT ${columns.map((c) => `t.${c}`).join(", ")} FROM ${s}.${id(table)} t WHERE ${where}`,
  );
  let copied = 0;
  try {
    for (;;) {
      const batch = (await source.query(`FETCH ${BATCH} FROM split_rows`)).rows as Record<string, unknown>[];
      if (batch.length === 0) break;
      await target.query(
        `INSERT INTO ${s}.${id(table)} (${list}) OVERRIDING SYSTEM VALUE
         SELECT ${list} FROM jsonb_populate_recordset(NULL::${s}.${id(table)}, $1::jsonb)`,
        [JSON.stringify(batch.map(jsonRow))],
      );
      copied += batch.length;
    }
  } finally {
    await source.query("CLOSE split_rows").catch(() => {}); // (a failed transaction dropped it)
  }
  return copied;
}

/** A row as jsonb_populate_recordset reads it: bytea as '\x' hex (JSON has no bytes). */
function jsonRow(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) out[k] = Buffer.isBuffer(v) ? `\\x${v.toString("hex")}` : v;
  return out;
}
