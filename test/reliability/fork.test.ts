/**
 * Forks on PostgreSQL (migrations/0010_shared_chunks.sql): a fork shares its source's chunk sets
 * instead of copying them, a shared set is never changed in place (copy on write), a set no file
 * uses goes in the same statement, and under row-level security a restricted role can neither
 * fork what it cannot read nor, with raw SQL, point a file of its own at another workspace's
 * chunks. The behaviour both backends share is in test/conformance/history.ts.
 *
 * Runs in a schema of its own; the role gets a unique name and is dropped at the end.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { PostgresBackend } from "../../src/index.js";
import { adminClient, databaseUrl } from "../helpers/db.js";
import { rejects } from "../conformance/history.js";
import { privateSchema } from "./private-schema.js";
import { restrictedRole } from "./restricted-role.js";

const { schema: S, drop } = await privateSchema("fork");
const url = await databaseUrl();
const admin = await adminClient();

const owner = new PostgresBackend({ connectionString: url, schema: S, workspace: "acme", maxPoolSize: 4 });
await owner.initialize();
const role = await restrictedRole(owner, "da_fork", ["acme", "acme-copy"]);
const { backend: restricted, raw } = role;

test.after(async () => {
  await role.end();
  await owner.close();
  await drop();
  await admin.end();
});

const count = async (sql: string, params: unknown[] = []) => Number((await admin.query(sql, params)).rows[0].n);
const chunkRows = () => count(`SELECT count(*) AS n FROM ${S}.chunks`);
const setOf = async (workspace: string, path: string) =>
  (await admin.query(`SELECT chunk_set FROM ${S}.files WHERE workspace = $1 AND path = $2`, [workspace, path])).rows[0]
    ?.chunk_set as string | undefined;

test("a fork shares every chunk set; the first write to a shared file gives it a set of its own", async () => {
  const initial = await chunkRows();
  const src = owner.withWorkspace("share-src");
  const big = Array.from({ length: 3000 }, (_, i) => `line ${i} of a file cut into many chunks`).join("\n");
  await src.write("/big.txt", big);
  await src.write("/small.txt", "small\n");
  const before = await chunkRows();
  await src.fork("share-dst");
  assert.is(await chunkRows(), before, "no chunk was copied");
  assert.is(await setOf("share-dst", "/big.txt"), await setOf("share-src", "/big.txt"));

  const dst = owner.withWorkspace("share-dst");
  assert.is((await dst.edit("/big.txt", "line 1500 of", "LINE 1500 OF")).error, undefined);
  assert.is.not(await setOf("share-dst", "/big.txt"), await setOf("share-src", "/big.txt"), "copied on write");
  assert.equal((await src.grep("LINE 1500")).matches, []);
  assert.equal(
    (await dst.grep("LINE 1500")).matches?.map((m) => m.line),
    [1501],
  );
  assert.equal((await src.read("/big.txt", 1500, 1)).content, "line 1500 of a file cut into many chunks");

  // Now unshared: an edit of the source re-cuts its set in place (the set stays).
  const own = await setOf("share-src", "/big.txt");
  assert.is((await src.edit("/big.txt", "line 10 of", "line ten of")).error, undefined);
  assert.is(await setOf("share-src", "/big.txt"), own);

  // Deleting every copy of a set drops its chunks; sets still used stay.
  await src.delete("/small.txt");
  assert.equal(
    (await dst.grep("small")).matches?.map((m) => m.path),
    ["/small.txt"],
  );
  await dst.delete("/small.txt");
  await src.delete("/big.txt");
  await dst.delete("/big.txt");
  assert.is(await chunkRows(), initial, "every chunk of both is gone");
});

test("a restricted role forks what it can read into what it may write, and nothing else", async () => {
  await restricted.write("/mine.txt", "mine\n");
  const globex = owner.withWorkspace("globex");
  await globex.write("/secret.txt", `globex secret ${randomBytes(4).toString("hex")}\n`);
  // Not its source, not its target: refused by name, nothing written.
  await rejects(() => restricted.withWorkspace("globex").fork("acme-copy"), /permission denied/);
  await rejects(() => restricted.fork("globex-copy"), /permission denied/);
  assert.is(await count(`SELECT count(*) AS n FROM ${S}.files WHERE workspace IN ('acme-copy', 'globex-copy')`), 0);
  // With history: version rows are the owner's to write (a role naming rows could point them at
  // blobs it cannot read). One clear error, nothing written.
  await rejects(
    () => restricted.fork("acme-copy", { history: true }),
    /copying history needs the schema owner's rights/,
  );
  assert.is(await count(`SELECT count(*) AS n FROM ${S}.files WHERE workspace = 'acme-copy'`), 0);
  assert.is(await count(`SELECT count(*) AS n FROM ${S}.file_versions WHERE workspace = 'acme-copy'`), 0);
  // Its own: allowed.
  assert.equal((await restricted.fork("acme-copy")).files, 1);
  assert.equal((await restricted.withWorkspace("acme-copy").read("/mine.txt")).content, "mine\n");
});

test("raw SQL cannot point a file at another workspace's chunk set, nor repoint one", async () => {
  const theirs = await setOf("globex", "/secret.txt");
  assert.ok(theirs);
  const size = await count(`SELECT size AS n FROM ${S}.files WHERE workspace = 'globex' AND path = '/secret.txt'`);
  const insert = raw.query(
    `INSERT INTO files (workspace, path, content, mime_type, size, line_count, chunk_set)
     VALUES ('acme', '/stolen.txt', $1, 'text/plain', $2, 1, $3)`,
    ["x".repeat(size), size, theirs],
  );
  await rejects(() => insert, /chunk set .* is not the text of a file this role can read/);
  // An UPDATE naming a set is ignored: the row keeps its own.
  const mine = await setOf("acme", "/mine.txt");
  await raw.query(`UPDATE files SET chunk_set = $1 WHERE workspace = 'acme' AND path = '/mine.txt'`, [theirs]);
  assert.is(await setOf("acme", "/mine.txt"), mine);
  const visible = await raw.query(`SELECT count(*)::int AS n FROM chunks WHERE chunk_set = $1`, [theirs]);
  assert.is(visible.rows[0].n, 0, "another workspace's chunks are invisible to the role");
  assert.equal((await restricted.grep("globex secret")).matches, []);
});

test("raw SQL cannot name a readable set with other text of the same size (every file of a set has its text)", async () => {
  await restricted.write("/same-size.txt", "original text\n");
  const own = await setOf("acme", "/same-size.txt");
  const forged = raw.query(
    `INSERT INTO files (workspace, path, content, mime_type, size, line_count, chunk_set)
     VALUES ('acme', '/forged.txt', 'forgedxx text\n', 'text/plain', 14, 2, $1)`,
    [own],
  );
  await rejects(() => forged, /chunk set .* is not the text of a file this role can read/);
  // The same text may share it (that is what a fork does).
  await raw.query(
    `INSERT INTO files (workspace, path, content, mime_type, size, line_count, chunk_set)
     VALUES ('acme', '/twin.txt', 'original text\n', 'text/plain', 14, 2, $1)`,
    [own],
  );
  assert.equal(
    (await restricted.grep("original")).matches?.map((m) => m.path),
    ["/same-size.txt", "/twin.txt"],
  );
});

/** A connection of the owner's, for transactions the backend does not open. */
async function ownerSession(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`SET search_path = ${S}`);
  return c;
}

test("a REPEATABLE READ writer whose snapshot predates a fork never re-cuts the fork's chunks in place", async () => {
  const src = owner.withWorkspace("rr-src");
  await src.write("/r.txt", "before the fork\n");
  const late = await ownerSession();
  try {
    await late.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
    await late.query("SELECT 1"); // its snapshot: no fork yet
    await src.fork("rr-dst");
    await late.query(`SELECT * FROM fs_write('rr-src', '/r.txt', 'after the fork\n', NULL, 'text/plain', NULL)`);
    await late.query("COMMIT");
  } finally {
    await late.end();
  }
  const dst = owner.withWorkspace("rr-dst");
  assert.equal((await dst.grep("fork")).matches, [{ path: "/r.txt", line: 1, text: "before the fork" }]);
  assert.equal((await src.grep("fork")).matches, [{ path: "/r.txt", line: 1, text: "after the fork" }]);
  assert.is.not(await setOf("rr-src", "/r.txt"), await setOf("rr-dst", "/r.txt"));
});

test("the last two files of a set deleted at once leave its chunks to pruneHistory, which sweeps them", async () => {
  // History off: with it on, the second delete waits for the first (both keep the same content
  // as one blob), and then sees it.
  const src = owner.withWorkspace("gc-src");
  await src.setHistory({ enabled: false });
  await owner.withWorkspace("gc-dst").setHistory({ enabled: false });
  await src.write("/g.txt", "collected later\n");
  await src.fork("gc-dst");
  const set = await setOf("gc-src", "/g.txt");
  const [a, b] = [await ownerSession(), await ownerSession()];
  try {
    await a.query("BEGIN");
    await b.query("BEGIN");
    await a.query(`SELECT * FROM fs_delete('gc-src', '/g.txt')`); // each still sees the other's file
    await b.query(`SELECT * FROM fs_delete('gc-dst', '/g.txt')`);
    await a.query("COMMIT");
    await b.query("COMMIT");
  } finally {
    await a.end();
    await b.end();
  }
  const rowsOf = () => count(`SELECT count(*) AS n FROM ${S}.chunks WHERE chunk_set = $1`, [set]);
  assert.is(await rowsOf(), 1, "left behind by both");
  assert.ok((await owner.pruneHistory()).chunkSets >= 1);
  assert.is(await rowsOf(), 0, "swept");
});

test("a fork racing with edits of its source copies one state, and no edit lands in the fork", async () => {
  const src = owner.withWorkspace("race-src");
  const paths = Array.from({ length: 40 }, (_, i) => `/f${String(i).padStart(2, "0")}.txt`);
  await src.uploadFiles(paths.map((p) => [p, Buffer.from("v0\n")]));
  // Each round edits every file in one transaction (an upload), while a fork runs.
  const writer = (async () => {
    for (let round = 1; round <= 15; round++) {
      await src.uploadFiles(paths.map((p) => [p, Buffer.from(`v${round}\n`)]));
    }
  })();
  const forks: string[] = [];
  for (let i = 0; i < 5; i++) {
    forks.push(`race-dst-${i}`);
    await src.fork(`race-dst-${i}`);
  }
  await writer;
  for (const name of forks) {
    const f = owner.withWorkspace(name);
    const got = await f.downloadFiles(paths);
    const versions = new Set(got.map((g) => Buffer.from(g.content!).toString()));
    assert.is(versions.size, 1, `${name} holds one state of the source: ${[...versions].join(" ")}`);
    const [text] = versions;
    // Its chunks are that state too, not the source's later text.
    assert.equal((await f.grep(text.trim())).matches?.length, paths.length, name);
  }
  const final = (await src.downloadFiles(["/f00.txt"]))[0];
  assert.is(Buffer.from(final.content!).toString(), "v15\n");
  assert.equal((await src.grep("v15")).matches?.length, paths.length);
});

test.run();
