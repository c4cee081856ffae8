/**
 * Rules the schema enforces for every writer (migrations/0005_privilege_boundaries.sql):
 * - a version number is never reused for a path, so `ifVersion` cannot be fooled by a delete and
 *   a re-create (ABA) — including when the delete and the create race;
 * - rows are locked in path order: uploads of the same files in opposite or shuffled orders, and
 *   deletes of their parent, never deadlock;
 * - a file and a directory never share a name, also when two transactions race to create them.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import pg from "pg";
import { databaseUrl, testBackend, TEST_SCHEMA } from "../helpers/db.js";
import { rng } from "../helpers/random.js";

const b = await testBackend();
const enc = (s: string) => new TextEncoder().encode(s);

test.after(async () => {
  await b.close();
});

test("ABA: a version read before a delete never matches the file created there afterwards", async () => {
  const first = await b.write("/plan.md", "A's plan\n");
  assert.is(first.version, 1);
  const seenByA = (await b.stat("/plan.md")).data!.version;
  // B deletes it and writes another file at the same path.
  assert.is((await b.delete("/plan.md")).error, undefined);
  const second = await b.write("/plan.md", "B's plan\n");
  assert.ok(second.version! > seenByA, `re-created at version ${second.version}, A holds ${seenByA}`);
  // A's compare-and-set is refused and B's file is intact.
  const late = await b.write("/plan.md", "A's edit\n", { ifVersion: seenByA });
  assert.match(late.error ?? "", /Version conflict/);
  const lateEdit = await b.edit("/plan.md", "B's", "A's", false, { ifVersion: seenByA });
  assert.match(lateEdit.error ?? "", /Version conflict/);
  assert.is((await b.read("/plan.md")).content, "B's plan\n");
  // Through a directory delete and an upload too.
  await b.write("/d/x.txt", "1");
  await b.edit("/d/x.txt", "1", "2");
  const v = (await b.stat("/d/x.txt")).data!.version;
  await b.delete("/d");
  await b.uploadFiles([["/d/x.txt", enc("3")]]);
  assert.ok((await b.stat("/d/x.txt")).data!.version > v);
  // A re-created file is reported as created in the change log, not updated.
  const { rows } = await b.pool.query(
    `SELECT op, version FROM ${TEST_SCHEMA}.changes WHERE workspace = $1 AND path = '/plan.md' ORDER BY id`,
    [b.workspace],
  );
  assert.equal(
    rows.map((r) => [r.op, Number(r.version)]),
    [
      ["create", 1],
      ["delete", 1],
      ["create", 2],
    ],
  );
});

test("ABA under a race: a create that waits on a concurrent delete still starts above the deleted version", async () => {
  await b.write("/race.md", "v1");
  await b.edit("/race.md", "v1", "v2");
  await b.edit("/race.md", "v2", "v3"); // version 3
  const url = await databaseUrl();
  const deleter = new pg.Client({ connectionString: url });
  await deleter.connect();
  try {
    await deleter.query("BEGIN");
    await deleter.query(`SELECT ${TEST_SCHEMA}.fs_delete($1, '/race.md')`, [b.workspace]);
    // The create blocks on the deleted row until the delete commits.
    const create = b.write("/race.md", "new");
    await new Promise((r) => setTimeout(r, 300));
    await deleter.query("COMMIT");
    const created = await create;
    assert.is(created.error, undefined);
    assert.is(created.version, 4);
  } finally {
    await deleter.end();
  }
});

test("uploads of the same 40 files in opposite and shuffled orders, racing deletes of their parent: no deadlock", async () => {
  const random = rng(11).next;
  const paths = Array.from({ length: 40 }, (_, i) => `/up/f${String(i).padStart(2, "0")}.txt`);
  const pools = await Promise.all([0, 1, 2, 3].map(() => testBackend({ workspace: b.workspace })));
  try {
    const errors: string[] = [];
    for (let round = 0; round < 6; round++) {
      const orders = [paths, [...paths].reverse(), ...[0, 1].map(() => [...paths].sort(() => random() - 0.5))];
      const calls: Promise<unknown>[] = orders.map((order, i) =>
        pools[i]
          .uploadFiles(order.map((p) => [p, enc(`${round}:${i}`)]))
          .then((rs) => {
            for (const r of rs) if (r.error) errors.push(`upload ${r.path}: ${r.error}`);
          })
          .catch((e) => errors.push(`upload: ${(e as Error).message}`)),
      );
      calls.push(
        b.delete("/up").then((r) => {
          if (r.error && !/not found/.test(r.error)) errors.push(`delete: ${r.error}`);
        }),
      );
      await Promise.all(calls);
    }
    assert.equal(errors, []);
  } finally {
    await Promise.all(pools.map((p) => p.close()));
  }
});

test("a file and a directory never share a name (write, upload, and within one upload)", async () => {
  await b.write("/a", "file a");
  assert.is((await b.write("/a/b.txt", "x")).error, "Error: Cannot create '/a/b.txt': '/a' is a file, not a directory");
  assert.is(
    (await b.write("/a/deep/er.txt", "x")).error,
    "Error: Cannot create '/a/deep/er.txt': '/a' is a file, not a directory",
  );
  await b.write("/dir/inner.txt", "x");
  assert.is((await b.write("/dir", "x")).error, "Error: '/dir' is a directory");
  const up = await b.uploadFiles([
    ["/a/c.txt", enc("under a file")],
    ["/dir", enc("over a directory")],
    ["/ok.txt", enc("fine")],
    ["/both", enc("a file in the batch")],
    ["/both/under.txt", enc("below it in the same batch")],
  ]);
  // Within the batch, as if written one by one: the later of two clashing paths is refused.
  assert.equal(
    up.map((r) => r.error),
    ["invalid_path", "is_directory", null, null, "invalid_path"],
  );
  const ls = (await b.ls("/")).files!.filter((f) => /^\/(a|dir|ok\.txt|both)\/?$/.test(f.path));
  assert.equal(
    ls.map((f) => [f.path, f.is_dir]),
    [
      ["/a", false],
      ["/both", false],
      ["/dir/", true],
      ["/ok.txt", false],
    ],
  );
  assert.is((await b.read("/a")).content, "file a");
});

test("a file and a directory never share a name: two racing transactions, the second to commit fails", async () => {
  const url = await databaseUrl();
  const one = new pg.Client({ connectionString: url });
  const two = new pg.Client({ connectionString: url });
  await Promise.all([one.connect(), two.connect()]);
  try {
    await one.query("BEGIN");
    await two.query("BEGIN");
    // Neither sees the other's uncommitted row, so both up-front checks pass.
    const w = (c: pg.Client, p: string) =>
      c.query(`SELECT status FROM ${TEST_SCHEMA}.fs_write($1, $2, 'x', NULL, 'text/plain', NULL)`, [b.workspace, p]);
    assert.is((await w(one, "/clash")).rows[0].status, "created");
    assert.is((await w(two, "/clash/inner.txt")).rows[0].status, "created");
    await one.query("COMMIT");
    const failed = await two.query("COMMIT").then(
      () => null,
      (e: pg.DatabaseError) => e,
    );
    assert.ok(failed, "the second commit must fail");
    assert.is(failed!.code, "DA002");
    assert.is(failed!.detail, "/clash");
  } finally {
    await Promise.all([one.end(), two.end()]);
  }
  assert.is((await b.read("/clash")).content, "x");
  assert.is((await b.read("/clash/inner.txt")).error, "File '/clash/inner.txt' not found");
});

test("a racing upload that loses the file/directory rule at commit is retried and refuses only the clashing file", async () => {
  const url = await databaseUrl();
  const holder = new pg.Client({ connectionString: url });
  await holder.connect();
  try {
    await holder.query("BEGIN");
    // Checked at once (not at commit): the holder then keeps the commit lock until it commits, and
    // the upload, which cannot see its row yet, passes its up-front check and waits at commit.
    await holder.query("SET CONSTRAINTS ALL IMMEDIATE");
    await holder.query(`SELECT ${TEST_SCHEMA}.fs_write($1, '/late', 'x', NULL, 'text/plain', NULL)`, [b.workspace]);
    const upload = b.uploadFiles([
      ["/late/under.txt", enc("u")],
      ["/late-sibling.txt", enc("s")],
    ]);
    await new Promise((r) => setTimeout(r, 200));
    await holder.query("COMMIT");
    const result = await upload;
    assert.equal(
      result.map((r) => r.error),
      ["invalid_path", null],
    );
  } finally {
    await holder.end();
  }
  assert.is((await b.read("/late-sibling.txt")).content, "s");
});

test("the file/directory rule holds with immediate constraints, forged settings, and renames by raw SQL", async () => {
  const url = await databaseUrl();
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const w = (p: string) =>
    c.query(
      `INSERT INTO ${TEST_SCHEMA}.files (workspace, path, content, mime_type, size, line_count) VALUES ($1, $2, 'x', 'text/plain', 1, 1)`,
      [b.workspace, p],
    );
  const code = (e: unknown) => (e as pg.DatabaseError).code;
  try {
    await b.write("/imm", "a file");
    // Immediate constraints: checked at the end of the statement, and every statement is checked.
    await c.query("BEGIN");
    await c.query("SET CONSTRAINTS ALL IMMEDIATE");
    await w("/imm-ok-1");
    await w("/imm-ok-2");
    assert.is(await w("/imm/under").then(() => null, code), "DA002");
    await c.query("ROLLBACK");
    // Settings a role may set for itself skip nothing.
    await c.query("BEGIN");
    await c.query(
      "SELECT set_config('deepagents_backends.tree_checked', pg_current_xact_id()::text, true), set_config('deepagents_backends.first_change', pg_current_xact_id()::text || '/9223372036854775807', true)",
    );
    await w("/imm/forged");
    assert.is(await c.query("COMMIT").then(() => null, code), "DA002");
    // A rename by raw SQL is a delete and a create: checked, and versioned above the new name's past.
    await b.write("/ren-src.txt", "1");
    await b.edit("/ren-src.txt", "1", "2"); // version 2
    await b.write("/ren-dst.txt", "x");
    for (let i = 0; i < 4; i++) await b.edit("/ren-dst.txt", i ? String(i) : "x", String(i + 1)); // version 5
    await b.delete("/ren-dst.txt");
    await c.query(
      `UPDATE ${TEST_SCHEMA}.files SET path = '/ren-dst.txt' WHERE workspace = $1 AND path = '/ren-src.txt'`,
      [b.workspace],
    );
    assert.is((await b.stat("/ren-dst.txt")).data!.version, 6);
    assert.is((await b.write("/ren-src.txt", "again")).version, 3);
    const ops = (
      await c.query(
        `SELECT path, op FROM ${TEST_SCHEMA}.changes WHERE workspace = $1 AND path LIKE '/ren-%' ORDER BY id DESC LIMIT 3`,
        [b.workspace],
      )
    ).rows;
    assert.equal(
      ops.map((r) => `${r.op} ${r.path}`),
      ["create /ren-src.txt", "create /ren-dst.txt", "delete /ren-src.txt"],
    );
    const renamed = await c
      .query(`UPDATE ${TEST_SCHEMA}.files SET path = '/imm/renamed' WHERE workspace = $1 AND path = '/ren-dst.txt'`, [
        b.workspace,
      ])
      .then(() => null, code);
    assert.is(renamed, "DA002");
  } finally {
    await c.end();
  }
  assert.is((await b.read("/imm/under")).error, "File '/imm/under' not found");
  assert.is((await b.read("/imm/forged")).error, "File '/imm/forged' not found");
});

test.run();
