/**
 * Reliability through a PL/Proxy front (issue 16): no lost update with 32 workers editing through
 * four pools, compare-and-set counters, and workspace isolation as a property — the awkward names
 * of test/reliability/isolation-property.ts spread over the partitions, every result against each
 * workspace's model, every row on its own partition only, every watch() exactly its own changes.
 */
import pg from "pg";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type Change, PostgresBackend, type Subscription } from "../src/index.js";
import {
  clusterLayout,
  clusterServers,
  dropCluster,
  PartitionView,
  prepareCluster,
  skipWithoutCluster,
} from "./helpers/cluster.js";
import { databaseUrl, uniqueName } from "./helpers/db.js";
import { counterStorm, editStorm, isPermutationOfOneTo } from "./reliability/concurrency-workloads.js";
import {
  assertWorkspaceEquals,
  namedWorkspaces,
  runWorkspace,
  tagOf,
  type WorkspaceRun,
} from "./reliability/isolation-property.js";

if (!skipWithoutCluster("reliability through PL/Proxy")) {
  // A cluster schema of this file's own: the isolation names are fixed, so no other file may share them.
  const schema = uniqueName("px_rel");
  const servers = clusterServers()!;
  const main = await databaseUrl();
  const cluster = await prepareCluster(servers, main, schema);
  const open = (workspace: string) =>
    new PostgresBackend({ connectionString: cluster.proxyUrl, schema, workspace, maxPoolSize: 4, minPoolSize: 0 });
  const workspace = uniqueName("storm");
  const replicas = [0, 1, 2, 3].map(() => open(workspace));
  test.after(async () => {
    await Promise.all(replicas.map((r) => r.close()));
    await dropCluster(servers, main, schema);
  });

  test("32 workers × 50 edits of their own tokens in 4 shared files through 4 pools: all 1,600 land", async () => {
    const r = await editStorm(replicas, { workers: 32, editsPerWorker: 50, files: 4, dir: "/edits" });
    console.log(`PL/Proxy: ${r.edits} edits in ${r.ms.toFixed(0)} ms; lost ${r.lost}`);
    assert.equal(r.errors, []);
    assert.is(r.reportedOk, 1600);
    assert.is(r.present, 1600);
    assert.is(r.lost, 0);
    for (const [path, content] of r.expected) assert.is(r.finals.get(path), content, path);
  });

  test("16 workers increment one counter by read → write({ ifVersion }) with retry: exactly 16 × 25", async () => {
    const r = await counterStorm(replicas, { workers: 16, incrementsPerWorker: 25, path: "/counter.txt" });
    assert.equal(r.errors, []);
    assert.is(r.final, 400);
    assert.ok(isPermutationOfOneTo(r.written, 400), "every value 1..400 written exactly once");
    assert.is((await replicas[0].stat("/counter.txt")).data!.version, 401);
    assert.ok(r.conflicts > 0, "the workers really raced");
  });

  test("property: the isolation names over four partitions × 60 random operations never see or touch each other", async () => {
    const seed = Number(process.env.ISO_SEED ?? Date.now() % 1_000_000);
    const names = namedWorkspaces("ワ".repeat(128));
    const root = open(names[0]);
    const backends = names.map((n) => root.withWorkspace(n));
    const tags = names.map((_, i) => tagOf(i));
    const seen = new Map<string, Change[]>(names.map((n) => [n, []]));
    const subs: Subscription[] = await Promise.all(
      backends.map((b) => b.watch({ onChange: (c) => seen.get(b.workspace)!.push(c), coalesceMs: 20 })),
    );
    const partitions = await Promise.all(
      clusterLayout(servers, main).partitions.map(async (url) => {
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        return c;
      }),
    );
    try {
      const runs: WorkspaceRun[] = await Promise.all(backends.map((b, i) => runWorkspace(b, i, seed, 60, tags)));
      for (const [i, run] of runs.entries()) await assertWorkspaceEquals(backends[i], run);
      // Each workspace's rows are its model, on its own partition, and on no other.
      const view = await PartitionView.open(cluster);
      const used = new Set<number>();
      for (const run of runs) {
        const home = await view.of(run.workspace);
        used.add(home);
        for (const [i, db] of partitions.entries()) {
          const { rows } = await db.query(`SELECT path, content FROM ${schema}.files WHERE workspace = $1`, [
            run.workspace,
          ]);
          const stored = new Map(rows.map((r) => [r.path as string, r.content as string]));
          assert.equal(
            stored,
            i === home ? run.model : new Map(),
            `${JSON.stringify(run.workspace)} on partition ${i}`,
          );
        }
      }
      await view.end();
      assert.ok(used.size >= 3, `the names use ${used.size} partitions`);
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline && runs.some((run) => seen.get(run.workspace)!.length < run.changes)) {
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 300)); // anything foreign would arrive now
      for (const run of runs) {
        const changes = seen.get(run.workspace)!;
        assert.is(changes.length, run.changes, `watch(${JSON.stringify(run.workspace)})`);
        assert.ok(changes.every((c) => c.workspace === run.workspace && run.touched.has(c.path)));
      }
      console.log(
        `isolation through PL/Proxy: ${names.length} workspaces on ${used.size} partitions, seed ${seed}: nothing crossed`,
      );
    } finally {
      await Promise.all(subs.map((s) => s.close()));
      await Promise.all(partitions.map((c) => c.end()));
      await root.close();
    }
  });

  test.run();
}
