/**
 * Adding partitions (issue 16, item 4): splitCluster() doubles a cluster of 2 partitions to 4
 * while a writer keeps writing through the front. Afterwards every workspace reads exactly what
 * it held plus every acknowledged write, from the one partition PL/Proxy now maps it to; history,
 * checkpoints, directories, grants and a fork's shared text came along; version numbers and
 * change-feed cursors go on (a new watch from an old cursor delivers exactly what follows it); a
 * watch left on the old partition is told to resync; and a write that reaches the old partition
 * for a moved workspace is refused there. A schema and cluster of this file's own.
 */
import pg from "pg";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { grantWorkspace, migrate, PostgresBackend, ResyncRequiredError, splitCluster } from "../src/index.js";
import { clusterErrors } from "../src/protocol.js";
import { type Versioned, snapshot } from "./conformance/history.js";
import { collect, ids } from "./helpers/changes.js";
import { clusterLayout, clusterServers, createDatabase, dropCluster, skipWithoutCluster } from "./helpers/cluster.js";
import { databaseUrl, uniqueName } from "./helpers/db.js";

if (!skipWithoutCluster("splitCluster")) {
  const servers = clusterServers()!;
  const main = await databaseUrl();
  const layout = clusterLayout(servers, main);
  const schema = uniqueName("px_split");
  const before = layout.partitions.slice(0, 2); // 5433, 5434
  const after = layout.partitions; // + two new ones, one on each server
  for (const url of [layout.proxyUrl, ...after]) await createDatabase(url);
  await migrate({ connectionString: layout.proxyUrl, schema, cluster: { partitions: before } });
  const front = new PostgresBackend({ connectionString: layout.proxyUrl, schema, maxPoolSize: 6, minPoolSize: 0 });
  const partitionDbs = await Promise.all(
    after.map(async (url) => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      return c;
    }),
  );
  const frontDb = new pg.Client({ connectionString: layout.proxyUrl });
  await frontDb.connect();
  const s = pg.escapeIdentifier(schema);
  const role = uniqueName("px_split_role");
  const roleServers = [main, ...servers];
  const onEachServer = async (q: string) => {
    for (const url of roleServers) {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(q).catch(() => {});
      await c.end();
    }
  };
  test.after(async () => {
    await front.close();
    await Promise.all([...partitionDbs, frontDb].map((c) => c.end()));
    await dropCluster(servers, main, schema);
    await onEachServer(`DROP OWNED BY ${role}`);
    await onEachServer(`DROP ROLE IF EXISTS ${role}`);
  });
  const hash = async (w: string, mask: number) =>
    (await frontDb.query("SELECT pg_catalog.hashtext($1) & $2 AS p", [w, mask])).rows[0].p as number;
  /** A workspace on partition `p` of 2 that moves (or stays) when there are 4. */
  const nameFor = async (p: number, moves: boolean) => {
    for (;;) {
      const w = uniqueName("sp");
      if ((await hash(w, 1)) === p && (await hash(w, 3)) === (moves ? p + 2 : p)) return w;
    }
  };

  test("doubling 2 partitions to 4 under a writer: nothing acknowledged is lost, everything moves whole", async () => {
    // 12 workspaces: 3 moving and 3 staying on each partition.
    const names: string[] = [];
    for (const p of [0, 1])
      for (const moves of [true, true, true, false, false, false]) names.push(await nameFor(p, moves));
    const views = names.map((n) => front.withWorkspace(n) as unknown as Versioned & PostgresBackend);
    for (const [i, v] of views.entries()) {
      await v.setHistory({ enabled: i % 2 === 0 || i === 7 }); // (7: the second writer checkpoints)
      await v.write("/a.txt", `alpha ${i}\n`);
      await v.edit("/a.txt", "alpha", "beta");
      await v.uploadFiles([["/bin/b.bin", Uint8Array.from([0, 1, 2, i])]]);
      await v.mkdir("/empty/dir", { parents: true });
      if (i % 2 === 0) await v.checkpoint({ label: `cp ${i}` });
      await v.write("/docs/c.md", `# ${i}\nneedle ${i}\n`);
    }
    // A fork whose two sides part: the target's text is the source's chunk sets.
    const source = views[0]; // moves to partition 2
    let forkName = "";
    for (;;) {
      forkName = uniqueName("spf");
      if ((await hash(forkName, 1)) === 0 && (await hash(forkName, 3)) === 0) break;
    }
    await source.fork(forkName, { history: true });
    names.push(forkName);
    views.push(front.withWorkspace(forkName) as unknown as Versioned & PostgresBackend);
    // A role granted a moving workspace.
    await onEachServer(`CREATE ROLE ${role} LOGIN`);
    await grantWorkspace(front.pool, schema, role, names[1]);

    const snaps = new Map<string, Record<string, string>>();
    const histories = new Map<string, unknown>();
    const checkpoints = new Map<string, unknown>();
    for (const v of views) {
      snaps.set(v.workspace, await snapshot(v));
      histories.set(v.workspace, (await v.history("/a.txt")).versions);
      checkpoints.set(v.workspace, await v.checkpoints());
    }
    const heads = new Map<string, number>();
    for (const v of views) {
      const sub = await v.watch();
      heads.set(v.workspace, sub.cursor);
      await sub.close();
    }
    // A subscription on a moving workspace, open across the split, on the old partition.
    const stale = await views[1].watch({ pollIntervalMs: 200 });
    const staleDone = (async () => {
      try {
        for await (const _ of stale) {
          // changes made before the split may arrive; the resync must come after it
        }
        return null;
      } catch (e) {
        return e;
      }
    })();

    // The writer: four workspaces (two moving), each write retried until acknowledged.
    const acknowledged = new Map<string, string>();
    let writing = true;
    const writer = (async () => {
      for (let n = 0; writing; n++) {
        const v = views[[2, 3, 8, 9][n % 4]];
        const path = `/w/${n % 10}.txt`;
        const r = await v.write(path, `write ${n}`).catch((e: Error) => ({ error: e.message }));
        if (!r.error) acknowledged.set(`${v.workspace}\n${path}`, `write ${n}`);
        else await new Promise((r) => setTimeout(r, 20));
      }
    })();
    // And on a moving workspace with history, the writes that are not files: checkpoints taken
    // and files deleted, each acknowledged one owed after the split.
    const taken: Array<{ id: number; label: string | null }> = [];
    const deleted: string[] = [];
    const other = views[7]; // partition 1 -> 3
    const others = (async () => {
      for (let n = 0; writing; n++) {
        const c = await other.checkpoint({ label: `during ${n}` }).catch(() => null);
        if (c) taken.push({ id: c.id, label: c.label ?? null });
        const made = await other.write(`/d/${n}.txt`, "d").catch(() => ({ error: "failed" }));
        if (!made.error) {
          const gone = await other.delete(`/d/${n}.txt`).catch(() => ({ error: "failed" }));
          if (!gone.error) deleted.push(`/d/${n}.txt`);
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    // One split at a time: while the front's split lock is held, another is refused.
    const held = await frontDb.query("SELECT pg_advisory_lock(hashtext($1))", [
      `deepagents-backends:cluster-split:${schema}`,
    ]);
    void held;
    try {
      await splitCluster({ connectionString: layout.proxyUrl, schema, cluster: { partitions: after } });
      assert.unreachable("a second split");
    } catch (e) {
      assert.is((e as Error).message, clusterErrors.splitRunning(schema));
    } finally {
      await frontDb.query("SELECT pg_advisory_unlock(hashtext($1))", [`deepagents-backends:cluster-split:${schema}`]);
    }
    const versionsBefore = new Map<string, string[]>();
    for (const v of views.filter((_, i) => i % 2 === 0)) {
      const h = (await v.history("/a.txt")).versions ?? [];
      versionsBefore.set(
        v.workspace,
        await Promise.all(
          h.map(async (x) => String((await v.readVersion("/a.txt", x.version as number)).content ?? "")),
        ),
      );
    }
    const report = await splitCluster({ connectionString: layout.proxyUrl, schema, cluster: { partitions: after } });
    await new Promise((r) => setTimeout(r, 300));
    writing = false;
    await Promise.all([writer, others]);
    // Every acknowledged checkpoint is there, with its id and label; ids stay unique; every
    // acknowledged delete holds.
    const kept = await other.checkpoints();
    for (const c of taken)
      assert.ok(
        kept.some((k) => k.id === c.id && (k.label ?? null) === c.label),
        `checkpoint ${c.id}`,
      );
    assert.is(new Set(kept.map((k) => k.id)).size, kept.length);
    const fresh = await other.checkpoint({ label: "after" });
    assert.ok(
      kept.every((k) => k.id < fresh.id),
      "a checkpoint id is never reused",
    );
    for (const path of deleted) assert.ok((await other.read(path)).error, `${path} stays deleted`);
    assert.ok(taken.length > 0 && deleted.length > 0, "the second writer wrote");
    // Every version's content came along.
    for (const [w, texts] of versionsBefore) {
      const v = front.withWorkspace(w) as unknown as Versioned & PostgresBackend;
      const h = (await v.history("/a.txt")).versions ?? [];
      assert.equal(
        await Promise.all(
          h.map(async (x) => String((await v.readVersion("/a.txt", x.version as number)).content ?? "")),
        ),
        texts,
        w,
      );
    }
    assert.equal(
      report.moved.map((m) => [m.from, m.to, m.workspaces > 0]),
      [
        [0, 2, true],
        [1, 3, true],
      ],
    );
    assert.ok(acknowledged.size > 0, "the writer wrote");

    // Every workspace: on exactly its new partition, with everything it had.
    for (const v of views) {
      const home = await hash(v.workspace, 3);
      for (const [i, db] of partitionDbs.entries()) {
        const { rows } = await db.query(`SELECT count(*)::int AS n FROM ${s}.files WHERE workspace = $1`, [
          v.workspace,
        ]);
        assert.ok(i === home ? rows[0].n > 0 : rows[0].n === 0, `${v.workspace}: ${rows[0].n} files on partition ${i}`);
      }
      const own = Object.fromEntries(Object.entries(await snapshot(v)).filter(([path]) => !/^\/[wd]\//.test(path)));
      assert.equal(own, snaps.get(v.workspace), `files of ${v.workspace}`);
      assert.equal(
        (await v.ls("/empty")).files?.map((f) => f.path),
        ["/empty/dir/"],
      );
      assert.equal((await v.history("/a.txt")).versions, histories.get(v.workspace), `history of ${v.workspace}`);
      // (the second writer adds checkpoints to its workspace: the ones from before are all there)
      const now = await v.checkpoints();
      const then = checkpoints.get(v.workspace) as typeof now;
      assert.equal(now.slice(0, then.length), then, `checkpoints of ${v.workspace}`);
      assert.equal((await v.grep("needle")).matches?.length, 1);
    }
    for (const [key, content] of acknowledged) {
      const [w, path] = key.split("\n");
      assert.is((await front.withWorkspace(w).read(path)).content, content, key);
    }

    // Versions and change ids go on where they were.
    const moved = views[6]; // partition 1 -> 3
    const version = (await moved.stat("/a.txt")).data!.version as number;
    assert.is((await moved.write("/a.txt", "after the split\n")).version, version + 1);
    const resumed = await collect(await moved.watch({ since: heads.get(moved.workspace) }), 1, 10_000);
    assert.equal(
      resumed.map((c) => [c.path, c.op, c.version]),
      [["/a.txt", "update", version + 1]],
    );
    assert.ok(ids(resumed)[0] > heads.get(moved.workspace)!);

    // The subscription left on the old partition is told to resync.
    await views[1].write("/poke.txt", "poke");
    const outcome = await Promise.race([staleDone, new Promise((r) => setTimeout(() => r("timeout"), 10_000))]);
    await stale.close();
    assert.instance(outcome, ResyncRequiredError);

    // A call that reaches the old partition for a moved workspace is refused there: by the
    // partition's map (what the front's proxies call first), and by its CHECK (raw SQL).
    await partitionDbs[(await hash(moved.workspace, 3)) - 2]
      .query(`SELECT ${s}.cluster_here($1, false)`, [moved.workspace])
      .then(
        () => assert.unreachable("the old partition's map"),
        (e) => assert.match(e.message, /is moving to another partition: try again/),
      );
    // A write that reaches the old partition for a moved workspace is refused there.
    const old = partitionDbs[(await hash(moved.workspace, 3)) - 2];
    await old
      .query(`SELECT * FROM ${s}.fs_write($1, '/stray.txt', 'x', NULL, 'text/plain', NULL)`, [moved.workspace])
      .then(
        () => assert.unreachable("a write of a moved workspace on its old partition"),
        (e) => assert.match(e.message, /files_partition/),
      );

    // The fork's text (the source's chunk sets) is on both sides of the split.
    assert.equal((await views[views.length - 1].grep("needle 0")).matches?.length, 1);
    assert.equal((await source.grep("needle 0")).matches?.length, 1);

    // The granted role reads its workspace on its new partition through the front.
    const url = new URL(layout.proxyUrl);
    url.username = role;
    const as = new PostgresBackend({
      connectionString: url.toString(),
      schema,
      workspace: names[1],
      rowLevelSecurity: true,
    });
    try {
      await as.initialize();
      assert.is((await as.read("/a.txt")).content, "beta 1\n");
    } finally {
      await as.close();
    }
  });

  test("a split is refused unless the front's partitions come first, in order, and as many new ones follow", async () => {
    for (const partitions of [after.slice(0, 3), [after[1], after[0], after[2], after[3]]]) {
      try {
        await splitCluster({ connectionString: layout.proxyUrl, schema, cluster: { partitions } });
        assert.unreachable(String(partitions));
      } catch (e) {
        assert.match((e as Error).message, /power of two|splitCluster\(\) doubles the partitions/);
      }
    }
    // migrate() without the cluster refuses the front; an outdated front refuses to open, and
    // installing again (as an upgrade does) puts its migrations mirror back.
    try {
      await migrate({ connectionString: layout.proxyUrl, schema });
      assert.unreachable();
    } catch (e) {
      assert.is((e as Error).message, clusterErrors.proxyNotMigratable(schema));
    }
    const { rows } = await frontDb.query(`SELECT name FROM ${s}.migrations ORDER BY id DESC LIMIT 1`);
    await frontDb.query(`DELETE FROM ${s}.migrations WHERE name = $1`, [rows[0].name]);
    const outdated = new PostgresBackend({ connectionString: layout.proxyUrl, schema });
    try {
      await outdated.initialize();
      assert.unreachable();
    } catch (e) {
      assert.is((e as Error).message, clusterErrors.proxyOutdated(schema, [rows[0].name]));
    } finally {
      await outdated.close();
    }
    // The front now has 4: migrate() with them again changes nothing; with 2 it is refused.
    await migrate({ connectionString: layout.proxyUrl, schema, cluster: { partitions: after } });
    try {
      await migrate({ connectionString: layout.proxyUrl, schema, cluster: { partitions: before } });
      assert.unreachable();
    } catch (e) {
      assert.match((e as Error).message, /has 4 partitions, not 2/);
    }
    assert.is((await front.withWorkspace(uniqueName("end")).write("/a", "a")).error, undefined);
  });

  test.run();
}
