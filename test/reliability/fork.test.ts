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
import { createHash, randomBytes } from "node:crypto";
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

test("a fork's text files hold no text of their own (0016): reads, download, edit, delete and history use the set's text", async () => {
  const src = owner.withWorkspace("lazy-src");
  const text = Array.from({ length: 2000 }, (_, i) => `line ${i} of a shared text`).join("\n") + "\n";
  await src.write("/t.txt", text);
  await src.write("/empty.txt", "");
  await src.uploadFiles([["/b.bin", new Uint8Array([0, 1, 2, 255])]]);
  await src.fork("lazy-dst");
  const rows = (
    await admin.query(
      `SELECT path, content IS NULL AS no_text, hash = sha256(coalesce(convert_to(content, 'UTF8'), bytes)) AS hashed
       FROM ${S}.files WHERE workspace = $1 ORDER BY path`,
      ["lazy-dst"],
    )
  ).rows;
  assert.equal(
    rows.map((r) => [r.path, r.no_text]),
    [
      ["/b.bin", true],
      ["/empty.txt", true],
      ["/t.txt", true],
    ],
  );
  const srcHashes = (
    await admin.query(`SELECT path, hash FROM ${S}.files WHERE workspace = 'lazy-src' ORDER BY path`)
  ).rows.map((r) => [r.path, r.hash.toString("hex")]);
  const dstHashes = (
    await admin.query(`SELECT path, hash FROM ${S}.files WHERE workspace = 'lazy-dst' ORDER BY path`)
  ).rows.map((r) => [r.path, r.hash.toString("hex")]);
  assert.equal(dstHashes, srcHashes, "the fork's rows carry their source's hashes");
  assert.equal(dstHashes.find(([p]) => p === "/t.txt")?.[1], createHash("sha256").update(text).digest("hex"));

  const dst = owner.withWorkspace("lazy-dst");
  assert.is((await dst.read("/t.txt", 1000, 2)).content, "line 1000 of a shared text\nline 1001 of a shared text");
  const [t, empty, bin] = await dst.downloadFiles(["/t.txt", "/empty.txt", "/b.bin"]);
  assert.is(Buffer.from(t.content!).toString(), text);
  assert.is(Buffer.from(empty.content!).toString(), "");
  assert.equal([...bin.content!], [0, 1, 2, 255]);

  // Deleted in the fork: its history keeps the text (read from the set before the set goes).
  await src.delete("/t.txt");
  await dst.delete("/t.txt");
  assert.is((await dst.readVersion("/t.txt", 1, 0, 1)).content, "line 0 of a shared text");
  assert.is((await dst.restore("/t.txt", 1)).error, undefined);
  assert.is(Buffer.from((await dst.downloadFiles(["/t.txt"]))[0].content!).toString(), text);

  // A forked row whose set is no longer shared is re-cut in place by its first edit; its history
  // keeps the text it had (read from the set before the re-cut).
  await src.write("/solo.txt", "old text\n");
  await src.fork("lazy-solo");
  await src.delete("/solo.txt");
  const solo = owner.withWorkspace("lazy-solo");
  const soloSet = await setOf("lazy-solo", "/solo.txt");
  assert.is((await solo.edit("/solo.txt", "old", "new")).error, undefined);
  assert.is(await setOf("lazy-solo", "/solo.txt"), soloSet, "re-cut in place");
  assert.is((await solo.readVersion("/solo.txt", 1)).content, "old text\n");
  assert.is((await solo.read("/solo.txt")).content, "new text\n");

  // An edit gives the row its text (a set of its own); one that sets content NULL keeps the set.
  await src.write("/e.txt", "alpha\nbeta\n");
  await src.fork("lazy-dst2");
  const dst2 = owner.withWorkspace("lazy-dst2");
  assert.is((await dst2.edit("/e.txt", "beta", "gamma")).error, undefined);
  assert.is((await dst2.read("/e.txt")).content, "alpha\ngamma\n");
  assert.is.not(await setOf("lazy-dst2", "/e.txt"), await setOf("lazy-src", "/e.txt"));
  const own = await setOf("lazy-dst2", "/e.txt");
  const version = (await dst2.stat("/e.txt")).data?.version;
  await admin.query(`UPDATE ${S}.files SET content = NULL WHERE workspace = 'lazy-dst2' AND path = '/e.txt'`);
  assert.is(await setOf("lazy-dst2", "/e.txt"), own);
  assert.is((await dst2.stat("/e.txt")).data?.version, version, "the same body: no new version");
  assert.is((await dst2.read("/e.txt")).content, "alpha\ngamma\n");
  assert.equal(
    (await dst2.grep("gamma")).matches?.map((m) => m.path),
    ["/e.txt"],
  );
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
  const [victim] = (
    await admin.query(
      `SELECT size, line_count, hash FROM ${S}.files WHERE workspace = 'globex' AND path = '/secret.txt'`,
    )
  ).rows;
  // Naming the set without text (as a fork does), even with its exact hash, size and line count:
  // the role cannot read a file of that set. Refused, nothing written.
  const insert = raw.query(
    `INSERT INTO files (workspace, path, content, mime_type, size, line_count, chunk_set, hash)
     VALUES ('acme', '/stolen.txt', NULL, 'text/plain', $1, $2, $3, $4)`,
    [victim.size, victim.line_count, theirs, victim.hash],
  );
  await rejects(() => insert, /chunk set .* is not the text of a file this role can read/);
  assert.is(await count(`SELECT count(*) AS n FROM ${S}.files WHERE workspace = 'acme' AND path = '/stolen.txt'`), 0);
  // Naming it with text of its own: the row gets a set of its own.
  await raw.query(
    `INSERT INTO files (workspace, path, content, mime_type, size, line_count, chunk_set)
     VALUES ('acme', '/named.txt', 'mine', 'text/plain', 4, 1, $1)`,
    [theirs],
  );
  assert.is.not(await setOf("acme", "/named.txt"), theirs);
  // An UPDATE naming a set is ignored: the row keeps its own (also when it drops its inline text).
  const mine = await setOf("acme", "/mine.txt");
  await raw.query(`UPDATE files SET chunk_set = $1 WHERE workspace = 'acme' AND path = '/mine.txt'`, [theirs]);
  await raw.query(`UPDATE files SET chunk_set = $1, content = NULL WHERE workspace = 'acme' AND path = '/named.txt'`, [
    theirs,
  ]);
  assert.is(await setOf("acme", "/mine.txt"), mine);
  assert.is.not(await setOf("acme", "/named.txt"), theirs);
  assert.is((await restricted.read("/named.txt")).content, "mine", "its own text, now only in its chunk set");
  // Nor can it set a hash its body does not have (a forged hash would let a later INSERT claim
  // the set as other text): the triggers keep the body's.
  const hashOf = async (path: string) =>
    (
      await admin.query(`SELECT encode(hash, 'hex') AS h FROM ${S}.files WHERE workspace = 'acme' AND path = $1`, [
        path,
      ])
    ).rows[0].h;
  const real = createHash("sha256").update("mine").digest("hex");
  assert.is(await hashOf("/named.txt"), real);
  await raw.query(`UPDATE files SET hash = $1 WHERE workspace = 'acme' AND path = '/named.txt'`, [victim.hash]);
  await raw.query(
    `UPDATE files SET hash = $1, mime_type = 'text/x-forged' WHERE workspace = 'acme' AND path = '/named.txt'`,
    [victim.hash],
  );
  assert.is(await hashOf("/named.txt"), real, "the body's hash, whatever the UPDATE named");
  const visible = await raw.query(`SELECT count(*)::int AS n FROM chunks WHERE chunk_set = $1`, [theirs]);
  assert.is(visible.rows[0].n, 0, "another workspace's chunks are invisible to the role");
  assert.equal((await restricted.grep("globex secret")).matches, []);
});

test("raw SQL can share a readable set only with that set's hash, size and line count (every file of a set has its text)", async () => {
  await restricted.write("/same-size.txt", "original text\n");
  const own = await setOf("acme", "/same-size.txt");
  const [mine] = (await admin.query(`SELECT hash FROM ${S}.files WHERE workspace = 'acme' AND path = '/same-size.txt'`))
    .rows;
  const share = (path: string, size: number, lines: number, hash: Buffer) =>
    raw.query(
      `INSERT INTO files (workspace, path, content, mime_type, size, line_count, chunk_set, hash)
       VALUES ('acme', $1, NULL, 'text/plain', $2, $3, $4, $5)`,
      [path, size, lines, own, hash],
    );
  const other = createHash("sha256").update("forgedxx text\n").digest();
  await rejects(() => share("/forged.txt", 14, 1, other), /chunk set .* is not the text of a file this role can read/);
  await rejects(
    () => share("/forged.txt", 15, 1, mine.hash),
    /chunk set .* is not the text of a file this role can read/,
  );
  await rejects(
    () => share("/forged.txt", 14, 2, mine.hash),
    /chunk set .* is not the text of a file this role can read/,
  );
  // Text given with the set named: a set of its own (never the named one).
  await raw.query(
    `INSERT INTO files (workspace, path, content, mime_type, size, line_count, chunk_set)
     VALUES ('acme', '/forged.txt', 'forgedxx text\n', 'text/plain', 14, 2, $1)`,
    [own],
  );
  assert.is.not(await setOf("acme", "/forged.txt"), own);
  // The same text, named by its hash, shares it (that is what a fork does).
  await share("/twin.txt", 14, 1, mine.hash);
  assert.is(await setOf("acme", "/twin.txt"), own);
  assert.is((await restricted.read("/twin.txt")).content, "original text\n");
  assert.equal(
    (await restricted.grep("original")).matches?.map((m) => m.path),
    ["/same-size.txt", "/twin.txt"],
  );
  assert.equal(
    (await restricted.grep("forgedxx")).matches?.map((m) => m.path),
    ["/forged.txt"],
  );
});

/** A connection of the owner's, for transactions the backend does not open. */
async function ownerSession(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`SET search_path = ${S}`);
  return c;
}

test("a raw INSERT sharing a set locks its witness until it commits: the witness's writer waits, then copies on write (0016)", async () => {
  const src = owner.withWorkspace("claim-src");
  await src.write("/w.txt", "witness text\n");
  const [w] = (
    await admin.query(
      `SELECT chunk_set, hash, size, line_count FROM ${S}.files WHERE workspace = 'claim-src' AND path = '/w.txt'`,
    )
  ).rows;
  const claimer = await ownerSession();
  try {
    await claimer.query("BEGIN");
    await claimer.query(
      `INSERT INTO files (workspace, path, content, mime_type, size, line_count, chunk_set, hash)
       VALUES ('claim-dst', '/copy.txt', NULL, 'text/plain', $1, $2, $3, $4)`,
      [w.size, w.line_count, w.chunk_set, w.hash],
    );
    // Uncommitted, the copy is invisible to the writer of the witness: without the lock it would
    // find the set unshared and re-cut it in place under the copy.
    let edited = false;
    const edit = src.edit("/w.txt", "witness", "changed").then((r) => {
      edited = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 500));
    assert.is(edited, false, "the witness's writer waits for the claim to commit");
    await claimer.query("COMMIT");
    assert.is((await edit).error, undefined);
  } finally {
    await claimer.end();
  }
  assert.is.not(await setOf("claim-src", "/w.txt"), w.chunk_set, "copied on write");
  const dst = owner.withWorkspace("claim-dst");
  assert.is((await dst.read("/copy.txt")).content, "witness text\n");
  assert.equal(
    (await dst.grep("witness")).matches?.map((m) => m.path),
    ["/copy.txt"],
  );
  assert.is((await src.read("/w.txt")).content, "changed text\n");
});

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
