/**
 * Rewinds racing writers, other rewinds and prunes of the same workspace (issue 13):
 * - a rewind is atomic: a reader (one statement, one snapshot) sees all of the state it puts back
 *   or none of it;
 * - a write acknowledged while rewinds run is never lost without a trace: its version is in
 *   history with exactly its content, whichever side of a rewind it committed on;
 * - no deadlock among rewinds (they lock in path order, a run of paths per statement), writers,
 *   multi-file uploads and prunes;
 * - after checkpoints are deleted and retention tightened, a prune leaves no orphaned content and
 *   the history tables hold no more than the retention asks;
 * - blob collection racing a writer that keeps the same content, or a fork with history copying
 *   versions that name it, never leaves a version naming a blob that is gone, under READ
 *   COMMITTED or REPEATABLE READ (no foreign key checks it since 0019: the writer's upsert, the
 *   fork's lock and the collector's isolation check do).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { PostgresBackend } from "../../src/index.js";
import { adminClient, databaseUrl, TEST_SCHEMA, uniqueName } from "../helpers/db.js";
import { rng } from "../helpers/random.js";

const backend = new PostgresBackend({
  connectionString: await databaseUrl(),
  schema: TEST_SCHEMA,
  workspace: uniqueName("races"),
  maxPoolSize: 10,
  minPoolSize: 0,
});
await backend.initialize();
test.after(() => backend.close());

const PATHS = Array.from({ length: 40 }, (_, i) => `/r/f${String(i).padStart(2, "0")}.txt`);
const enc = (s: string) => new TextEncoder().encode(s);

test("rewinds between two states race writers, each other and prunes: atomic, nothing lost, no deadlock", async () => {
  const b = backend;
  await b.uploadFiles(PATHS.map((p) => [p, enc(`base ${p}\n`)]));
  const base = await b.checkpoint({ label: "base" });
  await b.uploadFiles(PATHS.map((p) => [p, enc(`changed ${p}\n`)]));
  const changed = await b.checkpoint({ label: "changed" });

  const random = rng(13);
  const acknowledged: Array<{ path: string; version: number; content: string }> = [];
  const mixed: string[] = [];
  let running = true;

  // Readers: one statement, one snapshot, over every path a rewind puts back.
  const reader = async () => {
    while (running) {
      const { rows } = await b.pool.query(
        `SELECT count(*) FILTER (WHERE content LIKE 'base %') AS base,
                count(*) FILTER (WHERE content LIKE 'changed %') AS changed
         FROM ${TEST_SCHEMA}.files WHERE workspace = $1 AND path LIKE '/r/%'`,
        [b.workspace],
      );
      if (Number(rows[0].base) > 0 && Number(rows[0].changed) > 0)
        mixed.push(`${rows[0].base} base and ${rows[0].changed} changed in one snapshot`);
    }
  };
  // Writers: plain writes of unique content to the same paths.
  const writer = async (id: number) => {
    for (let n = 0; running; n++) {
      const path = random.pick(PATHS);
      const content = `writer ${id} write ${n}\n`;
      const r = await b.write(path, content);
      assert.is(r.error, undefined, r.error);
      acknowledged.push({ path, version: (r as { version: number }).version, content });
    }
  };
  // An uploader: several paths per statement, in shuffled order (uploads lock in path order, as
  // rewinds do: a deadlock would fail the run).
  const uploader = async () => {
    for (let n = 0; running; n++) {
      const paths = [...new Set(Array.from({ length: 6 }, () => random.pick(PATHS)))];
      const r = await b.uploadFiles(paths.map((p) => [p, enc(`upload ${n}\n`)]));
      for (const u of r) assert.is(u.error, null, `${u.path}: ${u.error}`);
    }
  };
  // Two rewinders flipping the workspace between the two checkpoints, and a pruner.
  const rewinder = async (rounds: number) => {
    for (let i = 0; i < rounds; i++) await b.rewind(i % 2 === 0 ? base.id : changed.id);
  };
  const pruner = async () => {
    while (running) await b.pruneHistory();
  };

  const background = [reader(), reader(), writer(1), writer(2), uploader(), pruner()];
  await Promise.all([rewinder(12), rewinder(12)]);
  running = false;
  await Promise.all(background);

  assert.equal(mixed, [], "a reader saw part of a rewind");
  assert.ok(acknowledged.length > 20, `writers ran (${acknowledged.length} writes)`);
  // Every acknowledged write is in history with exactly its content (rewinds since replaced most).
  for (const w of acknowledged) {
    const r = await b.readVersion(w.path, w.version, 0, 10);
    assert.is(r.error, undefined, `${w.path} v${w.version}: ${r.error}`);
    assert.is(`${r.content}\n`.replace(/\n\n$/, "\n"), w.content, `${w.path} v${w.version}`);
  }
});

test("after checkpoints go and retention tightens, a prune leaves no orphaned content and only what retention keeps", async () => {
  const b = backend;
  const blobsOf = async () =>
    (
      await b.pool.query(
        `SELECT DISTINCT blob FROM ${TEST_SCHEMA}.file_versions WHERE workspace = $1 AND blob IS NOT NULL`,
        [b.workspace],
      )
    ).rows.map((r) => r.blob as Buffer);
  // A deleted version is kept whole (a blob): make some that the prune below must remove. Each
  // with text of its own first (after the race, an upload may have left the same text in several
  // paths, and blobs are stored once per content).
  for (const p of PATHS.slice(0, 5)) {
    await b.write(p, `last words of ${p}\n`);
    await b.delete(p);
    await b.write(p, `again ${p}\n`);
  }
  const before = await blobsOf();
  assert.ok(before.length >= 5, "whole versions were kept");
  for (const c of await b.checkpoints()) await b.deleteCheckpoint(c.id);
  await b.setHistory({ keepVersions: 1 });
  await b.pruneHistory();

  const { rows } = await b.pool.query(
    `SELECT path, count(*) AS n FROM ${TEST_SCHEMA}.file_versions WHERE workspace = $1 GROUP BY path HAVING count(*) > 1`,
    [b.workspace],
  );
  assert.equal(rows, [], "one version per path at most");
  // Every blob this workspace's history used is gone, or still used by some kept version.
  const { rows: orphans } = await b.pool.query(
    `SELECT encode(h, 'hex') AS hash FROM unnest($1::bytea[]) AS h
     WHERE EXISTS (SELECT 1 FROM ${TEST_SCHEMA}.blobs x WHERE x.hash = h)
       AND NOT EXISTS (SELECT 1 FROM ${TEST_SCHEMA}.file_versions v WHERE v.blob = h)`,
    [before],
  );
  assert.equal(orphans, [], "orphaned blobs");
  // And every file still reads, its history still answers.
  for (const p of PATHS) {
    assert.is((await b.read(p)).error, undefined);
    assert.is((await b.history(p)).error, undefined);
  }
});

test("blob collection racing a delete that keeps the same bytes, in both orders: the version's blob is there and reads back (0019)", async () => {
  const S = TEST_SCHEMA;
  const collector = await adminClient();
  const writer = await adminClient();
  const dangling = async () =>
    (
      await collector.query(
        `SELECT count(*)::int AS n FROM ${S}.file_versions v
         WHERE v.blob IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ${S}.blobs b WHERE b.hash = v.blob)`,
      )
    ).rows[0].n;
  try {
    for (const [order, op] of [
      ["collector first", "delete"],
      ["writer first", "delete"],
      ["collector first", "update"],
      ["writer first", "update"],
    ]) {
      const text = `shared bytes ${order} ${op} ${uniqueName("c")}\n`;
      const x = backend.withWorkspace(uniqueName("collect-x"));
      const y = backend.withWorkspace(uniqueName("collect-y"));
      // x's history holds the bytes as a blob (a deleted version); y has a live file with them.
      await x.write("/c.txt", text);
      await x.delete("/c.txt");
      await y.write("/c.txt", text);
      const hash = (await collector.query(`SELECT hash FROM ${S}.files WHERE workspace = $1`, [y.workspace])).rows[0]
        .hash;
      assert.is(
        (await collector.query(`SELECT count(*)::int AS n FROM ${S}.blobs WHERE hash = $1`, [hash])).rows[0].n,
        1,
      );
      // A delete keeps the old bytes whole; so does an update to unrelated text (no small delta).
      const change =
        op === "delete"
          ? `DELETE FROM ${S}.files WHERE workspace = $1`
          : `UPDATE ${S}.files SET content = repeat('unrelated ', 40) WHERE workspace = $1`;
      const collect = async () => {
        await collector.query("BEGIN");
        await collector.query(`DELETE FROM ${S}.file_versions WHERE workspace = $1`, [x.workspace]);
        await collector.query(`SELECT ${S}.history_collect_blobs()`);
      };
      if (order === "collector first") {
        await collect(); // the blob is deleted, its row locked until commit
        const deleting = writer.query(change, [y.workspace]);
        await new Promise((r) => setTimeout(r, 300)); // the writer's upsert waits on the collector
        await collector.query("COMMIT");
        await deleting;
      } else {
        await writer.query("BEGIN");
        await writer.query(change, [y.workspace]); // locks the blob
        await collect(); // skips the locked blob
        await collector.query("COMMIT");
        await writer.query("COMMIT");
      }
      assert.is(await dangling(), 0, `${order}, ${op}`);
      const versions = (await y.history("/c.txt")).versions!;
      assert.equal(
        versions.map((v) => `${v.op}:${v.version}`),
        op === "delete" ? ["create:1", "delete:1"] : ["create:1", "update:2"],
      );
      assert.is((await y.readVersion("/c.txt", 1)).content, text, `${order}, ${op}`);
    }
  } finally {
    await collector.end();
    await writer.end();
  }
});

test("a fork with history and a prune, one of them under REPEATABLE READ: the fork's copies never name a blob the prune collected (0019)", async () => {
  const S = TEST_SCHEMA;
  const a = await adminClient();
  const b = await adminClient();
  const source = backend.withWorkspace(uniqueName("rr-src"));
  const dangling = async () =>
    (
      await a.query(
        `SELECT count(*)::int AS n FROM ${S}.file_versions v
         WHERE v.blob IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ${S}.blobs x WHERE x.hash = v.blob)`,
      )
    ).rows[0].n;
  // Version 1 of /a.txt kept whole (unrelated text replaced it) and, with one version kept, pruned.
  const prepare = async (round: string) => {
    await a.query(`SELECT * FROM ${S}.set_history($1, NULL, 1, NULL)`, [source.workspace]);
    const first = `first ${round} ${"x".repeat(4000)} ${uniqueName("r")}\n`;
    await source.write("/a.txt", first);
    await source.write("/a.txt", `second ${round} ${"y".repeat(4000)}\n`);
    return first;
  };
  try {
    // The prune's snapshot predates the fork's commit: it must not collect what the fork copied.
    const first = await prepare("a");
    const copyA = uniqueName("rr-copy");
    await a.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
    await a.query("SELECT 1"); // the snapshot
    await b.query(`SELECT * FROM ${S}.fs_fork($1, $2, NULL, true)`, [source.workspace, copyA]);
    await a.query(`SELECT * FROM ${S}.prune_history($1)`, [source.workspace]);
    await a.query("COMMIT");
    assert.is(await dangling(), 0, "the prune collected nothing under REPEATABLE READ");
    assert.is((await backend.withWorkspace(copyA).readVersion("/a.txt", 1, 0, 100)).content, first);
    // The fork's snapshot predates a prune that collects: the fork fails to serialize, nothing named.
    await source.delete("/a.txt");
    await prepare("b");
    const copyB = uniqueName("rr-copy");
    await b.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
    await b.query("SELECT 1");
    const pruned = await a.query(`SELECT * FROM ${S}.prune_history($1)`, [source.workspace]);
    assert.ok(Number(pruned.rows[0].blobs) >= 1, "the prune collected version 1's blob");
    const forked = await b.query(`SELECT * FROM ${S}.fs_fork($1, $2, NULL, true)`, [source.workspace, copyB]).then(
      () => null,
      (e) => e,
    );
    await b.query("ROLLBACK");
    assert.is(forked?.code, "40001", String(forked?.message));
    assert.is(await dangling(), 0);
  } finally {
    await a.end();
    await b.end();
  }
});

test.run();
