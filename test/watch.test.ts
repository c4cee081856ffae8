/**
 * The change feed: durable log + NOTIFY wake-ups + resumable watch(), against real PostgreSQL.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import pg from "pg";
import { ResyncRequiredError, type Change } from "../src/index.js";
import { collect, ids, increasing } from "./helpers/changes.js";
import { adminClient, databaseUrl, testBackend, uniqueName, TEST_SCHEMA } from "./helpers/db.js";

const backend = await testBackend({ maxPoolSize: 12 });
const admin = await adminClient();
const fresh = () => backend.withWorkspace(uniqueName("watch"));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.after(async () => {
  await backend.close();
  await admin.end();
});

test("each mutation is one change: create, update, delete (one per file), upload", async () => {
  const b = fresh();
  const sub = await b.watch();
  await b.write("/a.txt", "1");
  await b.edit("/a.txt", "1", "2");
  await b.uploadFiles([
    ["/d/x.txt", Buffer.from("x")],
    ["/d/y.txt", Buffer.from("yy")],
  ]);
  await b.delete("/d");
  const got = await collect(sub, 6);
  await sub.close();
  assert.equal(
    got.map((c) => [c.op, c.path, c.version, c.size]),
    [
      ["create", "/a.txt", 1, 1],
      ["update", "/a.txt", 2, 1],
      ["create", "/d/x.txt", 1, 1],
      ["create", "/d/y.txt", 1, 2],
      ["delete", "/d/x.txt", 1, 1],
      ["delete", "/d/y.txt", 1, 2],
    ],
  );
  assert.ok(increasing(ids(got)));
  assert.ok(got.every((c) => c.workspace === b.workspace && !Number.isNaN(Date.parse(c.at))));
});

test("4 concurrent writers x 250 mutations: all 1000 delivered, in id order, no duplicates", async () => {
  const b = fresh();
  const seen: number[] = [];
  const sub = await b.watch({ onChange: (c) => seen.push(c.id) });
  sub[Symbol.asyncIterator](); // with onChange, an iterator gets what is read once it exists
  await Promise.all(
    Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; i < 250; i++) {
        const r = await b.write(`/w${w}/f${i % 10}.txt`, `writer ${w} step ${i}`);
        assert.is(r.error, undefined);
      }
    }),
  );
  const got = await collect(sub, 1000);
  await sub.close();
  assert.is(got.length, 1000);
  assert.is(new Set(ids(got)).size, 1000);
  assert.ok(increasing(ids(got)));
  assert.equal(seen, ids(got)); // onChange saw the same, in the same order
});

test("the listener's connection is killed mid-stream: it reconnects, nothing lost or duplicated", async () => {
  const b = fresh();
  const sub = await b.watch({ pollIntervalMs: 60_000 }); // recovery must come from the reconnect, not the poll
  // The listener is the connection LISTENing on this workspace's channel.
  const {
    rows: [{ channel }],
  } = await admin.query(`SELECT ${TEST_SCHEMA}.changes_channel($1) AS channel`, [b.workspace]);
  const got: Change[] = [];
  const reader = (async () => {
    for await (const c of sub) {
      got.push(c);
      if (got.length === 300) break;
    }
  })();
  const writer = (async () => {
    for (let i = 0; i < 300; i++) {
      await b.write(`/k/${i % 7}.txt`, `v${i}`);
      if (i === 100 || i === 200) {
        const { rowCount } = await admin.query(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query ILIKE 'LISTEN %' AND strpos(query, $1) > 0",
          [channel],
        );
        assert.ok(rowCount! >= 1, "a LISTEN connection was terminated");
      }
    }
  })();
  await writer;
  await Promise.race([reader, new Promise((r) => setTimeout(r, 20_000).unref())]);
  await sub.close();
  assert.is(got.length, 300);
  assert.is(new Set(ids(got)).size, 300);
  assert.ok(increasing(ids(got)));
});

test("transactions committing out of start order: ids follow commits, none skipped", async () => {
  const b = fresh();
  const seen: Change[] = [];
  const sub = await b.watch({ onChange: (c) => seen.push(c) });
  sub[Symbol.asyncIterator](); // with onChange, an iterator gets what is read once it exists
  const url = await databaseUrl();
  const t1 = new pg.Client({ connectionString: url });
  const t2 = new pg.Client({ connectionString: url });
  await Promise.all([t1.connect(), t2.connect()]);
  const write = (c: pg.Client, path: string) =>
    c.query(`SELECT * FROM ${TEST_SCHEMA}.fs_write($1, $2, 'x', NULL, 'text/plain', NULL)`, [b.workspace, path]);
  await t1.query("BEGIN");
  await write(t1, "/first-begun.txt"); // changes row written, id not yet assigned
  await t2.query("BEGIN");
  await write(t2, "/second-begun.txt");
  await t2.query("COMMIT"); // commits first
  await sleep(300);
  await write(t1, "/first-begun-2.txt");
  await t1.query("COMMIT");
  const got = await collect(sub, 3);
  await sub.close();
  await Promise.all([t1.end(), t2.end()]);
  assert.equal(
    got.map((c) => c.path),
    ["/second-begun.txt", "/first-begun.txt", "/first-begun-2.txt"],
  );
  assert.ok(increasing(ids(got)));
  assert.equal(
    seen.map((c) => c.id),
    ids(got),
  );
});

test("since: resumes after a given id; retention then makes an old cursor a resync error", async () => {
  const b = fresh();
  for (let i = 0; i < 5; i++) await b.write(`/r${i}.txt`, "x");
  const all = await collect(await b.watch({ since: 0 }), 5);
  assert.equal(
    all.map((c) => c.path),
    ["/r0.txt", "/r1.txt", "/r2.txt", "/r3.txt", "/r4.txt"],
  );
  const resumed = await collect(await b.watch({ since: all[2].id }), 2);
  assert.equal(
    resumed.map((c) => c.path),
    ["/r3.txt", "/r4.txt"],
  );

  assert.ok((await b.pruneChanges({ keepPerWorkspace: 2 })) >= 3);
  const errors: Error[] = [];
  const stale = await b.watch({ since: all[0].id, onError: (e) => errors.push(e) });
  try {
    for await (const _ of stale) assert.unreachable("a stale cursor must not deliver");
    assert.unreachable("the iterator must throw");
  } catch (e) {
    assert.instance(e, ResyncRequiredError);
    assert.match((e as Error).message, /Resync required: change cursor \d+ is older than the retained log/);
  }
  assert.is(errors.length, 1);
  const fromKept = await collect(await b.watch({ since: all[2].id }), 2);
  assert.equal(
    fromKept.map((c) => c.path),
    ["/r3.txt", "/r4.txt"],
  );
});

test("a long backlog read by a slow iterator: the reader keeps at most about a batch ahead, and delivers all", async () => {
  const b = fresh();
  const files = Array.from({ length: 3_000 }, (_, i): [string, Uint8Array] => [`/b/f${i}.txt`, Buffer.from("x")]);
  assert.ok((await b.uploadFiles(files)).every((r) => r.error === null));
  const sub = await b.watch({ since: 0, batchSize: 100 });
  const seen: Change[] = [];
  try {
    for await (const change of sub) {
      seen.push(change);
      if (seen.length === 1) {
        await sleep(300); // a slow consumer: without backpressure the reader takes the whole backlog meanwhile
        const ahead = sub.cursor - change.id;
        assert.ok(ahead <= 200, `the reader is ${ahead} changes ahead of the consumer`);
      }
      if (seen.length === 3_000) break;
    }
  } finally {
    await sub.close();
  }
  assert.ok(increasing(ids(seen)));
  assert.equal(new Set(seen.map((c) => c.path)).size, 3_000);
});

test("onChange: every change delivered; an iterator gets what is read once it exists, none kept before", async () => {
  const b = fresh();
  const got: Change[] = [];
  const files = Array.from({ length: 50 }, (_, i): [string, Uint8Array] => [`/c/f${i}.txt`, Buffer.from("x")]);
  await b.uploadFiles(files);
  const sub = await b.watch({ since: 0, onChange: (c) => got.push(c), batchSize: 10 });
  for (let i = 0; i < 100 && got.length < 50; i++) await sleep(20);
  assert.is(got.length, 50, "the reader did not wait for an iterator");
  const idle = sub[Symbol.asyncIterator]();
  await b.uploadFiles(files.slice(0, 5).map(([p]): [string, Uint8Array] => [p, Buffer.from("y")]));
  for (let i = 0; i < 100 && got.length < 55; i++) await sleep(20);
  assert.is(got.length, 55, "onChange does not wait for an idle iterator");
  const first = await idle.next();
  assert.is(first.value?.id, got[50].id, "the iterator starts with the first change read after it was created");
  assert.equal(
    (await collect(sub, 4)).map((c) => c.id),
    ids(got.slice(51)),
  );
  await sub.close();
});

test("path filter: only matching paths are delivered, the cursor still moves past the rest", async () => {
  const b = fresh();
  const sub = await b.watch({ paths: "src/**/*.ts" });
  await b.write("/src/a.ts", "1");
  await b.write("/src/a.md", "1");
  await b.write("/docs/b.ts", "1");
  await b.write("/src/deep/c.ts", "1");
  const got = await collect(sub, 2);
  await sleep(100);
  assert.equal(
    got.map((c) => c.path),
    ["/src/a.ts", "/src/deep/c.ts"],
  );
  const head = (
    await admin.query(`SELECT max(id) AS id FROM ${TEST_SCHEMA}.changes WHERE workspace = $1`, [b.workspace])
  ).rows[0].id;
  assert.is(sub.cursor, Number(head));
  await sub.close();
});

test("workspace isolation: a subscriber never sees another workspace's changes", async () => {
  const tag = uniqueName("iso");
  const mine = backend.withWorkspace(tag);
  const other = backend.withWorkspace(`${tag}-corp`);
  const sub = await mine.watch();
  await other.write("/secret.txt", "x");
  await mine.write("/mine.txt", "x");
  await other.write("/secret2.txt", "x");
  const got = await collect(sub, 1);
  await sleep(300);
  await sub.close();
  assert.equal(
    got.map((c) => c.path),
    ["/mine.txt"],
  );
  for await (const c of sub) assert.unreachable(`unexpected ${c.path}`);
});

test("notifications: one small payload per workspace per transaction, never content", async () => {
  const b = fresh();
  const listener = await adminClient();
  const channel = (await listener.query(`SELECT ${TEST_SCHEMA}.changes_channel($1) AS c`, [b.workspace])).rows[0].c;
  // The schema-wide channel of 0002 (whose payload named the workspace) and another workspace's
  // channel hear nothing of this workspace: LISTEN needs no privilege.
  const elsewhere = [
    `${TEST_SCHEMA.slice(0, 50)}.changes`, // 0002's channel name (the function is gone since 0007)
    (await listener.query(`SELECT ${TEST_SCHEMA}.changes_channel($1) AS c`, [b.workspace + "-other"])).rows[0].c,
  ];
  const payloads: string[] = [];
  const overheard: string[] = [];
  listener.on("notification", (n) => (n.channel === channel ? payloads : overheard).push(n.payload ?? ""));
  for (const c of [channel, ...elsewhere]) await listener.query(`LISTEN ${pg.escapeIdentifier(c)}`);
  assert.ok(Buffer.byteLength(channel) <= 63 && !channel.includes(b.workspace), channel);
  const secret = "TOP-SECRET-CONTENT".repeat(1000);
  await b.uploadFiles(
    Array.from({ length: 50 }, (_, i) => [`/bulk/${i}.txt`, Buffer.from(secret)] as [string, Uint8Array]),
  );
  await b.write("/one.txt", secret);
  await sleep(300);
  await listener.end();
  assert.is(payloads.length, 2); // the 50-file upload is one transaction: one notification
  for (const p of payloads) {
    assert.ok(p.length < 400, `payload of ${p.length} bytes`);
    assert.not.match(p, /SECRET/);
    assert.equal(Object.keys(JSON.parse(p)), ["id"]);
  }
  assert.equal(overheard, []);
  const longName = backend.withWorkspace("w".repeat(128));
  const sub = await longName.watch();
  await longName.write("/x.txt", "x");
  assert.is((await collect(sub, 1))[0].path, "/x.txt");
  await sub.close();
  await longName.delete("/");
});

test("watch: an invalid since is refused", async () => {
  const b = fresh();
  try {
    await b.watch({ since: -1 });
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /since must be a non-negative integer/);
  }
});

test.run();
