/**
 * PostgresBackend beyond the shared protocol: extensions (stat, ifVersion, withWorkspace), pool
 * ownership, workspace isolation, atomicity and failures (plan shapes: plans.test.ts).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import pg from "pg";
import { PostgresBackend } from "../src/index.js";
import { adminClient, databaseUrl, testBackend, uniqueName, TEST_SCHEMA } from "./helpers/db.js";

const backend = await testBackend();
const admin = await adminClient();
const fresh = () => backend.withWorkspace(uniqueName("ws"));

test.after(async () => {
  await backend.close();
  await admin.end();
});

test("stat: version, size in bytes, lines, mime, timestamps", async () => {
  const b = fresh();
  await b.write("/s.md", "héllo\nworld\n");
  const s1 = (await b.stat("/s.md")).data!;
  assert.equal(
    { ...s1, created_at: "", modified_at: "" },
    {
      path: "/s.md",
      mimeType: "text/markdown",
      isBinary: false,
      size: 13,
      lines: 2,
      version: 1,
      created_at: "",
      modified_at: "",
    },
  );
  await b.edit("/s.md", "world", "there");
  assert.is((await b.stat("/s.md")).data!.version, 2);
  assert.equal(await b.stat("/none"), { error: "File '/none' not found" });
});

test("ifVersion: compare-and-set on write and edit; 0 means create-only", async () => {
  const b = fresh();
  assert.is((await b.write("/v.txt", "a", { ifVersion: 0 })).version, 1);
  assert.equal(await b.write("/v.txt", "b", { ifVersion: 0 }), {
    error: "Error: Version conflict on '/v.txt': expected version 0, current version is 1",
  });
  assert.is((await b.write("/v.txt", "b", { ifVersion: 1 })).version, 2);
  assert.equal(await b.edit("/v.txt", "b", "c", false, { ifVersion: 1 }), {
    error: "Error: Version conflict on '/v.txt': expected version 1, current version is 2",
  });
  assert.is((await b.read("/v.txt")).content, "b");
  assert.is((await b.edit("/v.txt", "b", "c", false, { ifVersion: 2 })).version, 3);
  assert.equal(await b.write("/missing.txt", "x", { ifVersion: 4 }), {
    error: "Error: Version conflict on '/missing.txt': expected version 4, but the file does not exist",
  });
  assert.equal(await b.ls("/").then((r) => r.files!.map((f) => f.path)), ["/v.txt"]);
  assert.match((await b.write("/v.txt", "x", { ifVersion: -1 })).error!, /non-negative integer/);
});

test("ifVersion: of racing writers with the same version exactly one wins", async () => {
  const b = fresh();
  await b.write("/race.txt", "0");
  const results = await Promise.all(
    Array.from({ length: 8 }, (_, i) => b.write("/race.txt", `w${i}`, { ifVersion: 1 })),
  );
  assert.is(results.filter((r) => !r.error).length, 1);
  assert.is((await b.stat("/race.txt")).data!.version, 2);
  const creators = await Promise.all(
    Array.from({ length: 8 }, (_, i) => b.write("/new.txt", `c${i}`, { ifVersion: 0 })),
  );
  assert.is(creators.filter((r) => !r.error).length, 1);
});

test("workspaces are exact: 'acme' never sees 'acme-corp' or 'acme%'", async () => {
  const tag = uniqueName("t");
  const acme = backend.withWorkspace(`acme${tag}`);
  const corp = backend.withWorkspace(`acme${tag}-corp`);
  const pct = backend.withWorkspace(`acme${tag}%`);
  await corp.write("/secret.txt", "corp secret");
  await pct.write("/p.txt", "percent secret");
  await acme.write("/mine.txt", "acme data");
  assert.equal(
    (await acme.ls("/")).files!.map((f) => f.path),
    ["/mine.txt"],
  );
  assert.equal((await acme.grep("secret")).matches, []);
  assert.equal(
    (await acme.glob("**")).files!.map((f) => f.path),
    ["/mine.txt"],
  );
  assert.equal(await acme.read("/secret.txt"), { error: "File '/secret.txt' not found" });
  assert.match((await acme.delete("/secret.txt")).error!, /not found/);
  assert.is((await acme.delete("/")).error, undefined);
  assert.is((await corp.read("/secret.txt")).content, "corp secret");
  assert.is((await pct.read("/p.txt")).content, "percent secret");
});

test("withWorkspace shares the pool; close() ends only a pool the backend created", async () => {
  const url = await databaseUrl();
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  const onBorrowed = new PostgresBackend({ pool, schema: TEST_SCHEMA, workspace: uniqueName("ws") });
  await onBorrowed.initialize();
  const view = onBorrowed.withWorkspace(uniqueName("ws"));
  assert.is(view.pool, pool);
  await view.write("/x.txt", "x");
  await onBorrowed.close();
  assert.is((await pool.query("SELECT 1 AS one")).rows[0].one, 1); // still usable
  await pool.end();

  const owned = new PostgresBackend({ connectionString: url, schema: TEST_SCHEMA, workspace: uniqueName("ws") });
  await owned.write("/y.txt", "y"); // first use initializes lazily
  await owned.close();
  assert.is((owned.pool as unknown as { ending: boolean }).ending, true);
  assert.match((await owned.read("/y.txt")).error!, /backend is closed/);
});

test("invalid workspace and schema names are refused up front", () => {
  assert.throws(() => backend.withWorkspace(""), /Invalid workspace/);
  assert.throws(() => backend.withWorkspace("a\u0000b"), /Invalid workspace/);
  assert.throws(() => new PostgresBackend({ schema: 'x"; drop table y; --' }), /Invalid schema/);
});

test("an unreachable database is an error result, not a crash", async () => {
  const dead = new PostgresBackend({ connectionString: "postgres://nobody@127.0.0.1:1/none", workspace: "w" });
  const r = await dead.read("/a.txt");
  assert.match(r.error!, /^Error: storage failure during read: .*ECONNREFUSED/);
  await dead.close();
});

test("a dropped connection mid-session: the next call succeeds on a new connection", async () => {
  const b = await testBackend({ maxPoolSize: 1 });
  await b.write("/a.txt", "before");
  const pid = (await b.pool.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
  await admin.query("SELECT pg_terminate_backend($1)", [pid]);
  // The pool dropped the killed idle connection; the next call opens a new one.
  assert.is((await b.read("/a.txt")).content, "before");
  await b.close();
});

test("pool exhaustion: a call waits a bounded time, then fails with a clear error, never hangs", async () => {
  const b = await testBackend({ maxPoolSize: 1, connectionTimeoutMs: 300 });
  const held = await b.pool.connect(); // the only connection, taken
  const started = Date.now();
  const r = await b.read("/x.txt");
  assert.match(r.error!, /^Error: storage failure during read: timeout exceeded when trying to connect/);
  assert.ok(Date.now() - started < 5_000);
  held.release();
  assert.equal(await b.read("/x.txt"), { error: "File '/x.txt' not found" });
  await b.close();
});

test("storage: text and binary columns, size and line counts as stored", async () => {
  const b = fresh();
  await b.write("/t.txt", "a\r\nb\n");
  await b.uploadFiles([["/bin.txt", Buffer.from([0xff, 0xfe, 0x00])]]);
  const { rows } = await admin.query(
    `SELECT path, content, bytes, mime_type, size, line_count FROM ${TEST_SCHEMA}.files WHERE workspace = $1 ORDER BY path`,
    [b.workspace],
  );
  assert.equal(
    rows.map((r) => [r.path, r.content, r.bytes && [...r.bytes], r.mime_type, Number(r.size), r.line_count]),
    [
      ["/bin.txt", null, [0xff, 0xfe, 0x00], "application/octet-stream", 3, 0],
      ["/t.txt", "a\r\nb\n", null, "text/plain", 5, 2],
    ],
  );
  // stored as binary: read gives bytes, grep skips it, edit refuses it
  assert.ok((await b.read("/bin.txt")).content instanceof Uint8Array);
  assert.equal(await b.edit("/bin.txt", "a", "b"), { error: "Error: Cannot convert binary FileData to string" });
});

test("edit: growth past maxFileBytes is refused and nothing changes", async () => {
  const b = await testBackend({ maxFileBytes: 10 });
  await b.write("/g.txt", "aaaa");
  assert.match((await b.edit("/g.txt", "a", "xyz", true)).error!, /too large \(12 bytes; the limit is 10 bytes\)/);
  assert.is((await b.read("/g.txt")).content, "aaaa");
  await b.close();
});

test("glob: an invalid pattern is an error result", async () => {
  const b = fresh();
  assert.match((await b.glob("")).error!, /Invalid glob pattern/);
  assert.match((await b.grep("x", "/", "\u0000")).error!, /Invalid glob pattern/);
});

test.run();
