/**
 * The change feed of a sharded deployment (issue 16, item 2): watch() through the PL/Proxy front
 * LISTENs on the partition holding its workspace (NOTIFY is per server) and reads its log there;
 * cursors stay per workspace; a watch survives its listener being killed with nothing lost or
 * repeated (and its partition's server restarting: cluster.restart.alone.test.ts); pruneChanges through the front reaches the
 * partition, and an old cursor then gets the resync error.
 */
import pg from "pg";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ResyncRequiredError } from "../src/index.js";
import { collect, ids, increasing } from "./helpers/changes.js";
import { clusterBackend, PartitionView, PARTITIONS, skipWithoutCluster, testCluster } from "./helpers/cluster.js";
import { TEST_SCHEMA, uniqueName } from "./helpers/db.js";

if (!skipWithoutCluster("watch through PL/Proxy")) {
  const cluster = (await testCluster())!;
  const backend = await clusterBackend({ maxPoolSize: 12 });
  const view = await PartitionView.open(cluster);
  test.after(async () => {
    await backend.close();
    await view.end();
  });

  test("each mutation is one change, delivered by the partition's NOTIFY (no poll), in id order", async () => {
    const b = backend.withWorkspace(uniqueName("w"));
    const sub = await b.watch({ pollIntervalMs: 600_000 });
    // The subscription LISTENs on the partition's server, on the workspace's channel.
    const db = await view.client(b.workspace);
    const { rows } = await db.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity
       WHERE query ILIKE 'LISTEN %' AND strpos(query, ${pg.escapeIdentifier(TEST_SCHEMA)}.changes_channel($1)) > 0`,
      [b.workspace],
    );
    await db.end();
    assert.is(rows[0].n, 1);
    await b.write("/a.txt", "1");
    await b.edit("/a.txt", "1", "2");
    await b.uploadFiles([["/b.bin", Uint8Array.from([1, 2])]]);
    await b.move("/a.txt", "/c.txt");
    await b.delete("/b.bin");
    const got = await collect(sub, 6, 10_000);
    await sub.close();
    assert.equal(
      got.map((c) => [c.op, c.path]),
      [
        ["create", "/a.txt"],
        ["update", "/a.txt"],
        ["create", "/b.bin"],
        ["delete", "/a.txt"],
        ["create", "/c.txt"],
        ["delete", "/b.bin"],
      ],
    );
    assert.ok(increasing(ids(got)));
  });

  test("four workspaces on four partitions, 4 writers each: every watcher gets exactly its own 200, in order", async () => {
    const names: string[] = [];
    for (let p = 0; p < PARTITIONS; p++) {
      for (;;) {
        const n = uniqueName("spread");
        if ((await view.of(n)) === p) {
          names.push(n);
          break;
        }
      }
    }
    const views = names.map((n) => backend.withWorkspace(n));
    const subs = await Promise.all(views.map((v) => v.watch()));
    const collected = subs.map((s) => collect(s, 200));
    await Promise.all(
      views.flatMap((v) =>
        [0, 1, 2, 3].map(async (w) => {
          for (let i = 0; i < 50; i++) await v.write(`/w${w}/${i}.txt`, `${v.workspace} ${w} ${i}`);
        }),
      ),
    );
    const got = await Promise.all(collected);
    await Promise.all(subs.map((s) => s.close()));
    for (const [i, changes] of got.entries()) {
      assert.is(changes.length, 200, names[i]);
      assert.ok(changes.every((c) => c.workspace === names[i]));
      assert.ok(increasing(ids(changes)));
      assert.is(new Set(changes.map((c) => c.path)).size, 200);
    }
  });

  test("the listener's connection on the partition is killed mid-stream: it reconnects, nothing lost or duplicated", async () => {
    const b = backend.withWorkspace(uniqueName("kill"));
    const sub = await b.watch({ pollIntervalMs: 600_000 }); // recovery must come from the reconnect
    const db = await view.client(b.workspace);
    const {
      rows: [{ channel }],
    } = await db.query(`SELECT ${pg.escapeIdentifier(TEST_SCHEMA)}.changes_channel($1) AS channel`, [b.workspace]);
    const got = collect(sub, 300);
    for (let i = 0; i < 300; i++) {
      await b.write(`/k/${i % 7}.txt`, `v${i}`);
      if (i === 100 || i === 200) {
        const { rows } = await db.query(
          `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n
           FROM pg_stat_activity WHERE query ILIKE 'LISTEN %' AND strpos(query, $1) > 0`,
          [channel],
        );
        assert.ok(rows[0].n >= 1, "a LISTEN connection on the partition was terminated");
      }
    }
    const changes = await got;
    await sub.close();
    await db.end();
    assert.is(changes.length, 300);
    assert.is(new Set(ids(changes)).size, 300);
    assert.ok(increasing(ids(changes)));
  });

  test("since resumes a cursor; pruneChanges through the front then makes an old cursor a resync error", async () => {
    const b = backend.withWorkspace(uniqueName("since"));
    for (let i = 0; i < 5; i++) await b.write(`/${i}.txt`, `${i}`);
    const all = await collect(await b.watch({ since: 0 }), 5);
    const resumed = await collect(await b.watch({ since: all[2].id }), 2);
    assert.equal(ids(resumed), ids(all).slice(3));
    // 1,000 more, then keep 1,000 per workspace: the first five go (and nothing of other files'
    // smaller workspaces, which run meanwhile).
    await b.uploadFiles(Array.from({ length: 1000 }, (_, i): [string, Uint8Array] => [`/m/${i}`, Buffer.from("m")]));
    assert.ok((await backend.pruneChanges({ keepPerWorkspace: 1000 })) >= 5);
    const stale = await b.watch({ since: all[0].id });
    try {
      for await (const _ of stale) assert.unreachable("a pruned cursor");
      assert.unreachable("the iterator must throw");
    } catch (e) {
      assert.instance(e, ResyncRequiredError);
    } finally {
      await stale.close();
    }
    const kept = await collect(await b.watch({ since: all[4].id }), 1000);
    assert.is(kept.length, 1000);
  });

  test.run();
}
