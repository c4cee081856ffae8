/**
 * The change log as migration 0015 writes it: staged per statement, moved into `changes` once per
 * transaction at commit (or at the end of each statement under SET CONSTRAINTS ALL IMMEDIATE),
 * one notification per workspace. Since 0028, ids follow commit order per workspace (one lock
 * each), and the backend wakes watchers just after the commits of its writes instead of from them.
 * Raw SQL on the tables, as the schema owner.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import type pg from "pg";
import * as sql from "../src/postgres/sql/queries.js";
import { adminClient, testBackend, uniqueName, TEST_SCHEMA } from "./helpers/db.js";

const backend = await testBackend(); // installs the schema
const admin = await adminClient();
const listener = await adminClient();
await admin.query(`SET search_path = ${TEST_SCHEMA}`);
await listener.query(`SET search_path = ${TEST_SCHEMA}`);

test.after(async () => {
  await backend.close();
  await admin.end();
  await listener.end();
});

const insert = (c: pg.Client, ws: string, paths: string[]) =>
  c.query(
    `INSERT INTO files (workspace, path, content, mime_type, size, line_count)
     SELECT $1, p, p, 'text/plain', octet_length(p), 1 FROM unnest($2::text[]) p`,
    [ws, paths],
  );
const log = async (ws: string) =>
  (await admin.query("SELECT id::int, path, op, version::int FROM changes WHERE workspace = $1 ORDER BY id", [ws]))
    .rows;
const opsOf = (rows: { path: string; op: string }[]) => rows.map((r) => `${r.op} ${r.path}`);
const contiguous = (rows: { id: number }[]) => rows.every((r, i) => i === 0 || r.id === rows[i - 1].id + 1);

/**
 * Notifications on `ws`'s channel while `body` runs and a moment after (300 ms); with `expected`,
 * first up to 5 s until that many arrived (a wake-up after commit comes asynchronously).
 */
async function notificationsDuring(ws: string, body: () => Promise<void>, expected = 0): Promise<number[]> {
  const channel = (await listener.query("SELECT changes_channel($1) AS c", [ws])).rows[0].c;
  const got: number[] = [];
  const on = (n: pg.Notification) => {
    if (n.channel === channel) got.push(JSON.parse(n.payload ?? "{}").id);
  };
  listener.on("notification", on);
  await listener.query(`LISTEN "${channel}"`);
  try {
    await body();
    for (let i = 0; i < 100 && got.length < expected; i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    await listener.query(`UNLISTEN "${channel}"`);
    listener.off("notification", on);
  }
  return got;
}

/** A session of its own (a transaction held open across the test's other steps). */
async function session(): Promise<pg.Client> {
  const c = await adminClient();
  await c.query(`SET search_path = ${TEST_SCHEMA}`);
  return c;
}
const lockKey = "hashtext('deepagents-backends:changes:' || current_schema()), hashtext($1)";
const settled = (p: Promise<unknown>, ms: number) =>
  Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

test("a transaction of several statements: its changes in statement order, ids contiguous, one notification with the last id", async () => {
  const ws = uniqueName("log");
  const notes = await notificationsDuring(ws, async () => {
    await admin.query("BEGIN");
    await insert(admin, ws, ["/c.txt", "/a.txt", "/b.txt"]);
    await admin.query("UPDATE files SET content = 'x', size = 1 WHERE workspace = $1 AND path = '/b.txt'", [ws]);
    await admin.query("DELETE FROM files WHERE workspace = $1 AND path = '/a.txt'", [ws]);
    assert.equal(await log(ws), [], "nothing is logged before commit");
    await admin.query("COMMIT");
  });
  const rows = await log(ws);
  assert.equal(opsOf(rows), ["create /a.txt", "create /b.txt", "create /c.txt", "update /b.txt", "delete /a.txt"]);
  assert.ok(contiguous(rows), JSON.stringify(rows));
  assert.equal(notes, [rows[rows.length - 1].id]);
  assert.is((await admin.query("SELECT count(*)::int AS n FROM changes_pending")).rows[0].n, 0, "staging emptied");
});

test("a statement rolled back to a savepoint leaves no change; the rest of the transaction is logged", async () => {
  const ws = uniqueName("log");
  await admin.query("BEGIN");
  await insert(admin, ws, ["/kept.txt"]);
  await admin.query("SAVEPOINT s");
  await insert(admin, ws, ["/undone.txt"]);
  await admin.query("ROLLBACK TO SAVEPOINT s");
  await admin.query("SAVEPOINT t");
  await insert(admin, ws, ["/later.txt"]);
  await admin.query("RELEASE SAVEPOINT t");
  await admin.query("COMMIT");
  assert.equal(opsOf(await log(ws)), ["create /kept.txt", "create /later.txt"]);
});

test("a raw-SQL rename is a delete and a create; deletes of a statement are logged before its creates and updates", async () => {
  const ws = uniqueName("log");
  await insert(admin, ws, ["/a.txt", "/b.txt", "/c.txt"]);
  await admin.query("UPDATE files SET path = '/renamed.txt' WHERE workspace = $1 AND path = '/a.txt'", [ws]);
  // One statement: /b.txt renamed, /c.txt rewritten in place.
  await admin.query(
    `UPDATE files SET path = CASE path WHEN '/b.txt' THEN '/0-first.txt' ELSE path END,
                      content = CASE path WHEN '/c.txt' THEN 'new' ELSE content END
     WHERE workspace = $1 AND path IN ('/b.txt', '/c.txt')`,
    [ws],
  );
  assert.equal(opsOf(await log(ws)).slice(3), [
    "delete /a.txt",
    "create /renamed.txt",
    "delete /b.txt",
    "create /0-first.txt",
    "update /c.txt",
  ]);
});

test("SET CONSTRAINTS ALL IMMEDIATE: each statement is logged (and its history stamped) as it ends", async () => {
  const ws = uniqueName("log");
  await admin.query("BEGIN");
  await admin.query("SET CONSTRAINTS ALL IMMEDIATE");
  await insert(admin, ws, ["/a.txt"]);
  assert.equal(opsOf(await log(ws)), ["create /a.txt"]);
  await admin.query("UPDATE files SET content = 'two', size = 3 WHERE workspace = $1", [ws]);
  assert.equal(opsOf(await log(ws)), ["create /a.txt", "update /a.txt"]);
  await admin.query("COMMIT");
  const versions = (
    await admin.query(
      `SELECT v.version::int, v.change_id IS NOT NULL AND v.change_id = c.id AS stamped
       FROM file_versions v LEFT JOIN changes c ON c.workspace = v.workspace AND c.path = v.path AND c.version = v.version
       WHERE v.workspace = $1 ORDER BY v.version`,
      [ws],
    )
  ).rows;
  assert.equal(versions, [
    { version: 1, stamped: true },
    { version: 2, stamped: true },
  ]);
});

test("the file/directory rule is checked at commit over the whole transaction", async () => {
  const ws = uniqueName("log");
  await admin.query("BEGIN");
  await insert(admin, ws, ["/d"]);
  await insert(admin, ws, ["/d/inner.txt"]);
  const err = await admin.query("COMMIT").catch((e) => e);
  // The first create in log order that breaks the rule: /d, a directory by the end.
  assert.is(err?.code, "DA003", String(err));
  assert.match(String(err.message), /cannot create file "\/d": it is a directory/);
  await admin.query("BEGIN");
  await insert(admin, ws, ["/f/inner.txt"]);
  await insert(admin, ws, ["/f"]);
  const err2 = await admin.query("COMMIT").catch((e) => e);
  assert.is(err2?.code, "DA002", String(err2));
  assert.match(String(err2.message), /cannot create "\/f\/inner.txt": "\/f" is a file, not a directory/);
  // Created and removed again within the transaction: nothing to check.
  await admin.query("BEGIN");
  await insert(admin, ws, ["/e"]);
  await insert(admin, ws, ["/e/inner.txt"]);
  await admin.query("DELETE FROM files WHERE workspace = $1 AND path = '/e'", [ws]);
  await admin.query("COMMIT");
  assert.equal(opsOf(await log(ws)), ["create /e", "create /e/inner.txt", "delete /e"]);
});

test("0028: a commit waits only for the commit-order lock of its own workspaces, not another workspace's", async () => {
  const [a, b] = [uniqueName("order-a"), uniqueName("order-b")];
  const holder = await session();
  const writer = await session();
  try {
    await holder.query(`SELECT pg_advisory_lock(${lockKey})`, [a]);
    assert.ok(await settled(insert(writer, b, ["/b.txt"]), 3_000), "a write of another workspace committed");
    const blocked = insert(writer, a, ["/a.txt"]);
    assert.not.ok(await settled(blocked, 500), "a write of the locked workspace waits at commit");
    await holder.query(`SELECT pg_advisory_unlock(${lockKey})`, [a]);
    await blocked;
    assert.equal(opsOf(await log(a)), ["create /a.txt"]);
  } finally {
    await holder.end();
    await writer.end();
  }
});

test("0028: a commit waits while the schema's lock of 0005-0027 is held exclusively, as a flush of 0027's body still running through the upgrade holds it", async () => {
  const ws = uniqueName("upgrade");
  const holder = await session();
  const writer = await session();
  try {
    await holder.query("SELECT pg_advisory_lock(hashtext('deepagents-backends:changes:' || current_schema()))");
    const blocked = insert(writer, ws, ["/a.txt"]);
    // (Briefly: every writer of the test schema waits meanwhile.)
    assert.not.ok(await settled(blocked, 200), "the commit waits for the old body's lock");
    await holder.query("SELECT pg_advisory_unlock(hashtext('deepagents-backends:changes:' || current_schema()))");
    await blocked;
    assert.equal(opsOf(await log(ws)), ["create /a.txt"]);
  } finally {
    await holder.end();
    await writer.end();
  }
});

test("0028: two transactions that write the same two workspaces take their locks in one order (no deadlock)", async () => {
  const [a, b] = [uniqueName("pair-a"), uniqueName("pair-b")];
  const [holder, t1, t2] = [await session(), await session(), await session()];
  try {
    await t1.query("BEGIN");
    await insert(t1, a, ["/t1.txt"]);
    await insert(t1, b, ["/t1.txt"]);
    await t2.query("BEGIN");
    await insert(t2, b, ["/t2.txt"]);
    await insert(t2, a, ["/t2.txt"]);
    // Both commits reach their flush while a's lock is held elsewhere. Locks taken in staging
    // order would deadlock: t1 waits for a, t2 takes b and waits for a behind t1, then t1 waits
    // for b. In one order for all (changes_lock sorts its keys), whichever lock comes first.
    await holder.query(`SELECT pg_advisory_lock(${lockKey})`, [a]);
    const commits = Promise.allSettled([t1.query("COMMIT"), t2.query("COMMIT")]);
    const pids = [
      (t1 as unknown as { processID: number }).processID,
      (t2 as unknown as { processID: number }).processID,
    ];
    const waiting = async () =>
      Number(
        (
          await admin.query(
            "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND pid = ANY ($1)",
            [pids],
          )
        ).rows[0].n,
      );
    for (let i = 0; i < 100 && (await waiting()) < 2; i++) await new Promise((r) => setTimeout(r, 20));
    assert.is(await waiting(), 2, "both commits wait for a workspace lock before it is released");
    await holder.query(`SELECT pg_advisory_unlock(${lockKey})`, [a]);
    const outcomes = await commits;
    assert.equal(
      outcomes.map((o) => (o.status === "fulfilled" ? "committed" : (o.reason as Error).message)),
      ["committed", "committed"],
    );
    for (const ws of [a, b]) assert.equal(opsOf(await log(ws)).sort(), ["create /t1.txt", "create /t2.txt"]);
  } finally {
    await Promise.all([holder.end(), t1.end(), t2.end()]);
  }
});

test("0028: a watch started while a change of its workspace is drawn but not committed delivers it (its head is the workspace's own, not the schema's newest id)", async () => {
  const [ws, other] = [uniqueName("head"), uniqueName("head-other")];
  const inFlight = await session();
  try {
    await inFlight.query("BEGIN");
    await insert(inFlight, ws, ["/late.txt"]);
    await inFlight.query("SET CONSTRAINTS ALL IMMEDIATE"); // the flush runs now: an id drawn, the lock held
    const [{ id: lateId }] = (await inFlight.query("SELECT id::int FROM changes WHERE workspace = $1", [ws])).rows;
    await insert(admin, other, ["/later.txt"]); // another workspace commits a higher id meanwhile
    const [{ id: otherId }] = (await admin.query("SELECT id::int FROM changes WHERE workspace = $1", [other])).rows;
    assert.ok(otherId > lateId, `a later id (${otherId}) committed before ${lateId}`);
    const view = backend.withWorkspace(ws);
    const seen: string[] = [];
    const sub = await view.watch({ pollIntervalMs: 200, onChange: (c) => seen.push(c.path) });
    try {
      await inFlight.query("COMMIT");
      for (let i = 0; i < 60 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(seen, ["/late.txt"]);
      assert.ok(sub.cursor >= lateId);
    } finally {
      await sub.close();
    }
  } finally {
    await inFlight.end();
  }
});

test("0028: a statement of the backend that changes files leaves its commit's NOTIFY to one wake-up after it; the next statement on the same connection notifies from its commit", async () => {
  const ws = uniqueName("wake");
  const view = backend.withWorkspace(ws);
  // The wrapped statement (sql/wake_up_after_commit.sql) as the backend sends it, then raw SQL, on
  // one connection of the backend's pool: the first commit notifies nobody, the second does (the
  // setting was the first transaction's).
  const wrapped = sql.write.bind(TEST_SCHEMA, {
    workspace: ws,
    path: "/silent.txt",
    text: "s\n",
    bytes: null,
    mimeType: "text/plain",
    ifVersion: null,
  });
  const client = await view.pool.connect();
  try {
    const silent = await notificationsDuring(ws, async () => {
      await client.query(wrapped.text, wrapped.values);
    });
    assert.equal(silent, [], "no NOTIFY from the commit of a wrapped statement");
    const raw = await notificationsDuring(
      ws,
      async () => {
        await client.query(`SELECT * FROM ${TEST_SCHEMA}.fs_write($1, '/raw.txt', 'r', NULL, 'text/plain', NULL)`, [
          ws,
        ]);
      },
      1,
    );
    assert.is(raw.length, 1, "a raw write on the same connection notifies from its commit");
  } finally {
    client.release();
  }
  // Through the backend: the commit, then exactly one wake-up, with the change's id.
  const woken = await notificationsDuring(
    ws,
    async () => assert.is((await view.write("/a.txt", "a\n")).error, undefined),
    1,
  );
  const [{ id }] = (await admin.query("SELECT id::int FROM changes WHERE workspace = $1 AND path = '/a.txt'", [ws]))
    .rows;
  assert.equal(woken, [id], "one wake-up, with the change's id");
});

test("0028: the backend's wake-up (sql/wake_up.sql) commits without waiting for its WAL flush; fs_wake_up itself leaves synchronous_commit alone", async () => {
  const ws = uniqueName("async");
  await insert(admin, ws, ["/x.txt"]);
  const before = (await admin.query("SHOW synchronous_commit")).rows[0].synchronous_commit;
  const settingAfter = async (text: string, values: unknown[]) => {
    await admin.query("BEGIN");
    try {
      await admin.query("SET LOCAL synchronous_commit = on"); // (whatever the server's default)
      await admin.query(text, values);
      return (await admin.query("SHOW synchronous_commit")).rows[0].synchronous_commit;
    } finally {
      await admin.query("COMMIT");
    }
  };
  const wakeUp = sql.wakeUp.bind(TEST_SCHEMA, { workspaces: [ws] });
  assert.equal(
    [await settingAfter(wakeUp.text, wakeUp.values), await settingAfter("SELECT fs_wake_up(ARRAY[$1])", [ws])],
    ["off", "on"],
  );
  assert.is((await admin.query("SHOW synchronous_commit")).rows[0].synchronous_commit, before, "the session's is kept");
});

test("0028: close() waits for a write still running, then sends its wake-up", async () => {
  const ws = uniqueName("closing");
  const own = await testBackend();
  const view = own.withWorkspace(ws);
  await view.write("/first.txt", "1\n");
  const holder = await session();
  try {
    await holder.query(`SELECT pg_advisory_lock(${lockKey})`, [ws]); // the write waits at commit
    const notes = await notificationsDuring(
      ws,
      async () => {
        const writing = view.write("/a.txt", "a\n");
        // Until the write waits for this workspace's lock (the two-key form: objsubid 2).
        const waits = async () =>
          (
            await admin.query(
              `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objsubid = 2
                 AND classid = hashtext('deepagents-backends:changes:' || current_schema())::oid
                 AND objid = hashtext($1)::oid`,
              [ws],
            )
          ).rows[0].n > 0;
        for (let i = 0; i < 200 && !(await waits()); i++) await new Promise((r) => setTimeout(r, 20));
        assert.ok(await waits(), "the write waits at its commit");
        const closing = own.close();
        assert.not.ok(await settled(closing, 200), "close() waits for the write");
        await holder.query(`SELECT pg_advisory_unlock(${lockKey})`, [ws]);
        await closing;
        assert.is((await writing).error, undefined, "the write committed");
      },
      1,
    );
    const [{ id }] = (await admin.query("SELECT id::int FROM changes WHERE workspace = $1 AND path = '/a.txt'", [ws]))
      .rows;
    assert.equal(notes, [id], "its wake-up was sent before the pool ended");
  } finally {
    await holder.end();
    await own.close();
  }
});

test("0028: fs_wake_up wakes only workspaces whose changes the caller can read, and says how many", async () => {
  const [ws, empty] = [uniqueName("woken"), uniqueName("never-written")];
  await insert(admin, ws, ["/x.txt"]);
  const notes = await notificationsDuring(
    ws,
    async () => {
      const [{ woken }] = (await admin.query("SELECT fs_wake_up(ARRAY[$1, $2, $1, NULL]) AS woken", [ws, empty])).rows;
      assert.is(woken, 1);
    },
    1,
  );
  assert.is(notes.length, 1);
});

test.run();
