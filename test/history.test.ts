/**
 * File history and checkpoints on PostgreSQL beyond the conformance suite (conformance/history.ts,
 * run by history.conformance.test.ts): every version readable byte for byte however it is stored
 * (live, reverse delta, blob), the change feed, retention that never breaks a checkpoint, content
 * stored once, history off, raw SQL (migrations/0008_file_history.sql). Runs in a schema of its own
 * (it changes the schema's history settings).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { randomBytes } from "node:crypto";
import { PostgresBackend } from "../src/index.js";
import { adminClient, databaseUrl, uniqueName } from "./helpers/db.js";
import { rng } from "./helpers/random.js";
import { privateSchema } from "./reliability/private-schema.js";
import { rejects, textOf } from "./conformance/history.js";

const { schema: SCHEMA, drop } = await privateSchema("history");
const url = await databaseUrl();
const root = new PostgresBackend({ connectionString: url, schema: SCHEMA, workspace: "root", maxPoolSize: 4 });
await root.initialize();
const admin = await adminClient();
const fresh = () => root.withWorkspace(uniqueName("ws"));

test.after(async () => {
  await root.close();
  await admin.end();
  await drop();
});

test("readVersion: every one of 400 random edits, byte for byte, across deltas, keyframes and 64 KiB blocks", async () => {
  const b = fresh();
  const rnd = rng(13).next;
  // ~200 KB of lines, so changes land inside, at the edges of and across 64 KiB compare blocks.
  let lines = Array.from({ length: 4000 }, (_, i) => `line ${i} ${"é✓".repeat(i % 7)} ${"x".repeat(i % 40)}`);
  const versions: string[] = [];
  const put = async (text: string) => {
    const r = await b.write("/big.txt", text);
    assert.ok(!r.error, r.error);
    versions[r.version! - 1] = text;
  };
  await put(lines.join("\n"));
  for (let i = 0; i < 400; i++) {
    const at = Math.floor(rnd() * lines.length);
    const kind = i % 5;
    if (kind === 0) lines[at] = `edited ${i}`;
    else if (kind === 1) lines.splice(at, 0, `inserted ${i}`, `and ${i}`);
    else if (kind === 2) lines.splice(at, Math.min(3, lines.length - at));
    else if (kind === 3) lines = [`head ${i}`, ...lines];
    else lines.push(`tail ${i}`);
    await put(i % 50 === 49 ? `${lines.join("\r\n")}\r\n` : lines.join("\n"));
  }
  for (let v = 1; v <= versions.length; v += v < 20 ? 1 : 7) {
    assert.is(await textOf(b, "/big.txt", v), versions[v - 1], `version ${v}`);
  }
  const stored = await admin.query(
    `SELECT count(*) FILTER (WHERE delta_middle IS NOT NULL) AS deltas, count(blob) AS blobs, max(depth) AS depth
     FROM ${SCHEMA}.file_versions WHERE workspace = $1`,
    [b.workspace],
  );
  const { deltas, blobs, depth } = stored.rows[0];
  assert.ok(Number(deltas) > 300, `most versions are deltas (${deltas} deltas, ${blobs} blobs)`);
  assert.ok(Number(blobs) >= 1 && Number(depth) <= 200, `keyframes bound the chains (${blobs} blobs, depth ${depth})`);
});

test("restore and rewind on PostgreSQL: in the change feed, new version numbers, an ifVersion checked", async () => {
  const b = fresh();
  await b.write("/r.txt", "first");
  await b.write("/r.txt", "second");
  assert.is((await b.restore("/r.txt", 1)).version, 3);
  assert.is((await b.restore("/r.txt", 2, { ifVersion: 2 })).error?.includes("version"), true);
  await b.delete("/r.txt");
  assert.is((await b.restore("/r.txt", 2)).version, 4, "above the deleted version 3: never reused");
  const ops = (
    await admin.query(`SELECT op, version FROM ${SCHEMA}.changes WHERE workspace = $1 ORDER BY id`, [b.workspace])
  ).rows;
  assert.equal(
    ops.map((o) => `${o.op}:${o.version}`),
    ["create:1", "update:2", "update:3", "delete:3", "create:4"],
  );
  const cp = await b.checkpoint();
  await b.write("/r.txt", "third");
  await b.write("/s.txt", "s");
  const done = await b.rewind(cp.id);
  assert.equal(
    done.changes.map((c) => [c.path, c.written]),
    [
      ["/r.txt", 6],
      ["/s.txt", null],
    ],
  );
});
test("rewind: watchers see the rewind as ordinary changes", async () => {
  const b = fresh();
  await b.write("/f.txt", "v1");
  const cp = await b.checkpoint();
  await b.write("/f.txt", "v2");
  await b.write("/g.txt", "g");
  const sub = await b.watch({ since: (await b.checkpoints())[0].changeId });
  await b.rewind(cp.id);
  const seen: string[] = [];
  for await (const c of sub) {
    seen.push(`${c.op} ${c.path}`);
    if (seen.length === 4) break;
  }
  await sub.close();
  assert.equal(seen, ["update /f.txt", "create /g.txt", "update /f.txt", "delete /g.txt"]);
});

test("retention: the newest N are kept, a checkpoint keeps what it needs, rewind still works", async () => {
  const b = fresh();
  await b.setHistory({ keepVersions: 3 });
  for (let i = 1; i <= 5; i++) await b.write("/k.txt", `v${i} ${"pad ".repeat(50)}`);
  const cp = await b.checkpoint();
  for (let i = 6; i <= 12; i++) await b.write("/k.txt", `v${i} ${"pad ".repeat(50)}`);
  const pruned = await b.pruneHistory();
  assert.ok(pruned.versions >= 6, JSON.stringify(pruned));
  const kept = (await b.history("/k.txt")).versions!.map((v) => v.version);
  assert.equal(kept, [5, 10, 11, 12], "the newest 3, and version 5 for the checkpoint");
  assert.match(await textOf(b, "/k.txt", 5), /^v5 /);
  // The change log is trimmed to one change per workspace, except after a checkpoint: rewind and
  // diff read from it which paths changed since.
  await b.pruneChanges({ keepPerWorkspace: 1 });
  const log = await admin.query(`SELECT count(*)::int AS n FROM ${SCHEMA}.changes WHERE workspace = $1 AND id > $2`, [
    b.workspace,
    cp.changeId,
  ]);
  assert.is(log.rows[0].n, 7, "the 7 changes after the checkpoint are kept");
  assert.equal(
    (await b.diff(cp.id)).map((c) => c.path),
    ["/k.txt"],
  );
  await b.rewind(cp.id);
  assert.match((await b.readRaw("/k.txt")).data?.content as string, /^v5 /);
  assert.ok(await b.deleteCheckpoint(cp.id));
  await b.pruneHistory();
  assert.equal((await b.history("/k.txt")).versions!.length, 3);
});

test("content is stored once: identical deleted files across workspaces share one blob", async () => {
  const body = `shared ${randomBytes(8).toString("hex")}\n`.repeat(200);
  const [x, y] = [fresh(), fresh()];
  for (const b of [x, y]) {
    await b.write("/same.txt", body);
    await b.delete("/same.txt");
  }
  const { rows } = await admin.query(
    `SELECT count(DISTINCT v.blob) AS blobs, count(*) AS versions FROM ${SCHEMA}.file_versions v
     WHERE v.workspace = ANY($1) AND v.blob IS NOT NULL`,
    [[x.workspace, y.workspace]],
  );
  assert.equal(rows[0], { blobs: "1", versions: "2" });
});

test("history off: nothing recorded, no checkpoints; on again: older versions become the baseline", async () => {
  const b = fresh();
  await b.write("/o.txt", "kept?");
  await b.checkpoint();
  const dropped = await b.setHistory({ enabled: false });
  assert.equal([dropped.versions > 0, dropped.checkpoints], [true, 1]);
  assert.equal(await b.checkpoints(), []);
  await b.write("/o.txt", "while off");
  assert.ok((await b.history("/o.txt")).error);
  await rejects(() => b.checkpoint(), /history is off for workspace/);
  await b.setHistory({ enabled: true });
  const cp = await b.checkpoint();
  await b.write("/o.txt", "after");
  const h = (await b.history("/o.txt")).versions!;
  assert.equal(
    h.map((v) => [v.version, v.changeId === null]),
    [
      [2, true],
      [3, false],
    ],
  );
  assert.is(await textOf(b, "/o.txt", 2), "while off");
  await b.rewind(cp.id);
  assert.is((await b.readRaw("/o.txt")).data?.content, "while off");
  assert.equal(await b.historySettings(), { enabled: true, keepVersions: 100, keepDays: null });
});

test("tags: who wrote each version (config.tag, withTag), kept in history", async () => {
  const b = fresh();
  await b.write("/t.md", "by nobody");
  await b.withTag("agent:researcher").write("/t.md", "by the researcher");
  await b.withTag("agent:writer").edit("/t.md", "researcher", "writer");
  await b.withTag("agent:writer").delete("/t.md");
  const tagged = new PostgresBackend({ connectionString: url, schema: SCHEMA, workspace: b.workspace, tag: "cli" });
  await tagged.restore("/t.md", 2);
  await tagged.close();
  assert.equal(
    (await b.history("/t.md")).versions!.map((v) => `${v.op}:${v.version}:${v.tag}`),
    ["create:1:null", "update:2:agent:researcher", "update:3:agent:writer", "delete:3:agent:writer", "create:4:cli"],
  );
  assert.throws(() => b.withTag("a\u0000b"), /tag must be a string of at most 200 characters/);
  assert.throws(
    () => new PostgresBackend({ connectionString: url, schema: SCHEMA, tag: "x".repeat(201) }),
    /tag must be a string of at most 200 characters/,
  );
});

test("raw SQL cannot rewrite a version or move it down: it gets the next version, and history stays exact", async () => {
  const b = fresh();
  const q = (sql: string, ...params: unknown[]) =>
    admin.query(sql.replaceAll("F", `${SCHEMA}.files`), [b.workspace, "/raw.txt", ...params]);
  await b.write("/raw.txt", "alpha beta gamma delta");
  await b.write("/raw.txt", "alpha beta GAMMA delta");
  await q("UPDATE F SET content = $3 WHERE workspace = $1 AND path = $2", "completely other text!!");
  await q("UPDATE F SET version = 1 WHERE workspace = $1 AND path = $2");
  await q("UPDATE F SET version = 1, content = $3 WHERE workspace = $1 AND path = $2", "lowered");
  assert.equal(
    (await b.history("/raw.txt")).versions!.map((v) => v.version),
    [1, 2, 3, 4],
    "each change got the next version",
  );
  assert.equal(
    [await textOf(b, "/raw.txt", 1), await textOf(b, "/raw.txt", 2), await textOf(b, "/raw.txt", 3)],
    ["alpha beta gamma delta", "alpha beta GAMMA delta", "completely other text!!"],
  );
  assert.is((await b.stat("/raw.txt")).data?.version, 4);
});

test("raw-SQL renames in one UPDATE statement: the old names are deleted with their bytes kept, the new ones created, an updated row gets a delta", async () => {
  const b = fresh();
  await b.write("/a.txt", "alpha text\n");
  await b.write("/b.txt", "bravo text\n");
  await b.write("/c.txt", "charlie text one\n");
  await admin.query(
    `UPDATE ${SCHEMA}.files SET path = CASE path WHEN '/a.txt' THEN '/a2.txt' WHEN '/b.txt' THEN '/b2.txt' ELSE path END,
                                content = CASE path WHEN '/c.txt' THEN 'charlie text two\n' ELSE content END
     WHERE workspace = $1 AND path IN ('/a.txt', '/b.txt', '/c.txt')`,
    [b.workspace],
  );
  const ops = async (path: string) => (await b.history(path)).versions?.map((v) => `${v.op}:${v.version}`);
  assert.equal(await ops("/a.txt"), ["create:1", "delete:1"]);
  assert.equal(await ops("/a2.txt"), ["create:1"]);
  assert.equal(await ops("/b.txt"), ["create:1", "delete:1"]);
  assert.equal(await ops("/c.txt"), ["create:1", "update:2"]);
  assert.is(await textOf(b, "/a.txt", 1), "alpha text\n");
  assert.is(await textOf(b, "/b.txt", 1), "bravo text\n");
  assert.is(await textOf(b, "/c.txt", 1), "charlie text one\n");
  const kept = (
    await admin.query(
      `SELECT path, blob IS NOT NULL AS whole, delta_middle IS NOT NULL AS delta FROM ${SCHEMA}.file_versions
       WHERE workspace = $1 AND version = 1 AND NOT deleted AND path IN ('/a.txt', '/c.txt') ORDER BY path`,
      [b.workspace],
    )
  ).rows;
  assert.equal(kept, [
    { path: "/a.txt", whole: true, delta: false },
    { path: "/c.txt", whole: false, delta: true },
  ]);
  assert.is((await b.restore("/a.txt", 1)).error, undefined);
  assert.is((await b.read("/a.txt")).content, "alpha text\n");
});

test("a raw-SQL rename chain in one UPDATE (b -> c while a -> b): b's history says update, as its change log does, and every version reads back (0019 pairs rows by key)", async () => {
  const b = fresh();
  await b.write("/a.txt", "text written at /a.txt\n");
  await b.write("/b.txt", "text written at /b.txt\n");
  // The primary key is checked row by row, so the chain works only if the UPDATE meets the file
  // being renamed away first: a sequential scan (forced below) meets rows in heap order, which
  // is not always the order they were written in. Name the roles by that order.
  const heapOrder = (
    await admin.query(`SELECT path FROM ${SCHEMA}.files WHERE workspace = $1 ORDER BY ctid`, [b.workspace])
  ).rows.map((r) => r.path as string);
  const [moved, renamed] = heapOrder; // moved -> /c.txt, then renamed -> moved's old path
  const text = (path: string) => `text written at ${path}\n`;
  const logged = async () =>
    (
      await admin.query(
        `SELECT op || ':' || path || ':' || version AS c FROM ${SCHEMA}.changes WHERE workspace = $1 ORDER BY 1`,
        [b.workspace],
      )
    ).rows.map((r) => r.c);
  const before = await logged();
  await admin.query("BEGIN");
  await admin.query(
    "SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL max_parallel_workers_per_gather = 0",
  );
  await admin.query(
    `UPDATE ${SCHEMA}.files SET path = CASE path WHEN $2 THEN '/c.txt' ELSE $2 END
     WHERE workspace = $1 AND path IN ('/a.txt', '/b.txt')`,
    [b.workspace, moved],
  );
  await admin.query("COMMIT");
  const ops = async (path: string) => (await b.history(path)).versions?.map((v) => `${v.op}:${v.version}`);
  assert.equal(await ops(renamed), ["create:1", "delete:1"]);
  assert.equal(await ops(moved), ["create:1", "update:2"]);
  assert.equal(await ops("/c.txt"), ["create:1"]);
  assert.equal(
    (await logged()).filter((c) => !before.includes(c)),
    ["create:/c.txt:1", `delete:${renamed}:1`, `update:${moved}:2`],
  );
  // Every version row is stamped with the change that made it.
  const unstamped = await admin.query(
    `SELECT path, version, deleted FROM ${SCHEMA}.file_versions WHERE workspace = $1 AND change_id IS NULL`,
    [b.workspace],
  );
  assert.equal(unstamped.rows, []);
  assert.is(await textOf(b, moved, 1), text(moved));
  assert.is(await textOf(b, moved, 2), text(renamed));
  assert.is(await textOf(b, renamed, 1), text(renamed));
  assert.is((await b.read("/c.txt")).content, text(moved));
  assert.is((await b.restore(moved, 1)).error, undefined);
  assert.is((await b.read(moved)).content, text(moved));
});

test("one raw statement that deletes a file and updates another of its chunk set (WITH) is refused: a version is never kept without its bytes (0019, found by review)", async () => {
  const b = fresh();
  const ws = b.workspace;
  await admin.query(
    `INSERT INTO ${SCHEMA}.files (workspace, path, content, mime_type, size, line_count)
     VALUES ($1, '/x.txt', 'original text of x and y', 'text/plain', 24, 1)`,
    [ws],
  );
  await admin.query(
    `INSERT INTO ${SCHEMA}.files (workspace, path, content, bytes, mime_type, size, line_count, chunk_set, hash)
     SELECT workspace, '/y.txt', NULL, NULL, mime_type, size, line_count, chunk_set, hash FROM ${SCHEMA}.files
     WHERE workspace = $1 AND path = '/x.txt'`,
    [ws],
  );
  // The DELETE's statement triggers fire before the UPDATE's: the shared set is collected first.
  const refused = await admin
    .query(
      `WITH u AS (UPDATE ${SCHEMA}.files SET content = 'brand new text of y' WHERE workspace = $1 AND path = '/y.txt' RETURNING 1)
       DELETE FROM ${SCHEMA}.files WHERE workspace = $1 AND path = '/x.txt' AND EXISTS (SELECT 1 FROM u)`,
      [ws],
    )
    .then(
      () => null,
      (e) => e,
    );
  assert.is(refused?.code, "DA010", String(refused?.message));
  assert.match(String(refused.message), /cannot keep version 1 of "\/y.txt"/);
  assert.match(String((await b.read("/x.txt")).content), /original text of x and y/, "nothing changed");
  assert.is(await textOf(b, "/y.txt", 1), "original text of x and y");
  // The same change in two statements keeps everything.
  await admin.query(
    `UPDATE ${SCHEMA}.files SET content = 'brand new text of y' WHERE workspace = $1 AND path = '/y.txt'`,
    [ws],
  );
  await admin.query(`DELETE FROM ${SCHEMA}.files WHERE workspace = $1 AND path = '/x.txt'`, [ws]);
  assert.is(await textOf(b, "/y.txt", 1), "original text of x and y");
  assert.is(await textOf(b, "/x.txt", 1), "original text of x and y");
});

test("a rewind holds off prunes until it is done, and a version removed under it anyway fails it with nothing changed (0020)", async () => {
  // The rewind deletes /a.txt first (paths in order, a run per action): a row lock on it holds
  // the rewind there, after it compared and before it writes /b.txt's version 1 back.
  const setup = async () => {
    const b = fresh();
    // One version kept (set_history waits for a rewind too: set before it starts).
    await admin.query(`SELECT * FROM ${SCHEMA}.set_history($1, NULL, 1, NULL)`, [b.workspace]);
    await b.write("/b.txt", "one\n");
    const cp = await b.checkpoint();
    await b.write("/b.txt", "two\n");
    await b.write("/a.txt", "created after the checkpoint\n");
    const locker = await adminClient();
    await locker.query("BEGIN");
    await locker.query(`SELECT 1 FROM ${SCHEMA}.files WHERE workspace = $1 AND path = '/a.txt' FOR UPDATE`, [
      b.workspace,
    ]);
    const rewinding = b.rewind(cp.id).then(
      (r) => r,
      (e: Error) => e,
    );
    await new Promise((r) => setTimeout(r, 300));
    return { b, cp, locker, rewinding };
  };
  // A prune after the checkpoint went (version 1 of /b.txt no longer needed) waits for the rewind.
  {
    const { b, cp, locker, rewinding } = await setup();
    assert.ok(await b.deleteCheckpoint(cp.id));
    let pruned = false;
    const pruning = admin.query(`SELECT * FROM ${SCHEMA}.prune_history($1)`, [b.workspace]).then(() => {
      pruned = true;
    });
    await new Promise((r) => setTimeout(r, 300));
    assert.is(pruned, false, "the prune waits for the rewind");
    await locker.query("COMMIT");
    await locker.end();
    const done = await rewinding;
    assert.not.instance(done, Error, String(done));
    await pruning;
    assert.is((await b.readRaw("/b.txt")).data?.content, "one\n");
    assert.match(String((await b.readRaw("/a.txt")).error), /not found/);
  }
  // A version row removed by other means (the owner's raw SQL) while the rewind waits: it fails.
  {
    const { b, locker, rewinding } = await setup();
    await admin.query(
      `DELETE FROM ${SCHEMA}.file_versions WHERE workspace = $1 AND path = '/b.txt' AND version = 1 AND NOT deleted`,
      [b.workspace],
    );
    await locker.query("COMMIT");
    await locker.end();
    const failed = await rewinding;
    assert.match(String((failed as Error)?.message), /^Error: version 1 of '\/b\.txt' is not kept$/);
    assert.is((await b.readRaw("/b.txt")).data?.content, "two\n");
    assert.is(
      (await b.readRaw("/a.txt")).data?.content,
      "created after the checkpoint\n",
      "the deletion was undone too",
    );
  }
});

test("a fork at a checkpoint holds off prunes until it is done, and copies the state at the checkpoint (0019)", async () => {
  const b = fresh();
  await admin.query(`SELECT * FROM ${SCHEMA}.set_history($1, NULL, 1, NULL)`, [b.workspace]);
  await b.write("/b.txt", "one\n");
  const cp = await b.checkpoint();
  await b.write("/b.txt", "two\n");
  // The fork locks the source's rows after it read the checkpoint's position: a row lock on
  // /b.txt holds it there, before it reads version 1 of /b.txt back.
  const locker = await adminClient();
  await locker.query("BEGIN");
  await locker.query(`SELECT 1 FROM ${SCHEMA}.files WHERE workspace = $1 AND path = '/b.txt' FOR UPDATE`, [
    b.workspace,
  ]);
  const target = uniqueName("fork-at");
  const forking = b.fork(target, { at: cp.id }).then(
    (r) => r,
    (e: Error) => e,
  );
  try {
    await new Promise((r) => setTimeout(r, 300));
    // Once the checkpoint is gone, version 1 is beyond retention: a prune would remove it.
    assert.ok(await b.deleteCheckpoint(cp.id));
    let pruned = false;
    const pruning = admin.query(`SELECT * FROM ${SCHEMA}.prune_history($1)`, [b.workspace]).then(() => {
      pruned = true;
    });
    await new Promise((r) => setTimeout(r, 300));
    assert.is(pruned, false, "the prune waits for the fork");
    await locker.query("COMMIT");
    const done = await forking;
    assert.not.instance(done, Error, String(done));
    await pruning;
  } finally {
    await locker.end(); // (a failure above must not leave the fork and the file's drop waiting)
    await forking;
  }
  assert.is((await root.withWorkspace(target).readRaw("/b.txt")).data?.content, "one\n");
  assert.is((await b.readRaw("/b.txt")).data?.content, "two\n");
});

test("raw SQL INSERT may name a version above the path's last one, never one already used", async () => {
  const b = fresh();
  const insert = (version: number) =>
    admin.query(
      `INSERT INTO ${SCHEMA}.files (workspace, path, content, mime_type, size, line_count, version)
       VALUES ($1, '/n.txt', 'x', 'text/plain', 1, 1, $2) RETURNING version`,
      [b.workspace, version],
    );
  await b.write("/n.txt", "one\n");
  await b.write("/n.txt", "two\n");
  await b.delete("/n.txt");
  // Versions 1 and 2 were used (and deleted): a named 1 gets the next number instead.
  assert.equal((await insert(1)).rows, [{ version: "3" }]);
  await b.delete("/n.txt");
  assert.equal((await insert(50)).rows, [{ version: "50" }]);
  assert.equal(
    (await b.history("/n.txt")).versions?.filter((v) => v.op !== "delete").map((v) => v.version),
    [1, 2, 3, 50],
  );
});

test("SET CONSTRAINTS ALL IMMEDIATE (raw SQL): every version still carries its change, and rewind and diff see it", async () => {
  const b = fresh();
  await b.write("/keep.txt", "one\n");
  await b.write("/gone.txt", "bye\n");
  const cp = await b.checkpoint();
  // The change log's triggers are deferred to commit; any role may make them fire at the end of
  // each statement instead, before the statement triggers that record history have run.
  const files = `${SCHEMA}.files`;
  await admin.query("BEGIN");
  try {
    await admin.query("SET CONSTRAINTS ALL IMMEDIATE");
    await admin.query(
      `INSERT INTO ${files} (workspace, path, content, mime_type, size, line_count) VALUES ($1, '/new.txt', 'new', 'text/plain', 3, 1)`,
      [b.workspace],
    );
    await admin.query(
      `UPDATE ${files} SET content = 'two', size = 3, version = version + 1 WHERE workspace = $1 AND path = '/keep.txt'`,
      [b.workspace],
    );
    await admin.query(`DELETE FROM ${files} WHERE workspace = $1 AND path = '/gone.txt'`, [b.workspace]);
    await admin.query("COMMIT");
  } catch (e) {
    await admin.query("ROLLBACK");
    throw e;
  }
  for (const path of ["/new.txt", "/keep.txt", "/gone.txt"]) {
    const versions = (await b.history(path)).versions!;
    assert.ok(
      versions.every((v) => v.changeId !== null),
      `${path}: ${JSON.stringify(versions)}`,
    );
  }
  assert.equal(
    (await b.diff(cp.id)).map((c) => `${c.op} ${c.path}`),
    ["deleted /gone.txt", "updated /keep.txt", "created /new.txt"],
  );
  await b.rewind(cp.id);
  assert.equal((await b.glob("*.txt")).files?.map((f) => f.path).sort(), ["/gone.txt", "/keep.txt"]);
  assert.is(await textOf(b, "/keep.txt", (await b.stat("/keep.txt")).data!.version), "one\n");
});

test("fork with history at a checkpoint: versions up to it, numbers continuing above them, deleted paths kept taken", async () => {
  const b = fresh();
  await b.write("/a.txt", "a1\n");
  await b.write("/a.txt", "a2\n");
  await b.write("/d.txt", "d1\n");
  await b.delete("/d.txt");
  const cp = await b.checkpoint();
  await b.write("/a.txt", "a3\n");
  await b.write("/n.txt", "new\n");
  const name = `${b.workspace}-h`;
  const r = await b.fork(name, { at: cp.id, history: true });
  assert.equal([r.files, r.at], [1, cp.id]);
  const f = root.withWorkspace(name);
  assert.equal(
    (await f.history("/a.txt")).versions?.map((v) => v.version),
    [1, 2],
  );
  assert.is((await f.stat("/a.txt")).data?.version, 2);
  assert.equal([await textOf(f, "/a.txt", 1), await textOf(f, "/a.txt", 2)], ["a1\n", "a2\n"]);
  assert.ok((await f.history("/n.txt")).error, "created after the checkpoint: no history in the fork");
  assert.equal(
    (await f.history("/d.txt")).versions?.map((v) => [v.version, v.op]),
    (await b.history("/d.txt")).versions?.map((v) => [v.version, v.op]),
  );
  // New versions in the fork go on from there; a deleted path's number is not reused.
  await f.write("/a.txt", "fork a\n");
  await f.write("/d.txt", "again\n");
  assert.equal([(await f.stat("/a.txt")).data?.version, (await f.stat("/d.txt")).data?.version], [3, 2]);
  assert.is(await textOf(f, "/a.txt", 2), "a2\n");
  assert.is(await textOf(b, "/a.txt", 3), "a3\n");
  // Rewind and diff in the fork work from its own checkpoints.
  const mine = await f.checkpoint();
  await f.write("/a.txt", "later\n");
  assert.equal(
    (await f.diff(mine.id)).map((c) => `${c.op} ${c.path}`),
    ["updated /a.txt"],
  );
  await f.rewind(mine.id);
  assert.is((await f.read("/a.txt")).content, "fork a\n");
});

test("fork with history: history off in the target is one clear error, and nothing is written", async () => {
  const b = fresh();
  await b.write("/x.txt", "x\n");
  const name = `${b.workspace}-off`;
  await b.withWorkspace(name).setHistory({ enabled: false });
  await rejects(() => b.fork(name, { history: true }), /history is off there/);
  assert.equal((await b.withWorkspace(name).glob("**")).files, []);
  // A workspace with a checkpoint of its own (taken while empty) is not new either: a rewind to
  // that checkpoint would read copied versions as its own.
  const marked = b.withWorkspace(`${b.workspace}-marked`);
  await marked.checkpoint();
  await rejects(() => b.fork(marked.workspace, { history: true }), /has history of its own/);
  assert.equal((await marked.glob("**")).files, []);
  // 0010's three-argument call still works (history defaults to off).
  const { rows } = await admin.query(`SELECT files, bytes FROM ${SCHEMA}.fs_fork($1, $2, NULL)`, [
    b.workspace,
    `${b.workspace}-three`,
  ]);
  assert.equal(rows, [{ files: "1", bytes: "2" }]);
});

test("gaps left by raw SQL version jumps: pruning keeps every kept version readable", async () => {
  const b = fresh();
  await b.setHistory({ keepVersions: 1 });
  await b.write("/gap.txt", "version one: the quick brown fox");
  const cp = await b.checkpoint();
  await admin.query(`UPDATE ${SCHEMA}.files SET version = 10 WHERE workspace = $1 AND path = '/gap.txt'`, [
    b.workspace,
  ]);
  await b.write("/gap.txt", "version eleven: the lazy dog");
  await b.pruneHistory();
  assert.equal(
    (await b.history("/gap.txt")).versions!.map((v) => v.version),
    [1, 11],
    "10 went, 1 stays for the checkpoint",
  );
  assert.is(await textOf(b, "/gap.txt", 1), "version one: the quick brown fox");
  await b.rewind(cp.id);
  assert.is((await b.readRaw("/gap.txt")).data?.content, "version one: the quick brown fox");
});

test("a checkpoint of a workspace whose change log was pruned away still marks now", async () => {
  const b = fresh();
  await b.write("/keep.txt", "kept");
  await root.pruneChanges({ olderThanMs: 0 });
  const cp = await b.checkpoint();
  assert.ok(cp.changeId > 0, `checkpoint at ${cp.changeId}`);
  await b.write("/keep.txt", "changed");
  assert.equal(
    (await b.rewind(cp.id, { dryRun: true })).changes.map((c) => [c.path, c.op]),
    [["/keep.txt", "updated"]],
  );
  assert.equal(
    (await b.diff(cp.id)).map((c) => [c.path, c.op]),
    [["/keep.txt", "updated"]],
  );
});

test("how a version is stored depends on its own path only, never on what other workspaces hold", async () => {
  const [x, y] = [fresh(), fresh()];
  const secret = "API_KEY=1234\n";
  await x.write("/k.env", secret);
  await x.delete("/k.env"); // x's bytes are now a blob
  await y.write("/k.env", secret);
  await y.write("/k.env", "API_KEY=12345\n");
  const { rows } = await admin.query(
    `SELECT blob IS NOT NULL AS whole FROM ${SCHEMA}.file_versions WHERE workspace = $1 AND path = '/k.env' AND version = 1`,
    [y.workspace],
  );
  assert.equal(rows, [{ whole: false }], "a delta, as if no other workspace held these bytes");
});

test("damaged history is an error, never other bytes: every readVersion is checked against its hash", async () => {
  const b = fresh();
  await b.write("/d.txt", "first version\n");
  await b.write("/d.txt", "second version\n");
  await admin.query(
    `UPDATE ${SCHEMA}.file_versions SET delta_middle = 'tampered' WHERE workspace = $1 AND path = '/d.txt' AND version = 1`,
    [b.workspace],
  );
  assert.match((await b.readVersion("/d.txt", 1)).error!, /damaged|does not rebuild to its recorded hash/);
  assert.match((await b.restore("/d.txt", 1)).error!, /does not rebuild to its recorded hash/);
  assert.is((await b.readRaw("/d.txt")).data?.content, "second version\n", "nothing was written");
});

test("rewind is all or nothing: a file/directory clash at commit undoes every path it wrote", async () => {
  const b = fresh();
  await b.write("/d/f.txt", "in a directory");
  await b.write("/other.txt", "before");
  const cp = await b.checkpoint();
  await b.delete("/d");
  await b.write("/d", "now a file");
  await b.write("/other.txt", "after");
  // Only /d/f.txt and /other.txt: /d/f.txt comes back below the file /d, refused at commit.
  await rejects(() => b.rewind(cp.id, { paths: ["/d/f.txt", "/other.txt"] }), /"\/d" is a file, not a directory/);
  assert.is((await b.readRaw("/other.txt")).data?.content, "after", "the other path was not rewound either");
  assert.ok((await b.readRaw("/d/f.txt")).error);
  assert.equal((await b.checkpoints()).length, 1, "nor was an undo checkpoint left");
});

test("bad input to the retention settings: one clear error, nothing changed", async () => {
  const b = fresh();
  await rejects(() => b.setHistory({ keepDays: 0 }), /keepDays must be a positive integer/);
  await rejects(() => b.setHistory({ keepVersions: 1.5 }), /keepVersions must be a positive integer/);
  assert.equal(await b.historySettings(), await root.historySettings());
});

test.run();
