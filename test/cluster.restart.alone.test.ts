/**
 * A watch through the PL/Proxy front survives the restart of its partition's server (issue 16,
 * item 2): every acknowledged write is delivered once, in order. It restarts a server, so it runs
 * alone (test/run.ts runs *.alone.test.ts files after the others, one at a time).
 */
import { execFileSync } from "node:child_process";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { collect, ids, increasing } from "./helpers/changes.js";
import { clusterBackend, PartitionView, skipWithoutCluster, testCluster } from "./helpers/cluster.js";
import { uniqueName } from "./helpers/db.js";

if (!skipWithoutCluster("partition restart under a watch")) {
  const cluster = (await testCluster())!;
  const backend = await clusterBackend();
  const view = await PartitionView.open(cluster);
  test.after(async () => {
    await backend.close();
    await view.end();
  });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  // The partitions' servers are this machine's (start-partitions.sh): CLUSTER_CONTROL says which
  // Debian cluster serves which port ("5433=15/shard1,..."), so the test can restart one.
  const control = new Map(
    (process.env.CLUSTER_CONTROL ?? "")
      .split(",")
      .filter(Boolean)
      .map((kv) => kv.split("=") as [string, string]),
  );
  (control.size > 0 ? test : test.skip)(
    "the partition's server restarts under a watch: every acknowledged write is delivered once, in order",
    async () => {
      const b = backend.withWorkspace(uniqueName("restart"));
      const sub = await b.watch({ pollIntervalMs: 1_000 });
      const got = collect(sub, 40, 60_000);
      const acknowledged: string[] = [];
      const write = async (path: string) => {
        // While the partition is down a write fails (through the front or its reconnect); the
        // caller retries, as an agent would. Only acknowledged writes are owed a change.
        for (let attempt = 0; attempt < 100; attempt++) {
          const r = await b.write(path, path).catch((e: Error) => ({ error: e.message }));
          if (!r.error) return void acknowledged.push(path);
          await sleep(200);
        }
        assert.unreachable(`${path} never written`);
      };
      for (let i = 0; i < 20; i++) await write(`/before/${i}.txt`);
      const port = new URL(cluster.partitions[await view.of(b.workspace)]).port;
      const [version, name] = control.get(port)!.split("/");
      const started = async () => {
        const db = await view.client(b.workspace);
        const { rows } = await db.query("SELECT pg_postmaster_start_time() AS t");
        await db.end();
        return (rows[0].t as Date).getTime();
      };
      const before = await started();
      execFileSync("pg_ctlcluster", ["--skip-systemctl-redirect", version, name, "restart", "-m", "fast"], {
        stdio: "ignore",
      });
      assert.ok((await started()) > before, "the partition's server restarted");
      for (let i = 0; i < 20; i++) await write(`/after/${i}.txt`);
      const changes = await got;
      await sub.close();
      assert.equal(
        changes.map((c) => c.path),
        acknowledged,
      );
      assert.ok(increasing(ids(changes)));
    },
  );

  if (control.size === 0) {
    console.log("CLUSTER_CONTROL unset: no server to restart (test/services/plproxy/start-partitions.sh prints it)");
  }
  test.run();
}
