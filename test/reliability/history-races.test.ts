/**
 * Rewinds racing writers, other rewinds and prunes of the same workspace (issue 13):
 * - a rewind is atomic: a reader (one statement, one snapshot) sees all of the state it puts back
 *   or none of it;
 * - a write acknowledged while rewinds run is never lost without a trace: its version is in
 *   history with exactly its content, whichever side of a rewind it committed on;
 * - no deadlock among rewinds (they lock in path order, a run of paths per statement), writers,
 *   multi-file uploads and prunes;
 * - after checkpoints are deleted and retention tightened, a prune leaves no orphaned content and
 *   the history tables hold no more than the retention asks.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { PostgresBackend } from "../../src/index.js";
import { databaseUrl, TEST_SCHEMA, uniqueName } from "../helpers/db.js";
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

test.run();
