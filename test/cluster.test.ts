/**
 * What a sharded deployment adds (issue 16, docs/CLUSTER.md), through its PL/Proxy front: each
 * workspace lives on the one partition PL/Proxy's hashtext mapping names; the calls that span
 * workspaces reach every partition; a fork stays on one; the writer's tag, timeouts and our
 * errors cross the proxy unchanged; grants made through the front restrict a role on the
 * partitions; and migrate() refuses what would break the front.
 */
import pg from "pg";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { grantWorkspace, PostgresBackend, revokeWorkspace } from "../src/index.js";
import { listWorkspaces, storageStats } from "../src/postgres/admin.js";
import { clusterErrors, historyErrors, setupErrors } from "../src/protocol.js";
import { validateCluster } from "../src/postgres/cluster/options.js";
import { partitionClient } from "../src/postgres/cluster/partitions.js";
import { withShell } from "../src/shell/index.js";
import { clusterBackend, PartitionView, PARTITIONS, skipWithoutCluster, testCluster } from "./helpers/cluster.js";
import { databaseUrl, TEST_SCHEMA, uniqueName } from "./helpers/db.js";

if (!skipWithoutCluster("PL/Proxy cluster")) {
  const cluster = (await testCluster())!;
  const backend = await clusterBackend({ maxPoolSize: 6 });
  const partitions = await Promise.all(
    cluster.partitions.map(async (url) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      return client;
    }),
  );
  const proxy = new pg.Client({ connectionString: cluster.proxyUrl });
  await proxy.connect();
  const schema = pg.escapeIdentifier(TEST_SCHEMA);
  test.after(async () => {
    await backend.close();
    await Promise.all([...partitions, proxy].map((c) => c.end()));
    await view.end();
  });

  const view = await PartitionView.open(cluster);
  const partitionOf = (workspace: string) => view.of(workspace);
  const nameOn = (p: number, on = true) => view.nameOn(p, on);
  /** Which partitions hold files of `workspace` (read on each partition itself). */
  const holders = async (workspace: string) => {
    const out: number[] = [];
    for (const [i, db] of partitions.entries()) {
      const { rows } = await db.query(`SELECT count(*)::int AS n FROM ${schema}.files WHERE workspace = $1`, [
        workspace,
      ]);
      if (rows[0].n > 0) out.push(i);
    }
    return out;
  };
  test("each workspace's files are on exactly the partition PL/Proxy maps it to, on all four", async () => {
    // One name chosen on each partition, and 12 random ones.
    const names = [
      ...(await Promise.all([0, 1, 2, 3].map((p) => nameOn(p)))),
      ...Array.from({ length: 12 }, () => uniqueName("spread")),
    ];
    await Promise.all(names.map((n) => backend.withWorkspace(n).write("/f.txt", n)));
    const used = new Set<number>();
    for (const name of names) {
      const p = await partitionOf(name);
      assert.equal(await holders(name), [p], name);
      used.add(p);
      assert.is((await backend.withWorkspace(name).read("/f.txt")).content, name);
    }
    assert.is(used.size, PARTITIONS);
    // The proxy database holds no data: no files table there.
    const { rows } = await proxy.query("SELECT to_regclass($1) AS t", [`${schema}.files`]);
    assert.is(rows[0].t, null);
  });

  test("workspaces and stats merge every partition; pruneChanges and pruneHistory run on all", async () => {
    const names = [await nameOn(0), await nameOn(1), await nameOn(2), await nameOn(3)];
    for (const n of names) await backend.withWorkspace(n).write("/a.txt", "x".repeat(10));
    const listed = await listWorkspaces(backend.pool, TEST_SCHEMA);
    for (const n of names) assert.equal(listed.find((w) => w.workspace === n)?.files, 1, n);
    const sorted = listed.map((w) => w.workspace);
    assert.equal(sorted, [...sorted].sort());
    // Other files' tests write to the same partitions meanwhile: the sizes are compared at a
    // moment when the partitions' own sum did not move while the front summed them.
    const direct = async () => {
      let bytes = 0;
      for (const db of partitions) {
        bytes += Number(
          (await db.query("SELECT pg_total_relation_size($1::regclass) AS b", [`${schema}.files`])).rows[0].b,
        );
      }
      return bytes;
    };
    let compared: [number, number] | undefined;
    for (let attempt = 0; attempt < 20 && !compared; attempt++) {
      const before = await direct();
      const files = (await storageStats(backend.pool, TEST_SCHEMA)).find((s) => s.name === "files")!;
      if ((await direct()) === before) compared = [files.bytes, before];
      else await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(compared, "the partitions' sizes stood still for one comparison");
    assert.is(compared?.[0], compared?.[1], "the files table's size summed over the partitions");
    // 1,002 changes in each of the four workspaces; keeping 1,000 per workspace drops two of
    // each, on each partition (and nothing of other files' smaller workspaces running meanwhile).
    const many = (w: string) =>
      Array.from({ length: 1002 }, (_, i): [string, Uint8Array] => [`/m/${i}.txt`, Buffer.from(w)]);
    for (const n of names) await backend.withWorkspace(n).uploadFiles(many(n));
    const pruned = await backend.pruneChanges({ keepPerWorkspace: 1000 });
    assert.ok(pruned >= 4 * 3, `${pruned} changes pruned over the partitions`);
    for (const n of names) {
      const db = partitions[await partitionOf(n)];
      const { rows } = await db.query(`SELECT count(*)::int AS n FROM ${schema}.changes WHERE workspace = $1`, [n]);
      assert.is(rows[0].n, 1000, n);
    }
    const all = await backend.pruneHistory({ allWorkspaces: true });
    assert.equal(Object.keys(all).sort(), ["blobs", "chunkSets", "versions"]);
  });

  test("a fork stays on one partition: across two it is refused with one clear error and changes nothing", async () => {
    const source = backend.withWorkspace(await nameOn(1));
    await source.write("/s.txt", "source\n");
    const far = await nameOn(1, false);
    try {
      await source.fork(far);
      assert.unreachable("a fork across partitions");
    } catch (e) {
      assert.is((e as Error).message, historyErrors.forkAcrossPartitions(source.workspace, far));
    }
    assert.equal(await holders(far), []);
    // The refusal is PL/Proxy's route itself: a direct call of the proxy function is refused too.
    await proxy.query(`SELECT * FROM ${schema}.fs_fork__px('', $1, $2, NULL)`, [source.workspace, far]).then(
      () => assert.unreachable("fs_fork__px across partitions"),
      (e) => assert.match(e.message, /are on different partitions of the cluster/),
    );
    assert.equal(await holders(far), []);
    const near = await nameOn(1);
    const r = await source.fork(near);
    assert.is(r.files, 1);
    assert.equal(await holders(near), [1]);
  });

  test("the writer's tag reaches the partition with the write, and never a later untagged one", async () => {
    const b = backend.withWorkspace(uniqueName("tag"));
    await b.setHistory({ enabled: true });
    await b.withTag("agent:proxy").write("/t.txt", "1\n");
    await b.write("/t.txt", "2\n"); // over the same proxy connections to the partition
    await b.withTag("agent:other").edit("/t.txt", "2", "3");
    const h = await b.history("/t.txt");
    assert.equal(
      h.versions?.map((v) => v.tag ?? null),
      ["agent:proxy", null, "agent:other"],
    );
  });

  test("our errors come back as the partition words them, not as PL/Proxy's REMOTE ERROR", async () => {
    const b = backend.withWorkspace(uniqueName("err"));
    await b.write("/file", "x");
    const under = await b.write("/file/child.txt", "y");
    assert.match(under.error ?? "", /'\/file' is a file/);
    assert.not.match(under.error ?? "", /REMOTE|__px/);
    await b.setHistory({ enabled: true });
    try {
      await b.rewind(987654);
      assert.unreachable();
    } catch (e) {
      // (the checkpoint id comes from the error's DETAIL, which PL/Proxy prefixes)
      assert.is((e as Error).message, historyErrors.noCheckpoint(987654, b.workspace));
    }
  });

  test("a search's time budget cancels the query on the partition, and the connections stay usable", async () => {
    const b = await clusterBackend({ maxPoolSize: 1 });
    const line = "ab".repeat(200) + "\n";
    await b.write("/big.txt", line.repeat(20_000)); // 8 MB
    const slow = await b.search({ pattern: "(a|b)*(a|b)*(a|b)*c", regex: true, timeoutMs: 1 });
    assert.is(slow.error, "Error: search timed out after 1 ms; narrow the path, glob or pattern");
    const db = partitions[await partitionOf(b.workspace)];
    for (let i = 0; ; i++) {
      const { rows } = await db.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%fs_search%' AND pid <> pg_backend_pid()",
      );
      if (rows[0].n === 0) break;
      assert.ok(i < 50, "the partition's query was cancelled");
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal((await b.search({ pattern: "zzz", regex: true })).matches, []);
    assert.is((await b.read("/big.txt", 0, 1)).content, "ab".repeat(200));
    await b.close();
  });

  test("a streamed search reads on the workspace's partition: the same lines as search()", async () => {
    const b = await clusterBackend({ streamSplit: { minBytes: 0 } });
    const files: Array<[string, Uint8Array]> = Array.from({ length: 40 }, (_, i) => [
      `/s/${String(i).padStart(2, "0")}.txt`,
      Buffer.from(`line one ${i}\nneedle ${i}\nline three\n`),
    ]);
    await b.uploadFiles(files);
    const streamed: unknown[] = [];
    const db = partitions[await partitionOf(b.workspace)];
    for await (const match of b.grepStream("needle")) {
      if (streamed.length === 0) {
        // The stream's transaction is open on the workspace's partition while it is read.
        const { rows } = await db.query(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction' AND pid <> pg_backend_pid()",
        );
        assert.ok(rows[0].n >= 1, "a session of the stream on the partition");
      }
      streamed.push(match);
    }
    assert.is(streamed.length, 40);
    assert.equal(streamed, (await b.grep("needle")).matches);
    await b.close();
  });

  test("grants made through the front restrict a role on the partition holding the workspace", async () => {
    const role = uniqueName("px_role");
    const servers = [await databaseUrl(), ...new Set(cluster.partitions.map((u) => new URL(u).port))].map((x) =>
      x.startsWith("postgres") ? x : cluster.partitions.find((u) => new URL(u).port === x)!,
    );
    // Roles are per server: the role exists on the front's and on every partition's.
    for (const url of servers) {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`CREATE ROLE ${role} LOGIN`);
      await c.end();
    }
    const granted = await nameOn(2);
    const other = await nameOn(2); // same partition, not granted
    const elsewhere = await nameOn(2, false);
    for (const w of [granted, other, elsewhere]) await backend.withWorkspace(w).write("/secret.txt", `secret of ${w}`);
    try {
      assert.is(await grantWorkspace(backend.pool, TEST_SCHEMA, role, granted), true);
      // The grant row is on the workspace's partition only.
      for (const [i, db] of partitions.entries()) {
        const { rows } = await db.query(
          `SELECT count(*)::int AS n FROM ${schema}.workspace_grants WHERE role_name = $1`,
          [role],
        );
        assert.is(rows[0].n, i === 2 ? 1 : 0, `partition ${i}`);
      }
      const url = new URL(cluster.proxyUrl);
      url.username = role;
      const as = new PostgresBackend({
        connectionString: url.toString(),
        schema: TEST_SCHEMA,
        workspace: granted,
        rowLevelSecurity: true,
        maxPoolSize: 2,
      });
      try {
        await as.initialize();
        assert.is((await as.read("/secret.txt")).content, `secret of ${granted}`);
        assert.is((await as.write("/mine.txt", "ok")).error, undefined);
        for (const w of [other, elsewhere]) {
          const r = await as.withWorkspace(w).read("/secret.txt");
          assert.ok(r.error, `${w}: ${JSON.stringify(r)}`);
          assert.not.match(r.error!, /secret of/);
          assert.match(
            (await as.withWorkspace(w).write("/x.txt", "x")).error ?? "",
            /permission denied|not granted|row-level/i,
          );
        }
        const refused = new PostgresBackend({
          connectionString: url.toString(),
          schema: TEST_SCHEMA,
          workspace: other,
          rowLevelSecurity: true,
        });
        try {
          await refused.initialize();
          assert.unreachable("a workspace not granted");
        } catch (e) {
          assert.is((e as Error).message, setupErrors.workspaceNotGranted(other, role, TEST_SCHEMA));
        } finally {
          await refused.close();
        }
        // Raw calls of the front's functions reach the partitions as the role: on the granted
        // workspace's partition row-level security hides another workspace's rows; on a partition
        // where the role has no grant at all, it may not even use the schema.
        const raw = new pg.Client({ connectionString: url.toString() });
        await raw.connect();
        try {
          const read = `SELECT * FROM ${schema}.fs_read_raw($1, '/secret.txt')`;
          assert.is((await raw.query(read, [granted])).rows.length, 1);
          assert.equal((await raw.query(read, [other])).rows, []);
          await raw.query(read, [elsewhere]).then(
            () => assert.unreachable("a partition without a grant"),
            (e) => assert.match(e.message, /permission denied for schema/),
          );
          // The owner's functions are the owner's on the front too.
          await raw.query(`SELECT ${schema}.grant_workspace($1, $2)`, [role, elsewhere]).then(
            () => assert.unreachable("grant_workspace as the role"),
            (e) => assert.match(e.message, /permission denied for function grant_workspace/),
          );
          // USAGE on the cluster's server would let the role map itself to another user of the
          // partitions (PL/Proxy prefers a role's own mapping to PUBLIC's): the front refuses it.
          for (const [ddl, refusal] of [
            [
              `CREATE USER MAPPING FOR CURRENT_USER SERVER ${schema} OPTIONS (user 'postgres')`,
              /^only the owner of PL\/Proxy cluster .* makes its user mappings/,
            ],
            [`ALTER USER MAPPING FOR PUBLIC SERVER ${schema} OPTIONS (ADD user 'postgres')`, /must be owner/],
          ] as const) {
            await raw.query(ddl).then(
              () => assert.unreachable(ddl),
              (e) => assert.match(e.message, refusal),
            );
          }
          const { rows: mappings } = await proxy.query(
            "SELECT count(*)::int AS n FROM pg_user_mappings WHERE srvname = $1 AND usename <> 'public'",
            [TEST_SCHEMA],
          );
          assert.is(mappings[0].n, 0);
          assert.is((await raw.query(read, [granted])).rows.length, 1, "still the role on the partition");
        } finally {
          await raw.end();
        }
        // On the partition itself, the role can read the partition's map but not take the lock
        // that changes it (which would hold every routed call there).
        const direct = new URL(cluster.partitions[2]);
        direct.username = role;
        const onPartition = new pg.Client({ connectionString: direct.toString() });
        await onPartition.connect();
        try {
          assert.is((await onPartition.query(`SELECT count(*)::int AS n FROM ${schema}.cluster_map`)).rows[0].n, 1);
          await onPartition.query("BEGIN");
          await onPartition.query(`LOCK TABLE ${schema}.cluster_map IN ACCESS EXCLUSIVE MODE`).then(
            () => assert.unreachable("ACCESS EXCLUSIVE on cluster_map as the role"),
            (e) => assert.match(e.message, /permission denied/),
          );
        } finally {
          await onPartition.query("ROLLBACK").catch(() => {});
          await onPartition.end();
        }
      } finally {
        await as.close();
      }
      assert.is(await revokeWorkspace(backend.pool, TEST_SCHEMA, role, granted), true);
    } finally {
      for (const url of servers) {
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        await c.query(`DROP OWNED BY ${role}`).catch(() => {});
        await c.query(`DROP ROLE IF EXISTS ${role}`).catch(() => {});
        await c.end();
      }
    }
  });

  test("the shell runs over a workspace through the front: its grep -rn is one search on the partition", async () => {
    const b = backend.withWorkspace(uniqueName("sh"));
    const shell = withShell(b);
    const made = await shell.execute("mkdir -p src && printf 'alpha\\nneedle here\\n' > src/a.txt && echo ok");
    assert.is(made.exitCode, 0, made.output);
    assert.is((await shell.execute("grep -rn needle .")).output, "./src/a.txt:2:needle here\n");
    assert.equal(await holders(b.workspace), [await partitionOf(b.workspace)]);
  });

  test("a cluster description is checked before anything is touched", () => {
    const ok = "postgres://u:p@h:5432/db";
    assert.throws(
      () => validateCluster({ partitions: [] }),
      (e: Error) => e.message === clusterErrors.noPartitions(),
    );
    assert.throws(
      () => validateCluster(undefined),
      (e: Error) => e.message === clusterErrors.noPartitions(),
    );
    assert.throws(
      () => validateCluster({ partitions: [ok, `${ok}1`, `${ok}2`] }),
      (e: Error) => e.message === clusterErrors.notPowerOfTwo(3),
    );
    assert.throws(
      () => validateCluster({ partitions: ["postgres://u:secret@h:5432/"] }),
      (e: Error) => /partitions\[0\]/.test(e.message) && !e.message.includes("secret"),
    );
    assert.throws(
      () => validateCluster({ partitions: [ok, "postgres://other@h/db"] }),
      (e: Error) => e.message === clusterErrors.samePartitionTwice("host=h port=5432 dbname=db"),
    );
    assert.throws(
      () => validateCluster({ partitions: ["postgres://u@h/x%20user%3Dpostgres"] }),
      (e: Error) => e.message === clusterErrors.userInOptions(0),
    );
    assert.is(validateCluster({ partitions: [ok, `${ok}2`] }).length, 2);
    // How the backend reaches a partition from the front's settings: the partition's place and
    // the stricter sslmode, whatever the front's connection string carried.
    const place = "host=10.0.0.5 port=5433 dbname=p0 sslmode=require";
    for (const [front, expected] of [
      ["postgres:///front?host=/var/run/postgresql", "postgres://10.0.0.5:5433/p0?sslmode=require"],
      ["postgres://app:pw@/front?host=/sock", "postgres://app:pw@10.0.0.5:5433/p0?sslmode=require"],
      ["postgres://a:b@h:1/f?host=10.9.9.9&port=7000", "postgres://a:b@10.0.0.5:5433/p0?sslmode=require"],
      ["postgres://a@h/f?sslmode=verify-full", "postgres://a@10.0.0.5:5433/p0?sslmode=verify-full"],
    ]) {
      assert.is(partitionClient({ connectionString: front }, place).connectionString, expected, front);
    }
    assert.equal(partitionClient({ host: "h", database: "f", password: "pw" }, place), {
      host: "10.0.0.5",
      port: 5433,
      database: "p0",
      password: "pw",
      ssl: { rejectUnauthorized: false },
    });
  });

  test.run();
}
