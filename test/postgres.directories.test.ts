/**
 * Directories on PostgreSQL (migration 0027): what only the database shows. A file and a
 * directory committed at one name by two transactions at once cannot both win (the commit-time
 * checks under changes_lock), whichever commits first; a restricted role makes and sees
 * directories in its granted workspaces only, through the backend and through raw SQL; a fork of
 * the present copies empty directories, a fork at a checkpoint does not.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import pg from "pg";
import { errors } from "../src/protocol.js";
import { adminClient, databaseUrl, testBackend, uniqueName } from "./helpers/db.js";
import { restrictedRole } from "./reliability/restricted-role.js";

const base = await testBackend({ maxPoolSize: 4 });
const admin = await adminClient();
const names = async (b: typeof base, dir: string) => ((await b.ls(dir)).files ?? []).map((f) => f.path);

test.after(async () => {
  await base.close();
  await admin.end();
});

/** Two connections in the test schema, each in a transaction of its own. */
async function twoTransactions(): Promise<[pg.Client, pg.Client, () => Promise<void>]> {
  const url = await databaseUrl();
  const clients = [new pg.Client({ connectionString: url }), new pg.Client({ connectionString: url })];
  for (const c of clients) {
    await c.connect();
    await c.query(`SET search_path = ${base.schema}`);
    await c.query("BEGIN");
  }
  return [clients[0], clients[1], async () => void (await Promise.all(clients.map((c) => c.end())))];
}

const failure = (p: Promise<unknown>) =>
  p.then(
    () => null,
    (e: pg.DatabaseError) => ({ code: e.code, detail: e.detail }),
  );

for (const first of ["directory", "file"] as const) {
  test(`mkdir and a write of one name in two open transactions: the ${first} commits, the other fails at commit`, async () => {
    const ws = uniqueName("race");
    const [dir, file, end] = await twoTransactions();
    try {
      // Each checks before the other has committed: both see the name free.
      const made = await dir.query("SELECT * FROM fs_mkdir($1, '/x', false)", [ws]);
      assert.is(made.rows[0].status, "created");
      const written = await file.query("SELECT * FROM fs_write($1, '/x', 'body', NULL, 'text/plain', NULL)", [ws]);
      assert.is(written.rows[0].status, "created");
      const [winner, loser] = first === "directory" ? [dir, file] : [file, dir];
      await winner.query("COMMIT");
      const lost = await failure(loser.query("COMMIT"));
      // DA003: a file where a directory is; DA002: a directory where (or below) a file is.
      assert.equal(lost, first === "directory" ? { code: "DA003", detail: "/x" } : { code: "DA002", detail: "/x" });
    } finally {
      await end();
    }
    const b = base.withWorkspace(ws);
    assert.equal(await names(b, "/"), [first === "directory" ? "/x/" : "/x"]);
  });
}

test("mkdir below a file committed meanwhile fails at commit, naming the file; the backend says so in one line", async () => {
  const ws = uniqueName("race");
  const [dir, file, end] = await twoTransactions();
  try {
    assert.is((await dir.query("SELECT * FROM fs_mkdir($1, '/a/b', true)", [ws])).rows[0].status, "created");
    await file.query("SELECT * FROM fs_write($1, '/a', 'a file', NULL, 'text/plain', NULL)", [ws]);
    await file.query("COMMIT");
    assert.equal(await failure(dir.query("COMMIT")), { code: "DA002", detail: "/a" });
  } finally {
    await end();
  }
  const b = base.withWorkspace(ws);
  assert.equal(await names(b, "/"), ["/a"]);
  assert.equal(await b.mkdir("/a/b", { parents: true }), { error: errors.parentIsFile("/a/b", "/a") });
});

test("row-level security: a restricted role makes, lists and deletes directories of its own workspace only", async () => {
  const mine = uniqueName("mine");
  const theirs = uniqueName("theirs");
  await base.withWorkspace(theirs).mkdir("/secret/inner", { parents: true });
  const role = await restrictedRole(base, "da_dir", [mine]);
  try {
    assert.equal(await role.backend.mkdir("/made", { parents: true }), { path: "/made", created: true });
    assert.equal(await names(role.backend, "/"), ["/made/"]);
    assert.match((await role.backend.withWorkspace(theirs).mkdir("/x")).error ?? "", /^Error: permission denied/);
    // raw SQL: the other workspace's rows are invisible and cannot be written or deleted
    assert.equal((await role.raw.query("SELECT workspace, path FROM directories ORDER BY path")).rows, [
      { workspace: mine, path: "/made" },
    ]);
    const refused = await failure(
      role.raw.query("INSERT INTO directories (workspace, path) VALUES ($1, '/y')", [theirs]),
    );
    assert.is(refused?.code, "42501");
    assert.is((await role.raw.query("DELETE FROM directories WHERE workspace = $1", [theirs])).rowCount, 0);
    assert.is((await role.raw.query("SELECT fs_is_directory($1, '/secret') AS d", [theirs])).rows[0].d, false);
    assert.is((await role.raw.query("SELECT fs_delete($1, '/secret') AS n", [theirs])).rows[0].n, "0");
    assert.equal(await names(base.withWorkspace(theirs), "/secret"), ["/secret/inner/"]);
    assert.equal(await role.backend.delete("/made"), { path: "/made", filesUpdate: null });
    assert.equal(await names(role.backend, "/"), []);
  } finally {
    await role.end();
  }
});

test("fork: of the present, empty directories come along; at a checkpoint, none (they have no history)", async () => {
  const source = base.withWorkspace(uniqueName("src"));
  await source.setHistory({ enabled: true });
  await source.write("/kept/a.txt", "a");
  const checkpoint = await source.checkpoint({ label: "before mkdir" });
  await source.mkdir("/empty/inner", { parents: true });
  const now = uniqueName("now");
  assert.is((await source.fork(now)).files, 1);
  assert.equal(await names(base.withWorkspace(now), "/"), ["/empty/", "/kept/"]);
  assert.equal(await names(base.withWorkspace(now), "/empty"), ["/empty/inner/"]);
  const then = uniqueName("then");
  await source.fork(then, { at: checkpoint.id });
  assert.equal(await names(base.withWorkspace(then), "/"), ["/kept/"]);
});

test("ls lists a directory whose rows are all deeper (a delete racing mkdir -p leaves one so), and names that sort between a row and its subtree", async () => {
  const ws = uniqueName("ls");
  const b = base.withWorkspace(ws);
  // as a delete of /o committed between mkdir -p /o/b/c's look at /o and its commit leaves them
  await admin.query(`INSERT INTO ${base.schema}.directories (workspace, path) VALUES ($1, '/o/b'), ($1, '/o/b/c')`, [
    ws,
  ]);
  await b.mkdir("/x/a", { parents: true });
  await b.mkdir("/x/a-b/c", { parents: true });
  await b.mkdir("/x/a/d", { parents: true });
  await b.write("/x/a.txt", "file");
  assert.equal(await names(b, "/"), ["/o/", "/x/"]);
  assert.equal(await names(b, "/o"), ["/o/b/"]);
  assert.equal(await names(b, "/x"), ["/x/a-b/", "/x/a.txt", "/x/a/"]);
  assert.equal(await b.delete("/o"), { path: "/o", filesUpdate: null });
  assert.equal(await names(b, "/"), ["/x/"]);
});

test("fork into a workspace that has only directories: refused as one with files", async () => {
  const source = base.withWorkspace(uniqueName("src"));
  await source.write("/a.txt", "a");
  const target = uniqueName("tgt");
  await base.withWorkspace(target).mkdir("/mine");
  await assertRejects(() => source.fork(target), /it has files/);
  assert.equal(await names(base.withWorkspace(target), "/"), ["/mine/"]);
});

test("rewind to before a file became a directory: refused in one line, nothing changed", async () => {
  const b = base.withWorkspace(uniqueName("rw"));
  await b.setHistory({ enabled: true });
  await b.write("/x", "a file");
  const checkpoint = await b.checkpoint();
  await b.delete("/x");
  await b.mkdir("/x");
  await b.write("/other.txt", "after");
  await assertRejects(() => b.rewind(checkpoint.id), /^Error: cannot create file "\/x": it is a directory$/);
  assert.equal(await names(b, "/"), ["/other.txt", "/x/"]);
});

async function assertRejects(fn: () => Promise<unknown>, expected: RegExp): Promise<void> {
  const message = await fn().then(
    () => "resolved",
    (e: Error) => e.message,
  );
  assert.match(message, expected);
}

test.run();
