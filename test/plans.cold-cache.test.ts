/**
 * The write path's trigger statements keep point probes when their plans were made while the
 * schema was empty.
 *
 * PL/pgSQL plans a trigger's statements once per session and reuses the plan until the table's
 * statistics change; the size of the table is not one of the things that invalidate it. A
 * connection that wrote the first files of a new schema (whose tables the migrations ANALYZEd
 * while empty: zero rows, zero pages, so a sequential scan costs nothing) kept plans that read
 * the whole `chunks` table for every file it uploaded later: 2 s per 500 files beside a
 * 50,000-file workspace, growing with the table, until the next ANALYZE — which, with autovacuum
 * off or behind, never comes. Plans, not timings: the cached plans are captured by auto_explain
 * on the connection that made them.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { adminClient, testBackend, uniqueName } from "./helpers/db.js";
import { capturePlans } from "./helpers/plans.js";

const schema = uniqueName("coldplans");
const capture = await capturePlans();
// One connection, which makes its plans while every table is empty.
const cold = await testBackend({ schema, pool: capture.pool });
// Another, which fills the schema without disturbing those plans.
const bulk = await testBackend({ schema, workspace: "bulk" });
const admin = await adminClient();
test.after(async () => {
  await cold.close();
  await bulk.close();
  await capture.end();
  await admin.query(`DROP SCHEMA ${schema} CASCADE`);
  await admin.end();
});

const text = (i: number, words = "a line of text") => Buffer.from(`${words} ${i}\n`.repeat(5));

/** Each write path, enough times that PL/pgSQL settles on a generic plan for its statements. */
async function everyWrite(backend: typeof cold, round: string) {
  const batch: Array<[string, Uint8Array]> = Array.from({ length: 20 }, (_, i) => [`/${round}/up/f${i}.txt`, text(i)]);
  assert.ok((await backend.uploadFiles(batch)).every((r) => r.error === null));
  assert.ok((await backend.uploadFiles(batch.map(([p], i) => [p, text(i, "replaced")]))).every((r) => !r.error));
  for (let i = 0; i < 7; i++) {
    const path = `/${round}/w/f${i}.txt`;
    assert.is((await backend.write(path, `first ${i}\n`)).error, undefined);
    assert.is((await backend.edit(path, "first", "second")).error, undefined);
  }
  await backend.delete(`/${round}/w`);
  await backend.delete(`/${round}/up/f0.txt`);
}

/** Each read path and the history calls, as often. */
async function everyRead(backend: typeof cold, round: string) {
  const cp = await backend.checkpoint();
  for (let i = 1; i < 8; i++) {
    const path = `/${round}/up/f${i}.txt`;
    assert.ok((await backend.read(path)).content !== undefined);
    assert.ok((await backend.stat(path)).error === undefined);
    assert.ok((await backend.history(path)).versions?.length);
    assert.ok((await backend.readVersion(path, 1)).error === undefined);
    await backend.ls(`/${round}/up`);
    await backend.glob("*.txt", `/${round}/up`);
    await backend.grep(`line of text ${i}`, `/${round}`, null, 10);
    await backend.downloadFiles([path]);
  }
  await backend.write(`/${round}/after.txt`, "after\n");
  await backend.diff(cp.id);
  await backend.rewind(cp.id, { dryRun: true });
  await backend.restore(`/${round}/up/f1.txt`, 1);
}

await everyWrite(cold, "empty");
await everyRead(cold, "empty");
// 3,000 files through the other connection, and no ANALYZE: the state right after an import
// (before 0021, or when its ANALYZE was skipped: another was running). Without the statistics
// trigger, which would analyze here and so re-plan the cold connection's cached statements.
await admin.query(`ALTER TABLE ${schema}.files DISABLE TRIGGER files_zz_statistics`);
const many: Array<[string, Uint8Array]> = Array.from({ length: 3000 }, (_, i) => [`/d${i % 30}/f${i}.txt`, text(i)]);
assert.ok((await bulk.uploadFiles(many)).every((r) => r.error === null));

const BIG_TABLES = /Seq Scan on (files|chunks|changes|file_versions|blobs|tombstones|checkpoints)\b/;

/** The statements (first line of each) whose plans read a big table whole. */
const fullScans = (plans: string[]) => [
  ...new Set(plans.filter((p) => BIG_TABLES.test(p)).map((p) => /Query Text: (.*)/.exec(p)?.[1].trim() ?? p)),
];

for (const [what, run] of [
  ["writes, edits, uploads and deletes", everyWrite],
  ["reads, searches and history", everyRead],
] as const) {
  test(`${what} on a connection that planned them on empty tables: no sequential scan of a big table`, async () => {
    for (const backend of [cold, cold.withWorkspace(`${cold.workspace}-new`)]) {
      if (run === everyRead) await everyWrite(backend, "grown-r");
      const plans = await capture.plansDuring(() => run(backend, run === everyRead ? "grown-r" : "grown"));
      assert.ok(plans.length > 20, `captured ${plans.length} plans`);
      assert.equal(fullScans(plans), []);
    }
  });
}

test.run();
