/**
 * grepStream() / searchStream() on PostgreSQL (0023's fs_search_open and Connection.openCursor):
 * the same matches as grep()/search() in the same order; rows handed over before the scan ends
 * (which query the cursor runs, and how much of the table its first batch read); leaving the loop
 * early ends the transaction and gives the connection back; errors and the time budget as
 * search() words them. Every backend's stream against its own grep: the conformance and
 * differential suites.
 */
import pg from "pg";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { PostgresBackend, SearchStreamError } from "../src/index.js";
import type { Connection, ReadSession } from "../src/postgres/connection.js";
import type { Statement } from "../src/postgres/sql/statement.js";
import type { GrepMatch, SearchOptions } from "../src/protocol.js";
import { adminClient, databaseUrl, TEST_SCHEMA, testBackend, uniqueName } from "./helpers/db.js";
import { privateSchema } from "./reliability/private-schema.js";

const FILES = 2_000;
const backend = await testBackend();
const admin = await adminClient();
test.after(async () => {
  await backend.close();
  await admin.end();
});

/** The error `fn` rejects with (fails if it resolves). */
async function rejection(fn: () => Promise<unknown>): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    return e as Error;
  }
  assert.unreachable("no error");
  throw new Error("unreachable");
}

async function collect(stream: AsyncIterable<GrepMatch>): Promise<GrepMatch[]> {
  const rows: GrepMatch[] = [];
  for await (const m of stream) rows.push(m);
  return rows;
}

// 2,000 files of two lines with "alpha" (dense), one word in one file (sparse), and a 3 MB file
// of many chunks whose matches span chunk boundaries.
const big = Array.from({ length: 60_000 }, (_, i) => (i % 7 === 0 ? `line ${i} Alpha beta` : `line ${i} gamma`));
await backend.uploadFiles([
  ...Array.from({ length: FILES }, (_, i): [string, Uint8Array] => [
    `/src/d${i % 10}/f${String(i).padStart(4, "0")}.ts`,
    Buffer.from(`export const alpha${i} = ${i};\n// alpha again\nomega\n`),
  ]),
  // A word in the first files of the scope only: dense where the stream starts, sparse overall.
  ...Array.from({ length: 100 }, (_, i): [string, Uint8Array] => [
    `/a-first/f${String(i).padStart(3, "0")}.txt`,
    Buffer.from(`omicron ${i}\n`),
  ]),
  // A word in a third of 3,000 files: dense, read in path order; each file by its own chunks.
  ...Array.from({ length: 3_000 }, (_, i): [string, Uint8Array] => [
    `/q/f${String(i).padStart(4, "0")}.txt`,
    Buffer.from(i % 3 === 0 ? `kappa ${i}\n` : `other ${i}\n`),
  ]),
  ["/docs/big.md", Buffer.from(big.join("\n"))],
  ["/docs/rare.md", Buffer.from("nothing\nzyxwv-only-here\n")],
  ["/docs/image.png", Buffer.from("alpha in a binary file")],
]);

test("grepStream and searchStream give grep's and search's matches, in their order", async () => {
  const cases: SearchOptions[] = [
    { pattern: "alpha" },
    { pattern: "alpha", path: "/src/d3" },
    { pattern: "alpha", glob: "*.md" },
    { pattern: "alpha", glob: "src/d1/**" },
    { pattern: "alpha", path: "/src/d2/f0002.ts" },
    { pattern: "zyxwv-only" },
    { pattern: "no such text anywhere" },
    { pattern: "ALPHA", ignoreCase: true, path: "/docs" },
    { pattern: "^line \\d+0 Alpha", regex: true },
    { pattern: "alpha\\d+ = 1\\d;", regex: true },
    { pattern: "alpha", maxCount: 5 },
    { pattern: "Alpha", path: "/docs", maxCount: 1_000 },
    { pattern: "alpha", maxCount: 0 },
  ];
  for (const options of cases) {
    const want = await backend.search(options);
    assert.is(want.error, undefined, JSON.stringify(options));
    const got = await collect(backend.searchStream(options));
    assert.equal(got, want.matches, JSON.stringify(options));
    if (!options.regex && !options.ignoreCase) {
      const grep = await backend.grep(options.pattern, options.path ?? "/", options.glob ?? null, options.maxCount);
      const stream = backend.grepStream(options.pattern, options.path ?? "/", options.glob ?? null, options.maxCount);
      assert.equal(await collect(stream), grep.matches, `grepStream ${JSON.stringify(options)}`);
    }
  }
  // The test has teeth: the dense pattern streams thousands of rows, the big file's cross chunks.
  assert.is((await collect(backend.grepStream("alpha"))).length, FILES * 2);
  assert.is((await collect(backend.grepStream("Alpha", "/docs/big.md"))).length, Math.ceil(60_000 / 7));
});

/** fs_search_open on a connection of this test's: the cursor's query and what its first FETCH read. */
async function openRaw(
  pattern: string,
  path = "/",
  schema = TEST_SCHEMA,
  workspace = backend.workspace,
): Promise<{ query: string; chunksRead: number; rows: number }> {
  const client = new pg.Client({ connectionString: await databaseUrl() });
  await client.connect();
  try {
    await client.query("BEGIN");
    await client.query(
      `SELECT ${schema}.fs_search_open('c', $1, $2, true, NULL, NULL, false, $3, false, false, NULL, NULL, NULL)`,
      [workspace, path, pattern],
    );
    const [{ statement }] = (await client.query("SELECT statement FROM pg_cursors WHERE name = 'c'")).rows;
    const { rows } = await client.query("FETCH FORWARD 64 FROM c");
    // This transaction's own counters: rows of `chunks` (the text) read so far, the sample's included.
    const [{ n }] = (
      await client.query(
        `SELECT coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0) AS n
           FROM pg_stat_xact_user_tables WHERE relid = '${schema}.chunks'::regclass`,
      )
    ).rows;
    return { query: statement, chunksRead: Number(n), rows: rows.length };
  } finally {
    await client.query("ROLLBACK");
    await client.end();
  }
}

test("a dense pattern streams in path order: the first batch reads the first files, not the scope", async () => {
  const { query, chunksRead, rows } = await openRaw("alpha", "/src");
  assert.is(rows, 64);
  // Up to 64 files sampled and 32 read for 64 rows (two matches each), of the 2,000 files of
  // /src, every one with the word.
  assert.ok(chunksRead < 200, `the first 64 rows read ${chunksRead} chunks`);
  assert.match(query, /ORDER BY f\.path, m\.line/, "the path-order query");
});

test("a pattern in a third of the files: path order, each file's chunks looked up, not every candidate joined", async () => {
  const { query, chunksRead, rows } = await openRaw("kappa", "/q");
  assert.is(rows, 64);
  // 64 matching files among the first ~192, and the sample's 32; the 1,000 candidate chunks of
  // the trigram index are not all read (a plan that joined every file to them read them first).
  assert.ok(chunksRead < 500, `the first 64 rows read ${chunksRead} chunks`);
  assert.match(query, /ORDER BY f\.path, m\.line/, "the path-order query");
});

test("plan shape: the path-order query reads each file's chunks by its own key, never a join of the scope to the candidates", async () => {
  const client = await adminClient();
  try {
    await client.query("BEGIN");
    await client.query(
      `SELECT ${TEST_SCHEMA}.fs_search_open('c', $1, '/q', true, NULL, NULL, false, 'kappa', false, false, NULL, NULL, NULL)`,
      [backend.workspace],
    );
    const [{ statement }] = (await client.query("SELECT statement FROM pg_cursors WHERE name = 'c'")).rows;
    // Every way to look chunks up by key off: a query the planner may flatten then joins the
    // scope's files to the chunks that pass the test (how a word in a quarter of 6,300 files took
    // 22 s); the per-file subquery can only be scanned once per file.
    await client.query(`SET LOCAL search_path = ${TEST_SCHEMA}, pg_temp; SET LOCAL enable_sort = off;
      SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL plan_cache_mode = force_custom_plan`);
    await client.query(`PREPARE q(text, text, text, text, boolean, text, text, text, text) AS ${statement}`);
    const plan = (
      await client.query(
        `EXPLAIN EXECUTE q(${client.escapeLiteral(backend.workspace)}, '/q/', '/q0', '%kappa%', false, NULL, '/q/', 'kappa', NULL)`,
      )
    ).rows
      .map((r) => r["QUERY PLAN"])
      .join("\n");
    assert.not.match(plan, /Hash Join|Merge Join|Materialize/, plan);
    assert.match(plan, /Seq Scan on chunks c[\s\S]*Filter: .*chunk_set = f\.chunk_set/, plan);
  } finally {
    await client.query("ROLLBACK");
    await client.end();
  }
});

test("a sparse pattern: the trigram query (its sort waits for few candidates)", async () => {
  const { query, rows } = await openRaw("zyxwv-only");
  assert.is(rows, 1);
  assert.match(query, /ORDER BY c\.path, c\.first_line, l\.n/, "the trigram query");
});

test("a pattern dense in the first files and sparse over the scope: the trigram query (a sample spread over the scope)", async () => {
  const { query, rows } = await openRaw("omicron");
  assert.is(rows, 64);
  assert.match(query, /ORDER BY c\.path, c\.first_line, l\.n/, "the trigram query");
  assert.equal(
    (await collect(backend.grepStream("omicron"))).map((m) => m.path),
    (await backend.grep("omicron")).matches!.map((m) => m.path),
  );
});

test("a scope of files too big to sample and the planner on the index: the trigram query, not a path-order read", async () => {
  // A schema of its own: in the shared one most chunk sets hold one or two chunks, and the
  // planner reads a few files by key rather than use the index.
  const big = await privateSchema("streams_big");
  const b = new PostgresBackend({ connectionString: await databaseUrl(), schema: big.schema, workspace: "w" });
  try {
    const files = Array.from({ length: 60 }, (_, i): [string, Uint8Array] => [
      `/bigs/f${String(i).padStart(2, "0")}.txt`,
      Buffer.from(`${i === 33 ? "upsilon-rare " : ""}${`filler text line ${i}\n`.repeat(14_000)}`), // 280 kB
    ]);
    assert.ok((await b.uploadFiles(files)).every((r) => r.error === null));
    const { query, rows } = await openRaw("upsilon-rare", "/bigs", big.schema, "w");
    assert.is(rows, 1);
    assert.match(query, /ORDER BY c\.path, c\.first_line, l\.n/, "the trigram query");
  } finally {
    await b.close();
    await big.drop();
  }
});

/** The session of a stream's tail once it has read ahead (a head's first FETCH is of 64 rows). */
const TAIL_READING = `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query LIKE '%FETCH FORWARD 1024 %'`;
/** Waits until the tail of a stream on the pool named `name` has read a batch ahead. */
const tailReadAhead = (name: string) =>
  until("the tail read ahead", async () => (await admin.query(TAIL_READING, [name])).rows.length === 1);
/** Connections of `pool` checked out now (a stream's head and tail hold one each). */
const checkedOut = (pool: pg.Pool) => pool.totalCount - pool.idleCount;
async function until(what: string, ok: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.unreachable(`timed out waiting until ${what}`);
}

/**
 * A backend on a pool of its own (named, so its sessions can be found) whose streams always split,
 * the tail reading one batch ahead and then waiting, its transaction open (aheadBytes 1).
 */
async function splittingBackend(label: string, { max = 4, aheadBytes = 1 } = {}) {
  const name = uniqueName(label);
  // A call that waits for a connection fails after 3 s instead of hanging.
  const pool = new pg.Pool({
    connectionString: await databaseUrl(),
    max,
    application_name: name,
    connectionTimeoutMillis: 3_000,
  });
  const b = new PostgresBackend({
    pool,
    schema: TEST_SCHEMA,
    workspace: backend.workspace,
    streamSplit: { minBytes: 1, aheadBytes },
  });
  return { name, pool, b };
}

test("a big scope read in path order: its second half on a second connection, in the same snapshot; same rows, same order", async () => {
  const { name, pool, b } = await splittingBackend("split");
  try {
    const want = (await b.search({ pattern: "alpha", path: "/src" })).matches!;
    assert.is(want.length, FILES * 2);
    const rows: GrepMatch[] = [];
    let atLast = -1;
    for await (const m of b.grepStream("alpha", "/src")) {
      rows.push(m);
      if (rows.length === 1) {
        // The head has given 64 rows; the tail, on its own connection, reads its part ahead.
        await tailReadAhead(name);
        assert.is(checkedOut(pool), 2, "head and tail hold a connection each");
        // Written after the stream began, before and after the cut: neither half sees them.
        await backend.uploadFiles([
          ["/src/0-early.txt", Buffer.from("alpha early\n")],
          ["/src/zz-late.txt", Buffer.from("alpha late\n")],
        ]);
      }
      if (rows.length === want.length) atLast = checkedOut(pool);
    }
    assert.equal(rows, want);
    // At the last row the head was closed at the cut and the tail when it read its last batch:
    // with the head alone, its connection would still be held here.
    assert.is(atLast, 0, "the rows after the cut came from the second connection");
    assert.is((await collect(b.grepStream("alpha", "/src"))).length, want.length + 2, "a new stream sees both");
  } finally {
    await backend.delete("/src/0-early.txt");
    await backend.delete("/src/zz-late.txt");
    await b.close();
    await pool.end();
  }
});

test("the second connection dropped before the stream reaches it: the first reads on, nothing lost", async () => {
  const { name, pool, b } = await splittingBackend("tail");
  try {
    const want = (await b.search({ pattern: "alpha", path: "/src" })).matches!;
    const rows: GrepMatch[] = [];
    for await (const m of b.grepStream("alpha", "/src")) {
      rows.push(m);
      if (rows.length === 1) {
        await tailReadAhead(name);
        await admin.query(`SELECT pg_terminate_backend(pid) FROM (${TAIL_READING}) t`, [name]);
        await until(
          "the tail's backend is gone",
          async () => (await admin.query(TAIL_READING, [name])).rows.length === 0,
        );
        await new Promise((r) => setTimeout(r, 100)); // the client hears of it (an 'error' event)
      }
    }
    assert.equal(rows, want);
    assert.ok(want.length > 2 * 1024 + 64, "the tail had rows to give that the head gave instead");
  } finally {
    await b.close();
    await pool.end();
  }
});

test("the second connection gives way: calls inside the loop that need the pool get it, the stream loses nothing", async () => {
  // Three connections: the head, the tail, one free. The loop body needs two at once (two
  // reads), then a connection taken past the backend (pool.connect) while another waits.
  const { name, pool, b } = await splittingBackend("give-way", { max: 3 });
  try {
    const want = (await b.search({ pattern: "alpha", path: "/src" })).matches!;
    const rows: GrepMatch[] = [];
    for await (const m of b.grepStream("alpha", "/src")) {
      rows.push(m);
      if (rows.length === 1) {
        await tailReadAhead(name);
        assert.is(checkedOut(pool), 2);
        const [one, two] = await Promise.all([b.read(m.path), b.read(m.path)]);
        assert.is(one.error, undefined);
        assert.is(two.error, undefined);
        await until("the tail gave its connection back", () => checkedOut(pool) === 1);
      }
    }
    assert.equal(rows, want);
    // A second stream's tail, and a waiter the backend does not see (the pool used directly).
    const again: GrepMatch[] = [];
    for await (const m of b.grepStream("alpha", "/src")) {
      again.push(m);
      if (again.length === 1) {
        await tailReadAhead(name);
        const free = await pool.connect(); // the last free one
        const waiter = await pool.connect(); // waits: the tail sees someone waiting and gives way
        waiter.release();
        free.release();
      }
    }
    assert.equal(again, want);
  } finally {
    await b.close();
    await pool.end();
  }
});

test("aheadBytes 0 still reads ahead one batch at a time (it never waits for itself)", async () => {
  const { name, pool, b } = await splittingBackend("ahead-0", { aheadBytes: 0 });
  try {
    const want = (await b.search({ pattern: "alpha", path: "/src" })).matches!;
    const read = async () => {
      const rows: GrepMatch[] = [];
      for await (const m of b.grepStream("alpha", "/src")) {
        // The head waits at its first row until the tail has read ahead: then it switches to it.
        if (rows.push(m) === 1) {
          await tailReadAhead(name);
        }
      }
      return rows;
    };
    const got = await Promise.race([
      read(),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error("the stream hung")), 10_000).unref()),
    ]);
    assert.equal(got, want);
  } finally {
    await b.close();
    await pool.end();
  }
});

test("a read session importing another's snapshot sees exactly its rows, not a file committed in between", async () => {
  const pool = new pg.Pool({ connectionString: await databaseUrl(), max: 3 });
  const b = new PostgresBackend({ pool, schema: TEST_SCHEMA, workspace: backend.workspace });
  await b.initialize();
  const connection = (b as unknown as { state: { connection: Connection } }).state.connection;
  // A statement of this test's own (the Statement shape sql/ files are loaded into).
  const files: Statement<object, { n: number }> = {
    name: "count_files",
    params: [],
    readOnly: true,
    bind: () => ({
      text: `SELECT count(*)::int AS n FROM ${TEST_SCHEMA}.files WHERE workspace = $1`,
      values: [backend.workspace],
    }),
    run: () => Promise.reject(new Error("not used")),
  };
  const countFiles = async (session: ReadSession) => (await session.run(files, {}))[0].n;
  const head = (await connection.beginRead(0, { kind: "repeatable" }, { wait: true }))!;
  try {
    const before = await countFiles(head);
    const snapshot = await head.exportSnapshot();
    assert.type(snapshot, "string");
    await backend.write("/between-snapshots.txt", "x\n");
    const tail = (await connection.beginRead(0, { kind: "import", id: snapshot! }, { wait: false }))!;
    // One connection left: a session that must not hold one someone else needs is not begun.
    assert.is(await connection.beginRead(0, { kind: "own" }, { wait: false }), undefined);
    const own = (await connection.beginRead(0, { kind: "own" }, { wait: true }))!;
    try {
      assert.is(await countFiles(tail), before, "the imported snapshot: as the head saw it");
      assert.is(await countFiles(own), before + 1, "a snapshot of its own sees the new file");
    } finally {
      await Promise.all([tail.close(), own.close()]);
    }
  } finally {
    await head.close();
    await backend.delete("/between-snapshots.txt");
    await b.close();
    await pool.end();
  }
});

test("closing a read session cancels the statement it is running (a read-ahead FETCH), then gives the connection back", async () => {
  const name = uniqueName("cancel");
  const pool = new pg.Pool({ connectionString: await databaseUrl(), max: 2, application_name: name });
  const b = new PostgresBackend({ pool, schema: TEST_SCHEMA, workspace: backend.workspace });
  await b.initialize();
  const connection = (b as unknown as { state: { connection: Connection } }).state.connection;
  const sleep: Statement<object, unknown> = {
    name: "sleep",
    params: [],
    readOnly: true,
    bind: () => ({ text: "SELECT pg_sleep(60)", values: [] }),
    run: () => Promise.reject(new Error("not used")),
  };
  try {
    const session = (await connection.beginRead(0, { kind: "repeatable" }, { wait: true }))!;
    const running = session.run(sleep, {}).then(
      () => "finished",
      (e: Error) => e.message,
    );
    await until(
      "the sleep runs",
      async () =>
        (
          await admin.query(
            "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND query LIKE '%pg_sleep(60)%' AND state = 'active'",
            [name],
          )
        ).rows.length === 1,
    );
    const started = performance.now();
    await session.close();
    assert.ok(performance.now() - started < 10_000, "close() did not wait the minute out");
    assert.match(await running, /closed/, "the statement was cancelled: it fails as the closed session it belonged to");
    assert.is(checkedOut(pool), 0, "the connection is back in the pool");
    const { rows } = await admin.query(
      "SELECT state FROM pg_stat_activity WHERE application_name = $1 AND query LIKE '%pg_sleep(60)%'",
      [name],
    );
    assert.ok(
      rows.every((r) => r.state !== "active"),
      "nothing left running on the server",
    );
  } finally {
    await b.close();
    await pool.end();
  }
});

test("streamSplit: a byte count that is not one is refused in one line", () => {
  for (const [streamSplit, message] of [
    [{ minBytes: -1 }, "streamSplit.minBytes must be a whole number of bytes, 0 or more (got -1)"],
    [{ aheadBytes: "32MB" }, 'streamSplit.aheadBytes must be a whole number of bytes, 0 or more (got "32MB")'],
    [{ minBytes: 1.5 }, "streamSplit.minBytes must be a whole number of bytes, 0 or more (got 1.5)"],
    [
      { minBytes: Number.POSITIVE_INFINITY },
      "streamSplit.minBytes must be a whole number of bytes, 0 or more (got null)",
    ],
  ] as const) {
    try {
      new PostgresBackend({ schema: TEST_SCHEMA, streamSplit: streamSplit as never });
      assert.unreachable("accepted");
    } catch (e) {
      assert.is((e as Error).message, message);
    }
  }
});

test("close() while a stream waits for a connection: the stream fails as closed, never runs on the closed backend", async () => {
  const pool = new pg.Pool({ connectionString: await databaseUrl(), max: 1 });
  const b = new PostgresBackend({ pool, schema: TEST_SCHEMA, workspace: backend.workspace });
  await b.initialize();
  const held = await pool.connect(); // the pool's only connection: the stream waits for it
  try {
    const next = b.grepStream("alpha").next();
    await new Promise((r) => setTimeout(r, 100));
    await b.close();
    held.release();
    const e = await rejection(() => next);
    assert.instance(e, SearchStreamError);
    assert.match(e.message, /closed/);
  } finally {
    await pool.end();
  }
});

test("leaving the loop early ends the stream's transaction and gives its connection back", async () => {
  const name = uniqueName("stream");
  // One connection, named so that the server's view of it can be found; a leaked one times out.
  const pool = new pg.Pool({
    connectionString: await databaseUrl(),
    max: 1,
    application_name: name,
    connectionTimeoutMillis: 5_000,
  });
  const b = new PostgresBackend({ pool, schema: TEST_SCHEMA, workspace: backend.workspace });
  const sessions = async () =>
    (
      await admin.query(
        `SELECT state, (SELECT count(*) FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'virtualxid')::int AS xacts
           FROM pg_stat_activity a WHERE application_name = $1`,
        [name],
      )
    ).rows;
  try {
    let seen = 0;
    for await (const _ of b.grepStream("alpha")) {
      if (++seen === 1) {
        assert.equal(
          await sessions(),
          [{ state: "idle in transaction", xacts: 1 }],
          "the stream holds its transaction",
        );
      }
      if (seen === 100) break;
    }
    assert.is(seen, 100);
    assert.equal(await sessions(), [{ state: "idle", xacts: 0 }], "closed: no transaction, no cursor");
    // The pool's only connection is free again.
    assert.equal((await b.grep("zyxwv-only")).matches?.length, 1);
  } finally {
    await b.close();
    // pool.end() waits for a connection never given back: bounded, so a leak fails, not hangs.
    await Promise.race([pool.end(), new Promise((resolve) => setTimeout(resolve, 2_000).unref())]);
  }
});

test("the session's search_path does not change what a stream finds (its chunk test names pg_catalog's operators)", async () => {
  const client = new pg.Client({ connectionString: await databaseUrl() });
  await client.connect();
  try {
    await client.query("BEGIN");
    // An operator ~~(text, text) that matches nothing, in a schema listed before pg_catalog.
    await client.query(`CREATE SCHEMA zz_planted;
      CREATE FUNCTION zz_planted.never(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT false';
      CREATE OPERATOR zz_planted.~~ (LEFTARG = text, RIGHTARG = text, FUNCTION = zz_planted.never);
      SET LOCAL search_path = zz_planted, pg_catalog`);
    await client.query(
      `SELECT ${TEST_SCHEMA}.fs_search_open('c', $1, '/src/d1', false, NULL, NULL, false, 'alpha', false, false, NULL, NULL, NULL)`,
      [backend.workspace],
    );
    const { rows } = await client.query("FETCH ALL FROM c");
    assert.is(rows.length, (FILES / 10) * 2);
  } finally {
    await client.query("ROLLBACK");
    await client.end();
  }
});

test("a connection lost between two batches ends the stream with an error, not the process", async () => {
  const name = uniqueName("lost");
  const pool = new pg.Pool({ connectionString: await databaseUrl(), max: 2, application_name: name });
  const b = new PostgresBackend({ pool, schema: TEST_SCHEMA, workspace: backend.workspace });
  try {
    let seen = 0;
    const e = await rejection(async () => {
      for await (const _ of b.grepStream("alpha")) {
        if (++seen === 1) {
          await admin.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND state = 'idle in transaction'",
            [name],
          );
          await new Promise((r) => setTimeout(r, 200)); // the FATAL arrives while the stream is idle
        }
      }
    });
    assert.instance(e, SearchStreamError);
    assert.match(e.message, /terminat/i);
    assert.is(seen, 64, "the first batch, then the error");
    assert.equal((await b.grep("zyxwv-only")).matches?.length, 1, "the pool still serves");
  } finally {
    await b.close();
    await pool.end();
  }
});

test("close() of the backend ends its open streams (and does not wait for them)", async () => {
  const b = await testBackend({ workspace: backend.workspace });
  const stream = b.grepStream("alpha");
  assert.ok((await stream.next()).value);
  await b.close();
  const e = await rejection(async () => {
    for await (const _ of stream);
  });
  assert.instance(e, SearchStreamError);
  assert.match(e.message, /closed/);
});

test("statementTimeoutMs 0 (no limit) streams like search()", async () => {
  const b = await testBackend({ workspace: backend.workspace, statementTimeoutMs: 0 });
  try {
    assert.equal(await collect(b.grepStream("zyxwv-only")), (await b.grep("zyxwv-only")).matches);
    assert.is((await collect(b.grepStream("alpha", "/src/d2"))).length, (FILES / 10) * 2);
  } finally {
    await b.close();
  }
});

test("errors: thrown as SearchStreamError with search()'s one-line message; nothing is left open", async () => {
  const b = await testBackend({ maxPoolSize: 1, connectionTimeoutMs: 5_000 });
  try {
    const big = `${"ab".repeat(200)}\n`.repeat(20_000); // 8 MB
    assert.is((await b.write("/big.txt", big)).error, undefined);
    const cases: SearchOptions[] = [
      { pattern: "(", regex: true },
      { pattern: "(a|b)*(a|b)*(a|b)*c", regex: true, timeoutMs: 1 },
      { pattern: "x", path: "/../etc" },
      { pattern: "x", timeoutMs: 0 },
      { pattern: 5 as never },
      { pattern: "x", maxCount: "3" as never },
    ];
    for (const options of cases) {
      const want = await b.search(options);
      assert.ok(want.error, JSON.stringify(options));
      try {
        await collect(b.searchStream(options));
        assert.unreachable(`no error for ${JSON.stringify(options)}`);
      } catch (e) {
        assert.instance(e, SearchStreamError);
        assert.is((e as Error).message, want.error, JSON.stringify(options));
      }
    }
    // A literal that cannot be stored (a NUL) matches nothing; the one connection is still usable.
    assert.equal(await collect(b.grepStream("a\u0000b")), []);
    assert.is((await collect(b.searchStream({ pattern: "abab", maxCount: 3 }))).length, 3);
  } finally {
    await b.close();
  }
});

test.run();
