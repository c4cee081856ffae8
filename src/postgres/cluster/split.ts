/**
 * splitCluster(): twice as many partitions (docs/CLUSTER.md, "Adding partitions"). PL/Proxy maps
 * a workspace to hashtext(workspace) & (count - 1), so doubling the count keeps each workspace of
 * partition j on j or moves it to j + count: half of each partition's workspaces move, each to a
 * new partition of its own. Each partition answers only for the workspaces of its maps
 * (sql/cluster_partition_guard.sql: a write map and a read map, checked by every routed call,
 * changed only once the calls in flight are done). The split moves the maps in this order:
 *   0. The front's split lock, held to the end: one split at a time, and the calls on every
 *      partition (pruneChanges, grants to every workspace, ...) wait for it.
 *   1. The fence: each old partition's write map becomes the new one. A moving workspace's
 *      writes are refused from then on (DA022, "try again"); its reads go on where it is.
 *   2. The copy, old partition by old partition, from one snapshot: the moving workspaces' rows
 *      to partition j + count as they are (the target's triggers off: files, chunks, history,
 *      checkpoints, change log; ids and versions kept, so change-feed cursors and checkpoint ids
 *      stay valid), grants made again with grant_workspace() (with their time of grant), the
 *      target's sequences moved past the source's. Nobody else writes these rows: the fence.
 *   3. The switch: the front is made again for the new count.
 *   4. Each old partition's read map becomes the new one, and the moved rows are deleted there
 *      (triggers off: a move is not a delete in any log), each moved workspace's log there closed
 *      with a horizon above every id (a watch still reading it there is told to resync), its
 *      grants revoked there (a role's privileges too, once it has no grant left there).
 *   5. The CHECKs on files and directories for the new map, and a sweep of the old partitions'
 *      unused chunks and blobs.
 * A failure before step 3 puts the old maps back and empties the new partitions (they were
 * empty); the split can then be run again.
 */
import pg from "pg";
import { clusterErrors } from "../../protocol.js";
import { clientConfig, validateSchema } from "../config.js";
import type { MigrateOptions } from "../migrate.js";
import * as sql from "../sql/queries.js";
import {
  installFront,
  migratePartitions,
  onPartition,
  partitionCheck,
  partitionMap,
  runDefinition,
  takeSplitLock,
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
/** The tables of one workspace's rows (sql/cluster_forget.sql deletes the moved ones from the source). */
const OWN_ROWS = ["files", "directories", "changes", "changes_horizon", "checkpoints", "file_versions", "tombstones"];
/** Rows per FETCH, and the most JSON sent to the target in one INSERT (a larger row goes alone). */
const BATCH = 50;
const BATCH_CHARS = 32 << 20;

export async function splitCluster(options: MigrateOptions & { cluster: ClusterOptions }): Promise<SplitReport> {
  const schema = validateSchema(options.schema);
  const urls = validateCluster(options.cluster);
  const count = urls.length / 2;
  const log = options.log ?? (() => {});
  const mask = 2 * count - 1;
  const lock = new pg.Client(clientConfig({ ...options, statementTimeoutMs: 0 }));
  await lock.connect();
  try {
    await takeSplitLock(lock, schema);
    const current = await sql.clusterPartitions.run(lock, schema, { schema });
    const expected = urls.slice(0, count).map(libpqOptions);
    if (count < 1 || current.length !== count || current.some((p, i) => p.options !== expected[i])) {
      throw new Error(
        clusterErrors.splitMismatch(
          current.map((p) => p.options),
          urls.length,
        ),
      );
    }
    // The old partitions' maps and the front's proxies as this version makes them (a front made
    // by an older version would not pass its calls through the maps: the fence would not hold).
    for (let j = 0; j < count; j++) {
      const old = { mask: count - 1, index: j };
      await onPartition(options, urls[j], (c) => partitionMap(c, schema, old, old));
    }
    await installFront(options, schema, urls.slice(0, count));
    // The new partitions: migrated, and empty.
    await migratePartitions(options, schema, urls.slice(count));
    for (const [k, url] of urls.slice(count).entries()) {
      await onPartition(options, url, async (c) => {
        if ((await countRows(c, schema)) === 0) return;
        // What an interrupted split of this cluster left on its target is emptied; anything else
        // there is someone's data.
        if (!(await leftOfSplit(c, schema, mask, k + count))) {
          throw new Error(clusterErrors.splitTargetNotEmpty(libpqOptions(url)));
        }
        await emptyPartition(c, schema);
      });
    }
    const report: SplitReport = { moved: [] };
    try {
      for (let j = 0; j < count; j++) {
        const target = { mask, index: j + count };
        await onPartition(options, urls[j + count], (c) => partitionMap(c, schema, target, target));
        await onPartition(options, urls[j], (c) =>
          partitionMap(c, schema, { mask, index: j }, { mask: count - 1, index: j }),
        );
      }
      for (let j = 0; j < count; j++) {
        log(`partition ${j} -> ${j + count}`);
        report.moved.push(await copyHalf(options, urls[j], urls[j + count], schema, j, count));
      }
      log(`front: ${urls.length} partitions`);
      await installFront(options, schema, urls, { split: true });
    } catch (e) {
      // Before the switch, undone. (A switch whose commit went through but whose answer was lost
      // is a switch: the front has the new count, and the split goes forward.)
      const front = await sql.clusterPartitions.run(lock, schema, { schema }).catch(() => []);
      if (front.length !== urls.length) {
        await undo(options, urls, schema, count, e);
        throw e;
      }
    }
    for (let j = 0; j < count; j++) await onPartition(options, urls[j], (c) => forget(c, schema, j, count));
    // The CHECKs for the new map, and the sweep of what the old partitions no longer use.
    for (const [index, url] of urls.entries()) {
      await onPartition(options, url, async (c) => {
        await partitionCheck(c, schema, urls.length, index, "add");
        await partitionCheck(c, schema, urls.length, index, "validate");
        if (index < count) {
          await sql.pruneChunks.run(c, schema, {});
          await c.query(`SELECT ${id(schema)}.history_collect_blobs()`);
        }
      });
    }
    return report;
  } finally {
    await lock.end().catch(() => {}); // (ending the session releases the split lock)
  }
}

/**
 * Before the switch nothing has moved: the old partitions' maps back to the old count, the new
 * partitions emptied again. Each step is tried even if another fails; their failures are
 * reported with the split's own.
 */
async function undo(
  options: MigrateOptions,
  urls: URL[],
  schema: string,
  count: number,
  cause: unknown,
): Promise<void> {
  const failures: string[] = [];
  for (let j = 0; j < count; j++) {
    const old = { mask: count - 1, index: j };
    await onPartition(options, urls[j], (c) => partitionMap(c, schema, old, old)).catch((e) =>
      failures.push(`partition ${j}: ${(e as Error).message}`),
    );
    await onPartition(options, urls[j + count], (c) => emptyPartition(c, schema)).catch((e) =>
      failures.push(`partition ${j + count}: ${(e as Error).message}`),
    );
  }
  if (failures.length > 0) {
    throw new Error(clusterErrors.splitUndoFailed((cause as Error)?.message ?? String(cause), failures));
  }
}

const id = (name: string) => `"${name.replace(/"/g, '""')}"`;
/** The test that a row (its workspace column) belongs to partition `to` of 2 × count. */
const movesTo = (to: number, count: number) => (column: string) =>
  `(pg_catalog.hashtext(${column.includes(".") ? column : `t.${column}`}) & ${2 * count - 1}) = ${to}`;
/** The moving workspaces among the rows of the workspace tables. */
const movingWorkspaces = (s: string, moving: (c: string) => string) =>
  `SELECT DISTINCT t.workspace FROM (${OWN_ROWS.map((t) => `SELECT workspace FROM ${s}.${t}`).join(" UNION ")}) t WHERE ${moving("workspace")}`;

/** The partition is the target `index` of a split to `mask` that did not finish (its map says so). */
async function leftOfSplit(client: pg.ClientBase, schema: string, mask: number, index: number): Promise<boolean> {
  const { rows } = await client
    .query(
      `SELECT EXISTS (SELECT 1 FROM ${id(schema)}.cluster_map m WHERE m.write_mask = $1 AND m.write_index = $2) AS left`,
      [mask, index],
    )
    .catch(() => ({ rows: [{ left: false }] })); // (no map: never part of a cluster)
  return rows[0].left;
}

/** Rows of workspaces in the schema (a new partition has none; it may have a default setting). */
async function countRows(client: pg.ClientBase, schema: string): Promise<number> {
  let rows = 0;
  for (const table of [...OWN_ROWS, "chunks", "blobs", "workspace_grants"]) {
    rows += (await client.query(`SELECT count(*)::int AS n FROM ${id(schema)}.${id(table)}`)).rows[0].n;
  }
  return rows;
}

/**
 * Partition j's moving workspaces to `targetUrl`, read in one snapshot of the source (REPEATABLE
 * READ) and committed on the target. The fence keeps every writer off these rows.
 */
async function copyHalf(
  options: MigrateOptions,
  sourceUrl: URL,
  targetUrl: URL,
  schema: string,
  j: number,
  count: number,
): Promise<SplitReport["moved"][number]> {
  const s = id(schema);
  const to = j + count;
  const moving = movesTo(to, count);
  return onPartition(options, sourceUrl, async (source) => {
    await source.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    try {
      const tables = (
        await source.query<{ name: string }>(
          "SELECT c.relname AS name FROM pg_catalog.pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'r' ORDER BY 1",
          [schema],
        )
      ).rows.map((r) => r.name);
      const unknown = tables.filter((t) => !(t in TABLES) && t !== "cluster_map");
      if (unknown.length > 0) throw new Error(clusterErrors.splitUnknownTables(unknown));
      const workspaces = (await source.query(movingWorkspaces(s, moving))).rows.length;
      let rows = 0;
      await onPartition(options, targetUrl, async (target) => {
        await target.query("BEGIN");
        try {
          await target.query("SET LOCAL session_replication_role = replica"); // as they are: no trigger runs
          await target.query(`DELETE FROM ${s}.history_settings WHERE scope = ''`); // the source's default wins
          for (const table of tables) {
            const where = TABLES[table]?.moves(moving);
            if (where) rows += await copyRows(source, target, schema, table, where.replaceAll("{{schema}}", s));
          }
          const grants = await source.query<{ role_name: string; workspace: string | null; granted_at: string }>(
            `SELECT t.role_name, t.workspace, t.granted_at::text FROM ${s}.workspace_grants t
             WHERE t.workspace IS NULL OR ${moving("workspace")}`,
          );
          await target.query("SET LOCAL session_replication_role = origin");
          for (const g of grants.rows) {
            const grant = { role: g.role_name, workspace: g.workspace };
            await sql.grantWorkspace.run(target, schema, grant);
            await sql.clusterGrantTime.run(target, schema, { ...grant, grantedAt: g.granted_at });
          }
          // Ids and versions go on past the source's: a change id or checkpoint id is never
          // reused. (pg_sequence_last_value, not pg_sequences: that shows NULL to a role
          // without USAGE on the sequence.)
          const sequences = await source.query<{ name: string; last: string | null }>(
            `SELECT c.relname AS name, pg_catalog.pg_sequence_last_value(c.oid)::text AS last
             FROM pg_catalog.pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'S'`,
            [schema],
          );
          for (const q of sequences.rows) {
            if (q.last === null) continue; // never used
            await target.query(
              `SELECT pg_catalog.setval($1::regclass, greatest($2::bigint,
                 coalesce(pg_catalog.pg_sequence_last_value($1::regclass), 0)))`,
              [`${s}.${id(q.name)}`, q.last],
            );
          }
          await target.query("COMMIT");
        } catch (e) {
          await target.query("ROLLBACK").catch(() => {});
          throw e;
        }
      });
      return { from: j, to, workspaces, rows };
    } finally {
      await source.query("ROLLBACK").catch(() => {});
    }
  });
}

/**
 * After the switch, on old partition j: its read map is the new one (waiting for the calls in
 * flight: a read already routed here finishes first), the moved rows are deleted (triggers off),
 * and each moved workspace's log is closed with a horizon above every id.
 */
async function forget(client: pg.ClientBase, schema: string, j: number, count: number): Promise<void> {
  const map = { mask: 2 * count - 1, index: j };
  await partitionMap(client, schema, map, map);
  await runDefinition(client, schema, { schema, mask: map.mask, moved_to: j + count }, sql.clusterForget);
}

/** A new partition as it was before the split copied into it (sql/cluster_partition_empty.sql). */
function emptyPartition(client: pg.ClientBase, schema: string): Promise<void> {
  return runDefinition(client, schema, { schema }, sql.clusterPartitionEmpty);
}

/** The rows of `table` matching `where` (alias t), from source to target in batches; how many. */
async function copyRows(
  source: pg.ClientBase,
  target: pg.ClientBase,
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
  // Every value as its text form (bytea as \x hex, timestamps to the microsecond), which
  // jsonb_populate_recordset reads back with each column's own input function.
  await source.query(
    `DECLARE split_rows NO SCROLL CURSOR FOR SELECT ${columns.map((c) => `t.${c}::text AS ${c}`).join(", ")} FROM ${s}.${id(table)} t WHERE ${where}`,
  );
  const insert = (rows: string[]) =>
    target.query(
      `INSERT INTO ${s}.${id(table)} (${list}) OVERRIDING SYSTEM VALUE
       SELECT ${list} FROM jsonb_populate_recordset(NULL::${s}.${id(table)}, $1::jsonb)`,
      [`[${rows.join(",")}]`],
    );
  let copied = 0;
  try {
    for (;;) {
      const batch = (await source.query(`FETCH ${BATCH} FROM split_rows`)).rows;
      if (batch.length === 0) break;
      let pending: string[] = [];
      let chars = 0;
      for (const row of batch) {
        const json = JSON.stringify(row);
        if (pending.length > 0 && chars + json.length > BATCH_CHARS) {
          await insert(pending);
          pending = [];
          chars = 0;
        }
        pending.push(json);
        chars += json.length;
      }
      if (pending.length > 0) await insert(pending);
      copied += batch.length;
    }
  } finally {
    await source.query("CLOSE split_rows").catch(() => {}); // (a failed transaction dropped it)
  }
  return copied;
}
