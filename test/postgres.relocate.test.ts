/**
 * move() and copy() on PostgreSQL (migration 0026): the shared cases, and what only the database
 * shows — the change feed tells a move from a delete and a create, a move keeps each file's chunks
 * (no re-cut) and never reuses a version, history keeps both sides, two moves of one directory
 * cannot both happen, and a restricted role moves only in the workspaces granted to it.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import type pg from "pg";
import type { Change, PostgresBackend } from "../src/index.js";
import { errors } from "../src/protocol.js";
import { relocateCases } from "./conformance/relocate.js";
import { adminClient, testBackend, uniqueName } from "./helpers/db.js";
import { restrictedRole } from "./reliability/restricted-role.js";

const base = await testBackend({ maxPoolSize: 8 });
const admin = await adminClient();
const fresh = async () => base.withWorkspace(uniqueName("mv"));

relocateCases("PostgresBackend", fresh);

test.after(async () => {
  await base.close();
  await admin.end();
});

/** The subscription's first `n` changes. */
async function changes(b: PostgresBackend, since: number, n: number): Promise<Change[]> {
  const sub = await b.watch({ since });
  const out: Change[] = [];
  const deadline = setTimeout(() => void sub.close(), 20_000);
  for await (const c of sub) {
    out.push(c);
    if (out.length >= n) break;
  }
  clearTimeout(deadline);
  await sub.close();
  return out;
}

const head = async (b: PostgresBackend) =>
  Number(
    (
      await admin.query(`SELECT coalesce(max(id), 0) AS id FROM ${b.schema}.changes WHERE workspace = $1`, [
        b.workspace,
      ])
    ).rows[0].id,
  );

test("the change feed: a move is a delete naming the new path and a create naming the old one; a copy is a create", async () => {
  const b = await fresh();
  await b.write("/d/a.txt", "a");
  await b.write("/d/sub/b.txt", "bb");
  const since = await head(b);
  assert.is((await b.move("/d", "/e")).files, 2);
  assert.is((await b.copy("/e/a.txt", "/c.txt")).files, 1);
  const got = await changes(b, since, 5);
  assert.equal(
    got.map((c) => [c.op, c.path, c.movedTo ?? null, c.movedFrom ?? null, c.size]),
    [
      ["delete", "/d/a.txt", "/e/a.txt", null, 1],
      ["delete", "/d/sub/b.txt", "/e/sub/b.txt", null, 2],
      ["create", "/e/a.txt", null, "/d/a.txt", 1],
      ["create", "/e/sub/b.txt", null, "/d/sub/b.txt", 2],
      ["create", "/c.txt", null, null, 1],
    ],
  );
});

test("raw SQL renaming rows is logged as moves too (old and new rows paired by their place in the statement)", async () => {
  const b = await fresh();
  for (let i = 0; i < 300; i++) await b.write(`/r/f${String(i).padStart(3, "0")}.txt`, `file ${i}`);
  const since = await head(b);
  // Reversed names, so the statement meets the rows in an order unrelated to either path's.
  await admin.query(
    `UPDATE ${b.schema}.files SET path = '/s/' || reverse(substr(path, 4)) WHERE workspace = $1 AND path LIKE '/r/%'`,
    [b.workspace],
  );
  const got = await changes(b, since, 600);
  const creates = got.filter((c) => c.op === "create");
  const deletes = got.filter((c) => c.op === "delete");
  assert.is(creates.length, 300);
  assert.is(deletes.length, 300);
  const reversed = (p: string) => `/s/${[...p.slice(3)].reverse().join("")}`;
  for (const d of deletes) assert.is(d.movedTo, reversed(d.path), d.path);
  for (const c of creates) assert.is(reversed(c.movedFrom!), c.path, c.path);
  // and each moved file's text is where the log says it went
  assert.is((await b.readRaw(reversed("/r/f123.txt"))).data?.content, "file 123");
});

test("a move keeps every file's chunk set and chunks (no re-cut) and gives each a version not used before at its path", async () => {
  const b = await fresh();
  const big = Array.from({ length: 4000 }, (_, i) => `line ${i} of a file cut into several chunks`).join("\n");
  await b.write("/m/big.txt", big);
  await b.write("/n/big.txt", "was here once");
  await b.write("/n/big.txt", "and again");
  await b.delete("/n");
  const sets = `SELECT f.path, f.chunk_set, f.version, (SELECT count(*) FROM ${b.schema}.chunks c WHERE c.chunk_set = f.chunk_set)::int AS chunks,
                       (SELECT min(xmin::text) FROM ${b.schema}.chunks c WHERE c.chunk_set = f.chunk_set) AS written
                FROM ${b.schema}.files f WHERE f.workspace = $1`;
  const [before] = (await admin.query(sets, [b.workspace])).rows;
  assert.ok(before.chunks > 3, "several chunks");
  assert.is((await b.move("/m", "/n")).files, 1);
  const [after] = (await admin.query(sets, [b.workspace])).rows;
  assert.equal(
    [after.path, after.chunk_set, after.chunks, after.written],
    ["/n/big.txt", before.chunk_set, before.chunks, before.written],
  );
  assert.is(Number(after.version), 3, "the tombstone of /n/big.txt (version 2) is not reused");
  assert.is((await b.read("/n/big.txt", 3999, 1)).content, "line 3999 of a file cut into several chunks");
  assert.equal(
    (await b.grep("line 3998 of", "/")).matches?.map((m) => [m.path, m.line]),
    [["/n/big.txt", 3999]],
  );
});

test("history keeps both sides: the old path's versions readable and restorable, ending in a deletion naming the new path, whose first version names the old one", async () => {
  const b = await fresh();
  await b.write("/h/a.txt", "one");
  await b.edit("/h/a.txt", "one", "two");
  assert.is((await b.move("/h/a.txt", "/k/a.txt")).files, 1);
  const old = await b.history("/h/a.txt");
  assert.equal(
    old.versions?.map((v) => [v.version, v.op, v.movedTo ?? null, v.movedFrom ?? null]),
    [
      [1, "create", null, null],
      [2, "update", null, null],
      [2, "delete", "/k/a.txt", null],
    ],
  );
  assert.is((await b.readVersion("/h/a.txt", 1)).content, "one");
  assert.equal(
    (await b.history("/k/a.txt")).versions?.map((v) => [v.version, v.op, v.movedFrom ?? null]),
    [[1, "create", "/h/a.txt"]],
  );
  assert.is((await b.restore("/h/a.txt", 2)).error, undefined);
  assert.is((await b.readRaw("/h/a.txt")).data?.content, "two");
  assert.is((await b.readRaw("/k/a.txt")).data?.content, "two");
});

test("two moves of one directory at once: one moves it, the other finds nothing; no file is lost or doubled", async () => {
  for (let round = 0; round < 5; round++) {
    const b = await fresh();
    await b.uploadFiles(
      Array.from({ length: 200 }, (_, i): [string, Uint8Array] => [`/src/f${i}.txt`, Buffer.from(`${i}`)]),
    );
    const [x, y] = await Promise.all([b.move("/src", "/x"), b.move("/src", "/y")]);
    const results = [x, y].map((r) => r.error ?? r.files);
    assert.equal(results.sort(), [200, errors.notFound("/src")].sort(), JSON.stringify(results));
    const files = (await b.glob("**/*", "/")).files!.map((f) => f.path);
    assert.is(files.length, 200);
    assert.is(new Set(files.map((p) => p.split("/")[1])).size, 1, "all in one place");
  }
});

test("a move racing writes into its source: each write lands either before (and moves) or after (at the old path)", async () => {
  const b = await fresh();
  await b.uploadFiles(Array.from({ length: 50 }, (_, i): [string, Uint8Array] => [`/w/f${i}.txt`, Buffer.from("0")]));
  const writes = Array.from({ length: 50 }, (_, i) => b.write(`/w/f${i}.txt`, "1"));
  const moved = await b.move("/w", "/v");
  await Promise.all(writes);
  assert.is(moved.files, 50);
  // a write committed after the move re-creates the file at the old path; one before it moved
  for (let i = 0; i < 50; i++) {
    const atOld = (await b.readRaw(`/w/f${i}.txt`)).data?.content;
    const atNew = (await b.readRaw(`/v/f${i}.txt`)).data?.content;
    assert.ok(atNew === "0" || atNew === "1", `f${i} moved`);
    assert.ok((atOld === "1" && atNew === "0") || (atOld === undefined && atNew === "1"), `f${i}: ${atOld} / ${atNew}`);
  }
});

/** Waits until a move waits on a lock `writer` holds. */
async function moveWaits(writer: pg.Client): Promise<void> {
  const pid = (await writer.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
  for (let i = 0; i < 200; i++) {
    const { rows } = await admin.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity
       WHERE query LIKE '%fs_move(%' AND $1 = ANY (pg_blocking_pids(pid))`,
      [pid],
    );
    if (rows[0].n > 0) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error("the move did not come to wait on a lock");
}

test("a move whose new path a writer holds while it waits for a source row: the deadlock is broken and the move retried", async () => {
  const b = await fresh();
  await b.write("/b/x.txt", "source");
  const writer = await adminClient();
  try {
    // The writer never detects the deadlock first: the move is the one PostgreSQL fails, and the
    // backend runs it again (without that retry the call answers "deadlock detected").
    await writer.query("BEGIN");
    await writer.query("SET LOCAL deadlock_timeout = '10s'");
    await writer.query(`SELECT * FROM ${b.schema}.fs_write($1, '/a/x.txt', 'writer', NULL, 'text/plain', NULL)`, [
      b.workspace,
    ]);
    const move = b.move("/b", "/a"); // locks /b/x.txt, then waits on the writer's /a/x.txt
    await moveWaits(writer);
    const second = writer.query(
      `SELECT * FROM ${b.schema}.fs_write($1, '/b/x.txt', 'rewritten', NULL, 'text/plain', NULL)`,
      [b.workspace],
    ); // waits on the move's lock of /b/x.txt: a cycle; the move is failed after 1 s and retried
    await second;
    await writer.query("COMMIT");
    assert.equal(await move, { error: errors.targetExists("/a/x.txt") });
    assert.is((await b.readRaw("/b/x.txt")).data?.content, "rewritten");
    assert.is((await b.readRaw("/a/x.txt")).data?.content, "writer");
  } finally {
    await writer.query("ROLLBACK").catch(() => {});
    await writer.end();
  }
});

test("a file committed at a new path while the move waited for its writer: refused, or replaced with overwrite", async () => {
  for (const overwrite of [false, true]) {
    const b = await fresh();
    await b.write("/a/x.txt", "moved");
    const writer = await adminClient();
    try {
      await writer.query("BEGIN");
      await writer.query(`SELECT * FROM ${b.schema}.fs_write($1, '/b/x.txt', 'theirs', NULL, 'text/plain', NULL)`, [
        b.workspace,
      ]);
      const move = b.move("/a", "/b", { overwrite }); // sees no /b/x.txt, then waits on it
      await moveWaits(writer);
      await writer.query("COMMIT");
      const r = await move;
      if (overwrite) {
        assert.equal([r.error, r.files], [undefined, 1]);
        assert.is((await b.readRaw("/b/x.txt")).data?.content, "moved");
      } else {
        assert.equal(r, { error: errors.targetExists("/b/x.txt") });
        assert.is((await b.readRaw("/a/x.txt")).data?.content, "moved");
      }
    } finally {
      await writer.query("ROLLBACK").catch(() => {});
      await writer.end();
    }
  }
});

test("the log names a move only where the body went unchanged from one pure path to another", async () => {
  const b = await fresh();
  for (const p of ["/a.txt", "/b.txt", "/z.txt"]) await b.write(p, `body of ${p}`);
  const since = await head(b);
  // one statement: a rename that rewrites the body, and a chain (z -> b while b -> c). The primary
  // key is checked row by row: b must move before z takes its path, so the rows are visited in
  // path order (an index scan: the three share a parent); a sequential scan follows where other
  // tests' writes left each row.
  await admin.query("BEGIN");
  try {
    await admin.query("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off");
    await admin.query(
      `UPDATE ${b.schema}.files SET
         path = CASE path WHEN '/a.txt' THEN '/y.txt' WHEN '/b.txt' THEN '/c.txt' ELSE '/b.txt' END,
         content = CASE path WHEN '/a.txt' THEN 'rewritten' ELSE content END
       WHERE workspace = $1`,
      [b.workspace],
    );
    await admin.query("COMMIT");
  } catch (e) {
    await admin.query("ROLLBACK");
    throw e;
  }
  const got = await changes(b, since, 5);
  assert.equal(
    got.map((c) => [c.op, c.path, c.movedTo ?? null, c.movedFrom ?? null]),
    [
      ["delete", "/a.txt", null, null],
      ["delete", "/z.txt", null, null],
      ["update", "/b.txt", null, null],
      ["create", "/c.txt", null, null],
      ["create", "/y.txt", null, null],
    ],
  );
});

test("row-level security: a restricted role moves within its workspace only, through the backend and raw SQL", async () => {
  const mine = uniqueName("mine");
  const theirs = uniqueName("theirs");
  const own = base.withWorkspace(mine);
  const other = base.withWorkspace(theirs);
  await own.write("/a.txt", "mine");
  await other.write("/secret.txt", "theirs");
  const role = await restrictedRole(base, "da_mv", [mine]);
  try {
    assert.is((await role.backend.move("/a.txt", "/b.txt")).files, 1);
    assert.is((await role.backend.copy("/b.txt", "/c.txt")).files, 1);
    assert.match(
      (await role.backend.withWorkspace(theirs).move("/secret.txt", "/x.txt")).error!,
      /^Error: permission denied|not found/,
    );
    const { rows } = await role.raw.query(
      "SELECT * FROM fs_move($1, '/secret.txt', '/stolen.txt', false, false, 1024)",
      [theirs],
    );
    assert.equal(rows, [{ status: "not_found", files: "0", conflict: null }]);
    const copied = await role.raw.query("SELECT * FROM fs_move($1, '/secret.txt', '/c2.txt', false, true, 1024)", [
      theirs,
    ]);
    assert.is(copied.rows[0].status, "not_found");
    assert.is((await other.readRaw("/secret.txt")).data?.content, "theirs");
    assert.equal((await own.glob("**/*", "/")).files?.map((f) => f.path).sort(), ["/b.txt", "/c.txt"]);
    // nor can a raw UPDATE carry a row into a workspace the role was not granted
    const refused = await role.raw
      .query("UPDATE files SET workspace = $1 WHERE workspace = $2 AND path = '/b.txt'", [theirs, mine])
      .then(
        () => null,
        (e: Error) => e.message,
      );
    assert.match(refused ?? "updated", /row-level security/);
  } finally {
    await role.end();
  }
});

test.run();
