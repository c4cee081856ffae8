/**
 * No lost updates on PostgreSQL (issue 7, part 1): 32 workers × 50 edit() calls on 4 shared
 * files through 4 backend objects (separate pools, as separate replicas would be) — every edit
 * lands; 16 workers incrementing one counter with read → write({ ifVersion }) and retry — it ends
 * at exactly the expected total. The same edit workload on deepagents' StoreBackend is printed as
 * the baseline, over InMemoryStore and over LangGraph's PostgresStore on the same server (not
 * asserted: it is what we improve on).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { StoreBackend } from "deepagents";
import { InMemoryStore } from "@langchain/langgraph";
import { PostgresStore } from "@langchain/langgraph-checkpoint-postgres/store";
import { adminClient, databaseUrl, testBackend, uniqueName, TEST_SCHEMA } from "../helpers/db.js";
import { counterStorm, editStorm, isPermutationOfOneTo, type EditStormOptions } from "./concurrency-workloads.js";

const STORM: EditStormOptions = { workers: 32, editsPerWorker: 50, files: 4 };
const first = await testBackend();
const workspace = first.workspace;
// Four replicas: separate pools on one workspace, 4 connections each.
const replicas = [first, ...(await Promise.all([1, 2, 3].map(() => testBackend({ workspace }))))];

test.after(async () => {
  await Promise.all(replicas.map((r) => r.close()));
});

test("32 workers × 50 edits of their own tokens in 4 shared files: all 1,600 land", async () => {
  const r = await editStorm(replicas, { ...STORM, dir: "/edits" });
  console.log(
    `PostgreSQL: ${r.edits} edits by ${STORM.workers} workers on ${STORM.files} files through ${replicas.length} pools in ${r.ms.toFixed(0)} ms; lost ${r.lost}`,
  );
  assert.equal(r.errors, []);
  assert.is(r.reportedOk, 1600);
  assert.is(r.present, 1600);
  assert.is(r.pending, 0);
  assert.is(r.lost, 0);
  for (const [path, content] of r.expected) assert.is(r.finals.get(path), content, path);
  // Every edit was one version step, and each one is in the change log once.
  const stats = await Promise.all([...r.expected.keys()].map((p) => first.stat(p)));
  assert.equal(
    stats.map((s) => s.data!.version),
    [401, 401, 401, 401],
  );
  const { rows } = await first.pool.query(
    `SELECT count(*)::int AS n FROM ${TEST_SCHEMA}.changes WHERE workspace = $1 AND path LIKE '/edits/%' AND op = 'update'`,
    [workspace],
  );
  assert.is(rows[0].n, 1600);
});

test("16 workers increment one counter by read → write({ ifVersion }) with retry: exactly 16 × 25", async () => {
  const workers = 16;
  const incrementsPerWorker = 25;
  const r = await counterStorm(replicas, { workers, incrementsPerWorker, path: "/counter.txt" });
  console.log(
    `PostgreSQL: counter ${r.final} after ${workers}×${incrementsPerWorker} compare-and-set increments in ${r.ms.toFixed(0)} ms ` +
      `(${r.conflicts} version conflicts retried, ${r.tornReads} torn reads retried)`,
  );
  assert.equal(r.errors, []);
  assert.is(r.final, workers * incrementsPerWorker);
  // Each value was written by exactly one successful write: no two writers both won from one read.
  assert.ok(isPermutationOfOneTo(r.written, workers * incrementsPerWorker), "every value 1..400 written exactly once");
  assert.is((await first.stat("/counter.txt")).data!.version, 1 + workers * incrementsPerWorker);
  assert.ok(r.conflicts > 0, "the workers really raced (some writes were refused)");
});

test("a stale ifVersion never overwrites: the conflict names both versions and changes nothing", async () => {
  const b = first.withWorkspace(uniqueName("cas"));
  const v1 = (await b.write("/x.txt", "one")).version!;
  const v2 = (await b.write("/x.txt", "two", { ifVersion: v1 })).version!;
  assert.is(v2, v1 + 1);
  assert.equal(await b.write("/x.txt", "stale", { ifVersion: v1 }), {
    error: `Error: Version conflict on '/x.txt': expected version ${v1}, current version is ${v2}`,
  });
  assert.match(
    (await b.edit("/x.txt", "two", "stale", false, { ifVersion: v1 })).error!,
    /^Error: Version conflict on '\/x.txt'/,
  );
  assert.is((await b.readRaw("/x.txt")).data!.content, "two");
  assert.is((await b.stat("/x.txt")).data!.version, v2);
});

function reportBaseline(label: string, r: Awaited<ReturnType<typeof editStorm>>) {
  console.log(
    `StoreBackend on ${label} (baseline): ${r.reportedOk} of ${r.edits} edits reported success, ${r.present} present at the end, ` +
      `${r.lost} lost (${((100 * r.lost) / r.edits).toFixed(1)}%) in ${r.ms.toFixed(0)} ms`,
  );
  // Only the consistency of the count is asserted; how many it loses is the figure reported.
  assert.is(r.present + r.lost, r.reportedOk);
}

test("baseline: the same 32 × 50 edit workload on deepagents' StoreBackend over InMemoryStore", async () => {
  // One process, no I/O: get → replace → put never interleave, so this one is not expected to lose.
  const store = new StoreBackend({ store: new InMemoryStore(), namespace: ["baseline", uniqueName("storm")] });
  reportBaseline("InMemoryStore", await editStorm([store], { ...STORM, dir: "/edits" }));
});

test("baseline: the same workload on StoreBackend over LangGraph's PostgresStore (4 replicas, 4 connections each)", async () => {
  // A schema of its own, dropped afterwards. Four store objects stand for four replicas.
  const schema = `${TEST_SCHEMA}_lgstore`.slice(0, 63);
  const url = await databaseUrl();
  const stores = [0, 1, 2, 3].map(
    () => new PostgresStore({ connectionOptions: { connectionString: url, max: 4 }, schema }),
  );
  const admin = await adminClient();
  try {
    await stores[0].setup();
    const namespace = ["baseline", uniqueName("storm").replace("_", "")]; // no LIKE wildcards in PostgresStore labels
    const backends = stores.map((store) => new StoreBackend({ store, namespace }));
    reportBaseline("PostgresStore", await editStorm(backends, { ...STORM, dir: "/edits" }));
  } finally {
    await Promise.all(stores.map((s) => s.stop().catch(() => {})));
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).finally(() => admin.end());
  }
});

test.run();
