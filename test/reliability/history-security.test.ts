/**
 * File history under attack (issue 13 with issue 11's rules; migrations/0008_file_history.sql): a
 * role restricted to one workspace uses history, checkpoints and rewind there, and with raw SQL
 * can neither read another workspace's versions or contents (blobs are shared between
 * workspaces), nor write history, nor change retention, nor checkpoint or rewind another
 * workspace, nor redirect the owner's history trigger through its temporary schema.
 *
 * Runs in a schema of its own; the role gets a unique name and is dropped at the end.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { randomBytes } from "node:crypto";
import { PostgresBackend } from "../../src/index.js";
import { adminClient, databaseUrl } from "../helpers/db.js";
import { privateSchema } from "./private-schema.js";
import { restrictedRole } from "./restricted-role.js";

const { schema: SCHEMA, drop } = await privateSchema("histsec");
const url = await databaseUrl();
const admin = await adminClient();

const owner = new PostgresBackend({ connectionString: url, schema: SCHEMA, workspace: "acme", maxPoolSize: 2 });
await owner.initialize();
const role = await restrictedRole(owner, "da_hist", ["acme"]);
const { role: ROLE, backend: restricted, raw } = role;

test.after(async () => {
  await role.end();
  await owner.close();
  await drop();
  await admin.end();
});

// Another tenant's history: a file edited, then deleted (its last content is now a blob).
const globex = owner.withWorkspace("globex");
const SECRET = `globex secret ${randomBytes(8).toString("hex")}\n`;
await globex.write("/plan.txt", SECRET);
await globex.edit("/plan.txt", "secret", "SECRET");
await globex.delete("/plan.txt");
const globexCheckpoint = await globex.checkpoint({ label: "theirs" });

/** The SQLSTATE of a statement that must fail (or "ok"). */
async function outcome(sql: string, params: unknown[] = []): Promise<string> {
  try {
    await raw.query(sql, params);
    return "ok";
  } catch (e) {
    return (e as { code: string }).code;
  }
}

test("in its own workspace the restricted role has the whole history API", async () => {
  await restricted.write("/a.txt", "one\n");
  const cp = await restricted.checkpoint({ label: "mine" });
  await restricted.edit("/a.txt", "one", "two");
  await restricted.delete("/a.txt");
  assert.equal(
    (await restricted.history("/a.txt")).versions?.map((v) => v.op),
    ["create", "update", "delete"],
  );
  assert.is((await restricted.readVersion("/a.txt", 1, 0, 10)).content, "one\n");
  assert.equal(
    (await restricted.diff(cp.id)).map((c) => [c.path, c.op]),
    [["/a.txt", "deleted"]],
  );
  const r = await restricted.rewind(cp.id);
  assert.is((await restricted.readRaw("/a.txt")).data?.content, "one\n");
  assert.ok(r.undo);
  assert.equal((await restricted.restore("/a.txt", 2)).error, undefined);
  assert.equal(
    (await restricted.checkpoints()).map((c) => c.label),
    ["mine", `before rewind to checkpoint ${cp.id}`],
  );
});

test("another workspace's history, contents and checkpoints are invisible, through the API and raw SQL", async () => {
  const theirs = restricted.withWorkspace("globex");
  assert.ok((await theirs.history("/plan.txt")).error?.includes("no history kept"));
  assert.ok((await theirs.readVersion("/plan.txt", 1)).error?.includes("is not kept"));
  assert.equal(
    (await raw.query(`SELECT count(*)::int AS n FROM file_versions WHERE workspace = 'globex'`)).rows[0].n,
    0,
  );
  assert.equal((await raw.query(`SELECT version_data('globex', '/plan.txt', 2) AS d`)).rows[0].d, null);
  // Blobs are shared by all workspaces: the role sees only those its own versions point to.
  const blobs = (await raw.query(`SELECT convert_from(data, 'UTF8') AS t FROM blobs`)).rows.map((r) => r.t);
  assert.ok(!blobs.some((t) => t.includes("globex")), "no blob of globex is readable");
  const all = (await admin.query(`SELECT count(*)::int AS n FROM ${SCHEMA}.blobs`)).rows[0].n;
  assert.ok(all > blobs.length, `the owner sees ${all} blobs, the role ${blobs.length}`);
  assert.equal((await raw.query(`SELECT count(*)::int AS n FROM checkpoints WHERE workspace = 'globex'`)).rows[0].n, 0);
  assert.equal((await theirs.checkpoints()).length, 0);
});

test("it cannot rewind, restore into, checkpoint or diff another workspace", async () => {
  const theirs = restricted.withWorkspace("globex");
  assert.equal(await outcome(`SELECT * FROM fs_rewind('globex', $1, NULL, false)`, [globexCheckpoint.id]), "DA012");
  assert.equal(await outcome(`SELECT * FROM fs_diff('globex', $1, NULL, NULL)`, [globexCheckpoint.id]), "DA012");
  assert.equal(await outcome(`SELECT * FROM fs_checkpoint('globex', 'x', NULL)`), "42501");
  const restored = await theirs.restore("/plan.txt", 1);
  assert.ok(restored.error?.includes("is not kept"), restored.error);
  assert.equal(
    (await admin.query(`SELECT count(*)::int AS n FROM ${SCHEMA}.files WHERE workspace = 'globex'`)).rows[0].n,
    0,
  );
});

test("it cannot write history, collect blobs, change retention, or run the owner's helpers", async () => {
  const cases: Array<[string, string]> = [
    [
      `INSERT INTO file_versions (workspace, path, version, op, size, hash) VALUES ('acme', '/x', 99, 'create', 1, '\\x00')`,
      "42501",
    ],
    [`UPDATE file_versions SET size = 0 WHERE workspace = 'acme'`, "42501"],
    [`DELETE FROM file_versions WHERE workspace = 'acme'`, "42501"],
    [`INSERT INTO blobs VALUES ('\\x00', '\\x00')`, "42501"],
    [`DELETE FROM blobs`, "42501"],
    [`UPDATE history_settings SET enabled = false`, "42501"],
    [`INSERT INTO checkpoints (workspace, change_id) VALUES ('globex', 0)`, "42501"],
    [`SELECT * FROM prune_history(NULL)`, "42501"],
    [`SELECT * FROM set_history('', false, NULL, NULL)`, "42501"],
    [`SELECT history_collect_blobs()`, "42501"],
    [`SELECT blob_keep('\\x00')`, "42501"],
    [`SELECT history_grant('${ROLE}')`, "42501"],
  ];
  const got = [];
  for (const [sql] of cases) got.push(await outcome(sql));
  assert.equal(
    got,
    cases.map(([, code]) => code),
  );
  await restricted.pruneHistory().then(
    () => assert.unreachable("pruneHistory as a restricted role"),
    (e: Error) => assert.match(e.message, /pruneHistory is for the schema owner/),
  );
  await restricted.setHistory({ enabled: false }).then(
    () => assert.unreachable("setHistory as a restricted role"),
    (e: Error) => assert.match(e.message, /setHistory is for the schema owner/),
  );
  assert.equal((await owner.historySettings()).enabled, true);
});

test("raw SQL on its own rows cannot plant bytes under another content's hash (blobs are shared)", async () => {
  const A = `template ${randomBytes(6).toString("hex")}\n`;
  const files = `(workspace, path, content, mime_type, size, line_count)`;
  const steps = [
    [`INSERT INTO files ${files} VALUES ('acme', '/p.txt', $1, 'text/plain', 1, 1)`, [A]],
    [`UPDATE files SET version = 3 WHERE workspace = 'acme' AND path = '/p.txt'`, []],
    [`UPDATE files SET version = 2, content = 'INJECTED' WHERE workspace = 'acme' AND path = '/p.txt'`, []],
    [`UPDATE files SET version = 10 WHERE workspace = 'acme' AND path = '/p.txt'`, []],
    [`UPDATE files SET version = 3 WHERE workspace = 'acme' AND path = '/p.txt'`, []],
    // 0019 keys a replaced version's blob by its file row's hash: the row's hash named as A's
    // while its body is other text, then replaced and renamed away (both keep the old bytes).
    [
      `UPDATE files SET hash = sha256(convert_to($1, 'UTF8')), content = 'OTHER' WHERE workspace = 'acme' AND path = '/p.txt'`,
      [A],
    ],
    [
      `UPDATE files SET hash = sha256(convert_to($1, 'UTF8')), content = 'OTHER 2' WHERE workspace = 'acme' AND path = '/p.txt'`,
      [A],
    ],
    [
      `UPDATE files SET hash = sha256(convert_to($1, 'UTF8')), path = '/q.txt' WHERE workspace = 'acme' AND path = '/p.txt'`,
      [A],
    ],
    [
      `UPDATE files SET hash = sha256(convert_to($1, 'UTF8')), path = '/p.txt' WHERE workspace = 'acme' AND path = '/q.txt'`,
      [A],
    ],
    [`DELETE FROM files WHERE workspace = 'acme' AND path = '/p.txt'`, []],
  ] as const;
  for (const [sql, params] of steps) await raw.query(sql, [...params]);
  const victim = owner.withWorkspace("victim");
  await victim.write("/a.txt", A);
  await victim.delete("/a.txt");
  assert.is((await victim.readVersion("/a.txt", 1, 0, 10)).content, A);
  await victim.restore("/a.txt", 1);
  assert.is((await victim.readRaw("/a.txt")).data?.content, A);
  const planted = await admin.query(`SELECT count(*)::int AS n FROM ${SCHEMA}.blobs WHERE sha256(data) <> hash`);
  assert.is(planted.rows[0].n, 0, "every blob's key is the hash of its bytes");
});

test("temporary tables named like ours do not catch the owner's history trigger", async () => {
  await raw.query(`CREATE TEMP TABLE file_versions (LIKE ${SCHEMA}.file_versions)`);
  await raw.query(`CREATE TEMP TABLE blobs (hash bytea, data bytea)`);
  await raw.query(`CREATE TEMP TABLE history_settings (scope text, enabled boolean, keep_versions int, keep_days int)`);
  await raw.query(`INSERT INTO pg_temp.history_settings VALUES ('', false, NULL, NULL)`);
  await raw.query(`SELECT * FROM fs_write('acme', '/t.txt', 'first', NULL, 'text/plain', NULL)`);
  await raw.query(`SELECT * FROM fs_write('acme', '/t.txt', 'second', NULL, 'text/plain', NULL)`);
  await raw.query(`SELECT * FROM fs_delete('acme', '/t.txt')`);
  assert.equal((await raw.query(`SELECT count(*)::int AS n FROM pg_temp.file_versions`)).rows[0].n, 0);
  assert.equal((await raw.query(`SELECT count(*)::int AS n FROM pg_temp.blobs`)).rows[0].n, 0);
  const kept = await admin.query(
    `SELECT version, op FROM ${SCHEMA}.file_versions WHERE workspace = 'acme' AND path = '/t.txt' ORDER BY version, deleted`,
  );
  assert.equal(
    kept.rows.map((r) => `${r.op}:${r.version}`),
    ["create:1", "update:2", "delete:2"],
  );
  assert.is((await owner.readVersion("/t.txt", 2)).content, "second");
});

test.run();
