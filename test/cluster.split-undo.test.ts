/**
 * A split that fails before its switch is undone, and can be run again (issue 16, item 4;
 * docs/CLUSTER.md, "Adding partitions"). One partition on the first server doubles to two, the new
 * one on the second server, where the role a moving workspace is granted to does not exist yet:
 * making the grant again there fails. The old partition's maps are then put back (its moving
 * workspace takes writes again, through the front, which still has one partition), the new
 * partition is emptied, and once the role exists there the same split goes through. A schema and
 * cluster of this file's own.
 */
import pg from "pg";
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  grantWorkspace,
  migrate,
  PostgresBackend,
  ResyncRequiredError,
  type Subscription,
  splitCluster,
} from "../src/index.js";
import {
  clusterLayout,
  clusterServers,
  createDatabase,
  dropCluster,
  onDatabase as on,
  skipWithoutCluster,
} from "./helpers/cluster.js";
import { databaseUrl, uniqueName } from "./helpers/db.js";

if (!skipWithoutCluster("splitCluster undone")) {
  const servers = clusterServers()!;
  const main = await databaseUrl();
  const layout = clusterLayout(servers, main);
  const schema = uniqueName("px_undo");
  // The first server's partition, then one on the second server (the layout's first two).
  const [first, second] = layout.partitions;
  if (new URL(first).port === new URL(second).port) throw new Error("the test needs two partition servers");
  for (const url of [layout.proxyUrl, first, second]) await createDatabase(url);
  await migrate({ connectionString: layout.proxyUrl, schema, cluster: { partitions: [first] } });
  const front = new PostgresBackend({ connectionString: layout.proxyUrl, schema, maxPoolSize: 4, minPoolSize: 0 });
  const role = uniqueName("px_undo_role");
  const s = pg.escapeIdentifier(schema);
  const serverOf = (url: string) => {
    const u = new URL(url);
    u.pathname = "/postgres";
    return u.toString();
  };
  test.after(async () => {
    await front.close();
    await dropCluster(servers, main, schema);
    for (const url of [main, ...servers]) {
      await on(url, async (c) => {
        await c.query(`DROP OWNED BY ${role}`).catch(() => {});
        await c.query(`DROP ROLE IF EXISTS ${role}`);
      });
    }
  });
  /** A workspace that moves to the new partition when there are two (hashtext & 1 = 1). */
  const moving = async () => {
    for (;;) {
      const w = uniqueName("un");
      const { rows } = await on(layout.proxyUrl, (c) => c.query("SELECT pg_catalog.hashtext($1) & 1 AS p", [w]));
      if (rows[0].p === 1) return w;
    }
  };
  const rowsOn = (url: string) =>
    on(url, async (c) => {
      let n = 0;
      for (const t of ["files", "directories", "changes", "checkpoints", "file_versions", "workspace_grants"]) {
        n += (await c.query(`SELECT count(*)::int AS n FROM ${s}.${t}`)).rows[0].n;
      }
      return n;
    });
  const maps = (url: string) =>
    on(url, async (c) =>
      (await c.query(`SELECT write_mask, write_index, read_mask, read_index FROM ${s}.cluster_map`)).rows.map(
        (r) => `write ${r.write_index}/${r.write_mask + 1}, read ${r.read_index}/${r.read_mask + 1}`,
      ),
    );

  test("a split whose copy fails (a granted role missing on the new server) is undone; once the role exists there, the same split goes through", async () => {
    const w = await moving();
    const view = front.withWorkspace(w);
    await view.write("/a.txt", "alpha\n");
    await view.mkdir("/empty");
    // The role exists where the front and the first partition are, not on the second server.
    for (const url of [main, serverOf(first)]) await on(url, (c) => c.query(`CREATE ROLE ${role} LOGIN`));
    await grantWorkspace(front.pool, schema, role, w);
    const grantedAt = (url: string) =>
      on(url, async (c) =>
        (
          await c.query(`SELECT granted_at::text AS t FROM ${s}.workspace_grants WHERE role_name = $1`, [role])
        ).rows.map((r) => r.t),
      );
    const privileges = (url: string) =>
      on(url, async (c) => {
        const { rows } = await c.query(
          "SELECT has_schema_privilege($1, $2, 'USAGE') AS usage, has_table_privilege($1, $3, 'SELECT') AS files",
          [role, schema, `${schema}.files`],
        );
        return [rows[0].usage, rows[0].files];
      });
    const granted = await grantedAt(first);
    assert.is(granted.length, 1);

    let failure = "";
    try {
      await splitCluster({ connectionString: layout.proxyUrl, schema, cluster: { partitions: [first, second] } });
    } catch (e) {
      failure = (e as Error).message;
    }
    assert.match(failure, role, "the split failed on the missing role");
    // Undone: the old partition answers for every workspace again, the new one is empty, and the
    // front still has one partition: the moving workspace takes writes where it was.
    assert.equal(await maps(first), ["write 0/1, read 0/1"]);
    assert.is(await rowsOn(second), 0, "the new partition was emptied");
    assert.is((await view.write("/b.txt", "written after the failed split\n")).error, undefined);
    assert.is((await view.read("/a.txt")).content, "alpha\n");

    // Run again once the role exists on the second server: the workspace moves, whole.
    await on(serverOf(second), (c) => c.query(`CREATE ROLE ${role} LOGIN`));
    const report = await splitCluster({
      connectionString: layout.proxyUrl,
      schema,
      cluster: { partitions: [first, second] },
    });
    assert.equal(
      report.moved.map((m) => [m.from, m.to, m.workspaces]),
      [[0, 1, 1]],
    );
    assert.equal(await maps(first), ["write 0/2, read 0/2"]);
    assert.equal(await maps(second), ["write 1/2, read 1/2"]);
    const moved = new PostgresBackend({ connectionString: layout.proxyUrl, schema, workspace: w, minPoolSize: 0 });
    try {
      assert.is((await moved.read("/b.txt")).content, "written after the failed split\n");
      assert.ok((await moved.ls("/")).files?.some((e) => e.path === "/empty/" && e.is_dir));
    } finally {
      await moved.close();
    }
    assert.is(
      await on(second, async (c) => (await c.query(`SELECT count(*)::int AS n FROM ${s}.files`)).rows[0].n),
      2,
      "the files are on the new partition",
    );
    // The grant came along, with its time; the first partition took it back, and the role's
    // privileges there with it (it has no other grant there).
    assert.equal(await grantedAt(second), granted);
    assert.equal(await grantedAt(first), []);
    assert.equal(await privileges(first), [false, false]);
    assert.equal(await privileges(second), [true, true]);
    // The role reads the workspace through the front.
    const url = new URL(layout.proxyUrl);
    url.username = role;
    const as = new PostgresBackend({ connectionString: url.toString(), schema, workspace: w, rowLevelSecurity: true });
    try {
      await as.initialize();
      assert.is((await as.read("/a.txt")).content, "alpha\n");
    } finally {
      await as.close();
    }
  });

  test("a streamed search checks the partition's read map once its snapshot is taken, and keeps no lock on the map while it is read", async () => {
    // After the split above: two partitions, the first reads the workspaces of hashtext & 1 = 0.
    let x: string;
    do x = uniqueName("un");
    while ((await on(layout.proxyUrl, (c) => c.query("SELECT pg_catalog.hashtext($1) & 1 AS p", [x]))).rows[0].p !== 0);
    const view = new PostgresBackend({ connectionString: layout.proxyUrl, schema, workspace: x, minPoolSize: 0 });
    try {
      await view.write("/n.txt", "needle\n");
      const mapLocks = () =>
        on(first, async (c) =>
          Number(
            (
              await c.query(
                `SELECT count(*) AS n FROM pg_catalog.pg_locks l WHERE l.relation = $1::regclass AND l.pid <> pg_backend_pid()`,
                [`${schema}.cluster_map`],
              )
            ).rows[0].n,
          ),
        );
      let seen = 0;
      for await (const m of view.grepStream("needle")) {
        assert.is(m.path, "/n.txt");
        assert.is(await mapLocks(), 0, "the open stream holds no lock on the map");
        seen++;
      }
      assert.is(seen, 1);
      // The first partition no longer reads x, as after a split's forget, while the front still
      // names it: the stream refuses (try again) instead of reading what is left there.
      await on(first, (c) => c.query(`UPDATE ${s}.cluster_map SET read_mask = 1, read_index = 1`));
      try {
        let error = "";
        try {
          for await (const _ of view.grepStream("needle")) assert.unreachable("a match from a partition that moved x");
        } catch (e) {
          error = (e as Error).message;
        }
        assert.match(error, /moving to another partition: try again/);
      } finally {
        await on(first, (c) => c.query(`UPDATE ${s}.cluster_map SET read_mask = 1, read_index = 0`));
      }
      assert.is((await collectAll(view.grepStream("needle"))).length, 1);
    } finally {
      await view.close();
    }
  });

  test("a watch on a partition its workspace moved away from is told to resync, also for a restricted role (rows hidden, or its privileges there revoked with its last grant)", async () => {
    // Two workspaces on the first partition (hashtext & 1 = 0), both granted to the role of the
    // first test (which exists on every server by now).
    const names: string[] = [];
    while (names.length < 2) {
      const n = uniqueName("un");
      const { rows } = await on(layout.proxyUrl, (c) => c.query("SELECT pg_catalog.hashtext($1) & 1 AS p", [n]));
      if (rows[0].p === 0) names.push(n);
    }
    const [x, y] = names;
    for (const n of names) {
      await grantWorkspace(front.pool, schema, role, n);
      await front.withWorkspace(n).write("/a.txt", "a\n");
    }
    const url = new URL(layout.proxyUrl);
    url.username = role;
    const as = new PostgresBackend({ connectionString: url.toString(), schema, workspace: x, rowLevelSecurity: true });
    const subs: Subscription[] = [];
    const watchOf = async (view: PostgresBackend) => {
      const errors: Error[] = [];
      const seen: string[] = [];
      const sub = await view.watch({
        since: 0,
        pollIntervalMs: 100,
        onError: (e) => errors.push(e),
        onChange: (c) => seen.push(c.path),
      });
      subs.push(sub);
      return { sub, errors, seen };
    };
    const until = async (what: () => boolean) => {
      for (let i = 0; i < 100 && !what(); i++) await new Promise((r) => setTimeout(r, 50));
    };
    try {
      await as.initialize();
      const onX = await watchOf(as);
      const onY = await watchOf(as.withWorkspace(y) as PostgresBackend);
      await until(() => onX.seen.length > 0 && onY.seen.length > 0);
      assert.equal([onX.seen, onY.seen], [["/a.txt"], ["/a.txt"]]);

      // x forgotten by the first partition, as a split's last step does: its read map moves on
      // and its grant goes (the role keeps y's there). Its rows stay hidden from the role: only the
      // map says why nothing comes.
      await on(first, async (c) => {
        await c.query(`UPDATE ${s}.cluster_map SET read_mask = 1, read_index = 1`);
        await c.query(`SELECT ${s}.revoke_workspace($1, $2)`, [role, x]);
      });
      await until(() => onX.errors.length > 0);
      assert.instance(onX.errors[0], ResyncRequiredError);
      assert.match(onX.errors[0].message, /no longer read on the partition/);

      // y's grant goes too (the map back as it was): the role has no privilege left there.
      await on(first, async (c) => {
        await c.query(`UPDATE ${s}.cluster_map SET read_mask = 1, read_index = 0`);
        await c.query(`SELECT ${s}.revoke_workspace($1, $2)`, [role, y]);
      });
      await until(() => onY.errors.length > 0);
      assert.instance(
        onY.errors[0],
        ResyncRequiredError,
        String(onY.errors.map((e) => `${e.constructor.name}: ${e.message}`)),
      );
      assert.match(onY.errors[0].message, /no longer read on the partition/);
    } finally {
      await Promise.all(subs.map((sub) => sub.close()));
      await on(first, (c) => c.query(`UPDATE ${s}.cluster_map SET read_mask = 1, read_index = 0`));
      await as.close();
    }
  });

  test.run();
}

async function collectAll<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of stream) all.push(item);
  return all;
}
