/**
 * A fork into a new workspace starts that workspace's change log and history at the fork
 * (migrations/0017_fork_log_starts_at_fork.sql): a horizon instead of a 'create' per copied file,
 * and the current version of an unchanged file read off the file instead of a version row. What
 * must hold: watchers from before the fork are told to resync, watchers after it miss nothing,
 * history, readVersion, restore, diff and rewind in the fork answer as if every file had been
 * created there, a target that is not new is logged file by file as before, and a restricted
 * role can start a log only in a new workspace it is granted, for its own transaction.
 *
 * Runs in a schema of its own; the role gets a unique name and is dropped at the end.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { PostgresBackend, ResyncRequiredError, type Change } from "../../src/index.js";
import { adminClient, databaseUrl } from "../helpers/db.js";
import { rejects } from "../conformance/history.js";
import { privateSchema } from "./private-schema.js";
import { restrictedRole } from "./restricted-role.js";

const { schema: S, drop } = await privateSchema("forklog");
const url = await databaseUrl();
const admin = await adminClient();

const owner = new PostgresBackend({ connectionString: url, schema: S, workspace: "src", maxPoolSize: 4 });
await owner.initialize();
const role = await restrictedRole(owner, "da_forklog", ["r-src", "r-new", "r-used", "r-rule"]);
const { backend: restricted, raw } = role;

test.after(async () => {
  await role.end();
  await owner.close();
  await drop();
  await admin.end();
});

const rows = async (sql: string, params: unknown[] = []) => (await admin.query(sql, params)).rows;
const count = async (table: string, workspace: string) =>
  Number((await rows(`SELECT count(*) AS n FROM ${S}.${table} WHERE workspace = $1`, [workspace]))[0].n);
const horizon = async (workspace: string) =>
  (await rows(`SELECT pruned_to FROM ${S}.changes_horizon WHERE workspace = $1`, [workspace]))[0]?.pruned_to as
    | string
    | undefined;
const head = async () => Number((await rows(`SELECT ${S}.fs_changes_head() AS h`))[0].h);

async function source(name: string): Promise<PostgresBackend> {
  const b = owner.withWorkspace(name);
  await b.write("/a.txt", "alpha\n");
  await b.write("/a.txt", "alpha 2\n");
  await b.write("/docs/b.md", "bravo\n");
  await b.uploadFiles([["/bin/c.bin", new Uint8Array([0, 1, 2, 255])]]);
  return b;
}

async function next(sub: AsyncIterator<Change>, ms = 5_000): Promise<Change> {
  const timer = new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no change arrived")), ms));
  const r = await Promise.race([sub.next(), timer]);
  return r.value as Change;
}

test("a fork writes no change and no version row per file; its log starts at a fresh horizon", async () => {
  await source("h-src");
  const before = await head();
  const r = await owner.withWorkspace("h-src").fork("h-dst");
  assert.is(r.files, 3);
  assert.is(await count("changes", "h-dst"), 0, "no 'create' per copied file");
  assert.is(await count("file_versions", "h-dst"), 0, "no first version per copied file");
  const h = Number(await horizon("h-dst"));
  assert.ok(h > before, `the horizon (${h}) is above every id a watcher could hold before (${before})`);
  await rejects(
    () => admin.query(`SELECT * FROM ${S}.fs_changes('h-dst', $1, 10)`, [before]),
    /change cursor \d+ is older than the retained log/,
  );
  // The next change of the fork is logged after the horizon, and a checkpoint sits at it.
  const cp = await owner.withWorkspace("h-dst").checkpoint();
  assert.is(cp.changeId, h);
  await owner.withWorkspace("h-dst").write("/a.txt", "changed in the fork\n");
  const logged = await rows(`SELECT id, path, op FROM ${S}.fs_changes('h-dst', $1, 10)`, [h]);
  assert.equal(
    logged.map((c) => [c.path, c.op]),
    [["/a.txt", "update"]],
  );
  assert.ok(Number(logged[0].id) > h);
});

test("a watcher of the target from before the fork is told to resync; one started after it misses nothing", async () => {
  await source("w-src");
  const target = owner.withWorkspace("w-dst");
  const errors: Error[] = [];
  const early = await target.watch({ onError: (e) => errors.push(e), coalesceMs: 0 });
  await owner.withWorkspace("w-src").fork("w-dst");
  try {
    for await (const _ of early) assert.unreachable("the fork's files come as no change");
    assert.unreachable("the iterator must throw");
  } catch (e) {
    assert.instance(e, ResyncRequiredError);
  }
  assert.is(errors.length, 1);

  const late = await target.watch({ coalesceMs: 0 });
  try {
    await target.write("/new.txt", "after the fork\n");
    const c = await next(late[Symbol.asyncIterator]());
    assert.equal([c.path, c.op], ["/new.txt", "create"]);
  } finally {
    await late.close();
  }
});

test("history, readVersion, restore, diff and rewind in a fork: every file as created there", async () => {
  await source("v-src");
  await owner.withWorkspace("v-src").fork("v-dst");
  const f = owner.withWorkspace("v-dst");
  const h = (await f.history("/a.txt")).versions!;
  assert.equal(
    h.map((v) => [v.version, v.op, v.changeId, v.size]),
    [[1, "create", null, 8]],
  );
  assert.is((await f.readVersion("/a.txt", 1)).content, "alpha 2\n");
  assert.is((await f.readVersion("/a.txt", 2)).error !== undefined, true, "no version 2 in the fork");
  assert.equal((await f.readVersion("/bin/c.bin", 1)).content, new Uint8Array([0, 1, 2, 255]));

  const cp = await f.checkpoint({ label: "forked" });
  await f.edit("/a.txt", "alpha 2", "alpha 3");
  await f.delete("/docs/b.md");
  await f.write("/n.txt", "new\n");
  assert.equal(
    (await f.history("/a.txt")).versions!.map((v) => [v.version, v.op, v.changeId === null]),
    [
      [1, "create", true],
      [2, "update", false],
    ],
  );
  assert.is((await f.readVersion("/a.txt", 1)).content, "alpha 2\n", "the fork's first version, kept when it changed");
  assert.equal(
    (await f.diff(cp.id)).map((d) => [d.path, d.op]),
    [
      ["/a.txt", "updated"],
      ["/docs/b.md", "deleted"],
      ["/n.txt", "created"],
    ],
  );
  const restored = await f.restore("/docs/b.md", 1);
  assert.is(restored.error, undefined);
  assert.is((await f.read("/docs/b.md")).content, "bravo\n");
  await f.rewind(cp.id);
  assert.is((await f.readRaw("/a.txt")).data?.content, "alpha 2\n");
  assert.is((await f.readRaw("/docs/b.md")).data?.content, "bravo\n");
  assert.ok((await f.readRaw("/n.txt")).error, "created after the checkpoint: gone");
  // The source kept its own history all along.
  assert.equal(
    (await owner.withWorkspace("v-src").history("/a.txt")).versions!.map((v) => v.version),
    [1, 2],
  );
});

test("a target that is not new is forked file by file, as before; so is a fork with history", async () => {
  await source("n-src");
  const used = owner.withWorkspace("n-used");
  await used.write("/old.txt", "once\n");
  await used.delete("/old.txt");
  const logged = await count("changes", "n-used");
  await owner.withWorkspace("n-src").fork("n-used");
  assert.is(await count("changes", "n-used"), logged + 3, "a 'create' per file");
  assert.is(await horizon("n-used"), undefined);

  await owner.withWorkspace("n-src").fork("n-hist", { history: true });
  assert.is(await count("changes", "n-hist"), 3);
  assert.is(await horizon("n-hist"), undefined);
  assert.equal(
    (await owner.withWorkspace("n-hist").history("/a.txt")).versions!.map((v) => v.version),
    [1, 2],
  );
});

test("in one transaction, a write into the fork after it is logged after the horizon", async () => {
  await source("t-src");
  const c = await owner.pool.connect();
  try {
    await c.query("BEGIN");
    await c.query(`SELECT * FROM ${S}.fs_fork('t-src', 't-dst', NULL)`);
    await c.query(`SELECT * FROM ${S}.fs_write('t-dst', '/late.txt', 'late', NULL, 'text/plain', NULL)`);
    await c.query(`SELECT * FROM ${S}.fs_write('t-dst', '/a.txt', 'rewritten', NULL, 'text/plain', NULL)`);
    await c.query("COMMIT");
  } finally {
    c.release();
  }
  const h = Number(await horizon("t-dst"));
  const logged = await rows(`SELECT id, path, op FROM ${S}.changes WHERE workspace = 't-dst' ORDER BY id`);
  assert.equal(
    logged.map((r) => [r.path, r.op]),
    [
      ["/late.txt", "create"],
      ["/a.txt", "update"],
    ],
  );
  assert.ok(logged.every((r) => Number(r.id) > h));
  assert.equal(
    (await owner.withWorkspace("t-dst").history("/a.txt")).versions!.map((v) => [v.version, v.changeId === null]),
    [
      [1, true],
      [2, false],
    ],
  );
});

test("a restricted role forks into a new workspace it is granted; raw SQL can start a log nowhere else", async () => {
  const src = restricted.withWorkspace("r-src");
  await src.write("/x.txt", "x\n");
  await src.fork("r-new");
  assert.is(await count("changes", "r-new"), 0);
  assert.ok(await horizon("r-new"));
  assert.is((await restricted.withWorkspace("r-new").read("/x.txt")).content, "x\n");
  assert.equal(
    (await restricted.withWorkspace("r-new").history("/x.txt")).versions!.map((v) => v.version),
    [1],
  );

  const refused = async (sql: string, pattern: RegExp) => {
    await raw.query("BEGIN");
    try {
      await rejects(() => raw.query(sql), pattern);
    } finally {
      await raw.query("ROLLBACK");
    }
  };
  // Not granted: the policy refuses, before anything is looked up.
  await refused("INSERT INTO fork_marks (workspace) VALUES ('other-tenant')", /row-level security/);
  // Another transaction's mark.
  await refused(
    "INSERT INTO fork_marks (xact, workspace) VALUES ((pg_current_xact_id()::text::bigint + 1)::text::xid8, 'r-used')",
    /row-level security/,
  );
  // Granted but not new: it has a file (then only history and a log).
  await restricted.withWorkspace("r-used").write("/u.txt", "u\n");
  await refused(
    "INSERT INTO fork_marks (workspace) VALUES ('r-used')",
    /can start at a fork only while the workspace is new/,
  );
  await restricted.withWorkspace("r-used").delete("/u.txt");
  await refused(
    "INSERT INTO fork_marks (workspace) VALUES ('r-used')",
    /can start at a fork only while the workspace is new/,
  );
  // Nor can it write the horizon, the staging, or the trigger's function itself.
  await refused("INSERT INTO changes_horizon VALUES ('r-used', 1)", /permission denied/);
  await refused("SELECT fork_log_start()", /permission denied|trigger functions can only be called as triggers/);
  assert.is(await horizon("r-used"), undefined);
});

test("a writer into the target while the fork runs: its change is below the fork's horizon (older cursors resync), a file under a forked file fails the fork", async () => {
  await source("c-src");
  const fork = await owner.pool.connect();
  try {
    await fork.query("BEGIN");
    await fork.query(`SELECT * FROM ${S}.fs_fork('c-src', 'c-dst', NULL)`);
    await owner.withWorkspace("c-dst").write("/side.txt", "written meanwhile\n"); // commits first
    const [side] = await rows(`SELECT id FROM ${S}.changes WHERE workspace = 'c-dst'`);
    await fork.query("COMMIT");
    assert.ok(Number(await horizon("c-dst")) > Number(side.id), "the horizon is taken at the fork's commit");
    await rejects(
      () => admin.query(`SELECT * FROM ${S}.fs_changes('c-dst', $1, 10)`, [side.id]),
      /older than the retained log/,
    );
    assert.is((await owner.withWorkspace("c-dst").read("/side.txt")).content, "written meanwhile\n");

    await fork.query("BEGIN");
    await fork.query(`SELECT * FROM ${S}.fs_fork('c-src', 'c-dst2', NULL)`);
    // /a.txt is a file in the fork, not yet committed: the writer's own check cannot see it.
    assert.is((await owner.withWorkspace("c-dst2").write("/a.txt/inner.txt", "x")).error, undefined);
    await rejects(() => fork.query("COMMIT"), /cannot create file "\/a\.txt": it is a directory/);
    assert.is(await count("files", "c-dst2"), 1, "the fork rolled back; the writer's file stays");
    assert.is(await horizon("c-dst2"), undefined);
  } finally {
    await fork.query("ROLLBACK").catch(() => {});
    fork.release();
  }
});

test("a checkpoint taken while a fork was writing the workspace is refused by diff, rewind and fork, not answered from a partial log", async () => {
  await source("k-src");
  const fork = await owner.pool.connect();
  const target = owner.withWorkspace("k-dst");
  let early = 0;
  try {
    await fork.query("BEGIN");
    await fork.query(`SELECT * FROM ${S}.fs_fork('k-src', 'k-dst', NULL)`);
    early = (await target.checkpoint({ label: "during the fork" })).id;
    await fork.query("COMMIT");
  } finally {
    fork.release();
  }
  await target.write("/a.txt", "after\n");
  const refused = new RegExp(`^Error: checkpoint ${early} of workspace 'k-dst' is older than the retained change log`);
  await rejects(() => target.diff(early), refused);
  await rejects(() => target.rewind(early), refused);
  await rejects(() => target.fork("k-dst-at", { at: early }), refused);
  const later = await target.checkpoint();
  assert.equal(
    (await target.diff(later.id)).map((d) => d.path),
    [],
  );
});

test("raw SQL cannot use a mark to break the file/directory rule: the commit checks every file of a marked workspace", async () => {
  await raw.query("BEGIN");
  try {
    await raw.query("INSERT INTO fork_marks (workspace) VALUES ('r-rule')");
    await raw.query(
      "INSERT INTO files (workspace, path, content, mime_type, size, line_count) VALUES ('r-rule', '/a', 'x', 'text/plain', 1, 1)",
    );
    await raw.query(
      "INSERT INTO files (workspace, path, content, mime_type, size, line_count) VALUES ('r-rule', '/a/b', 'y', 'text/plain', 1, 1)",
    );
    await rejects(() => raw.query("COMMIT"), /is a file, not a directory|it is a directory/);
  } finally {
    await raw.query("ROLLBACK").catch(() => {});
  }
  assert.is(await count("files", "r-rule"), 0);
  assert.is(await horizon("r-rule"), undefined);
  assert.is(
    Number((await rows(`SELECT count(*) AS n FROM ${S}.fork_marks`))[0].n),
    0,
    "no mark outlives its transaction",
  );
});

test("writes racing a fork into its target: the fork lands or says the target has files; the writes land; never a deadlock or a storage failure", async () => {
  const files = Array.from(
    { length: 400 },
    (_, i) => [`/d${i % 8}/f${String(i).padStart(3, "0")}.txt`, Buffer.from(`file ${i}\n`)] as [string, Buffer],
  );
  const src = owner.withWorkspace("x-src");
  assert.ok((await src.uploadFiles(files)).every((r) => r.error === null));
  const outcomes: string[] = [];
  for (let round = 0; round < 8; round++) {
    const target = owner.withWorkspace(`x-dst${round}`);
    const later = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const [fork, upload, write] = await Promise.allSettled([
      src.fork(`x-dst${round}`),
      later(round * 4).then(() => target.uploadFiles(files.slice(round * 40, round * 40 + 120))),
      later(round * 2).then(() => target.write("/zz/meanwhile.txt", "written meanwhile")),
    ]);
    if (fork.status === "rejected") {
      assert.match((fork.reason as Error).message, /cannot fork into workspace '.*': it has files/);
      outcomes.push("refused");
    } else outcomes.push("forked");
    assert.is(upload.status, "fulfilled");
    if (upload.status === "fulfilled")
      assert.equal(
        upload.value.filter((r) => r.error !== null),
        [],
      );
    assert.is(write.status === "fulfilled" && write.value.error, undefined);
    assert.is((await target.read("/zz/meanwhile.txt")).content, "written meanwhile");
  }
  assert.ok(outcomes.length === 8, outcomes.join());
});

test.run();
