/**
 * Row-level security (issue 7, part 2; migrations/0004_row_level_security.sql): a real database
 * role restricted to workspaces cannot read or change another workspace's rows — not through the
 * backend, not with raw SQL — while the owner and roles that could use the tables before the
 * migration see what they saw before. `PostgresBackend({ rowLevelSecurity: true })` works as that
 * role (writes, edits under concurrency, the change log and watch()).
 *
 * Runs in a schema of its own; the roles (cluster-wide) get unique names and are dropped at the end.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { grantWorkspace, migrate, PostgresBackend, revokeWorkspace, type Change } from "../../src/index.js";
import { shippedMigrations } from "../../src/postgres/migrate.js";
import { adminClient, databaseUrl } from "../helpers/db.js";
import { privateSchema } from "./private-schema.js";

const { schema: SCHEMA, drop: dropSchema } = await privateSchema("rls");
const url = await databaseUrl();
const admin = await adminClient();
const suffix = randomBytes(4).toString("hex");
const ROLE = `da_rls_${suffix}`; // logs in; granted "acme"
const GROUP = `da_rls_group_${suffix}`; // ROLE is a member; granted "globex"
const LEGACY = `da_rls_legacy_${suffix}`; // could use files before 0004
const NOBODY = `da_rls_nobody_${suffix}`; // logs in, granted nothing
const ROLES = [ROLE, GROUP, LEGACY, NOBODY];
const PASSWORD = randomBytes(12).toString("hex");
const roleUrl = (role: string) => {
  const u = new URL(url);
  u.username = role;
  u.password = PASSWORD;
  return u.toString();
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const backends: PostgresBackend[] = [];
const clients: pg.Client[] = [];
test.after(async () => {
  for (const b of backends) await b.close().catch(() => {});
  for (const c of clients) await c.end().catch(() => {});
  await dropSchema();
  for (const role of ROLES) {
    await admin.query(`DROP OWNED BY ${role}`).catch(() => {}); // privileges in this database
    await admin
      .query(`DROP ROLE IF EXISTS ${role}`)
      .catch((e) => console.log(`could not drop role ${role}: ${e.message}`));
  }
  await admin.end();
});

// Roles first; LEGACY gets its privileges before 0004 exists, as an app role of an older install would.
await admin.query(`CREATE ROLE ${ROLE} LOGIN PASSWORD '${PASSWORD}'`);
await admin.query(`CREATE ROLE ${GROUP} NOLOGIN`);
await admin.query(`GRANT ${GROUP} TO ${ROLE}`);
await admin.query(`CREATE ROLE ${LEGACY} LOGIN PASSWORD '${PASSWORD}'`);
await admin.query(`CREATE ROLE ${NOBODY} LOGIN PASSWORD '${PASSWORD}'`);
const ALL = await shippedMigrations();
const before = ALL.indexOf("0004_row_level_security");
assert.ok(before > 0, "0004_row_level_security is shipped");
await migrate({ connectionString: url, schema: SCHEMA, count: before });
await admin.query(`GRANT USAGE ON SCHEMA ${SCHEMA} TO ${LEGACY}`);
await admin.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ${SCHEMA}.files TO ${LEGACY}`);
await migrate({ connectionString: url, schema: SCHEMA });

function track<T extends PostgresBackend>(b: T): T {
  backends.push(b);
  return b;
}
const owner = track(
  new PostgresBackend({ connectionString: url, schema: SCHEMA, workspace: "acme", maxPoolSize: 4, minPoolSize: 0 }),
);
await owner.initialize();

// Data in three workspaces, with change-log rows and a retention horizon for each.
for (const ws of ["acme", "acme-corp", "globex"]) {
  const b = owner.withWorkspace(ws);
  await b.write("/secret.txt", `${ws} secret\nsecond line of ${ws}\n`);
  await b.write("/docs/readme.md", `# ${ws}\n`);
  await b.write("/img.png", Buffer.from([137, 80, 78, 71]).toString("base64"));
  await b.edit("/docs/readme.md", `# ${ws}`, `# ${ws} docs`);
}
await owner.pruneChanges({ keepPerWorkspace: 3 });
await grantWorkspace(owner.pool, SCHEMA, ROLE, "acme");
await grantWorkspace(owner.pool, SCHEMA, GROUP, "globex");

async function connectAs(role: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: roleUrl(role) });
  await c.connect();
  clients.push(c);
  return c;
}

/** Everything stored for workspaces other than `acme` and `globex`, as the superuser sees it. */
async function foreignSnapshot(): Promise<unknown> {
  const q = async (sql: string) => (await admin.query(sql)).rows;
  const other = `workspace NOT IN ('acme', 'globex')`;
  return {
    files: await q(
      `SELECT workspace, path, content, bytes, version, modified_at FROM ${SCHEMA}.files WHERE ${other} ORDER BY 1, 2`,
    ),
    chunks: await q(
      `SELECT f.workspace, f.path, c.first_line, c.content FROM ${SCHEMA}.chunks c
       JOIN ${SCHEMA}.files f ON f.chunk_set = c.chunk_set WHERE f.${other} ORDER BY 1, 2, 3`,
    ),
    changes: await q(`SELECT id, workspace, path, op, version FROM ${SCHEMA}.changes WHERE ${other} ORDER BY 1`),
    horizon: await q(`SELECT workspace, pruned_to FROM ${SCHEMA}.changes_horizon WHERE ${other} ORDER BY 1`),
    grants: await q(`SELECT role_name, workspace FROM ${SCHEMA}.workspace_grants ORDER BY 1, 2`),
  };
}

const restricted = track(
  new PostgresBackend({
    connectionString: roleUrl(ROLE),
    schema: SCHEMA,
    workspace: "acme",
    rowLevelSecurity: true,
    maxPoolSize: 6,
    minPoolSize: 0,
    streamSplit: { minBytes: 1 }, // a stream's second connection (0025) reads under the policy too
  }),
);

test("the migration enables (never forces) RLS; the owner and pre-existing roles see every workspace as before", async () => {
  const { rows } = await admin.query(
    `SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class
     WHERE relnamespace = $1::regnamespace AND relname IN ('files', 'chunks', 'changes', 'changes_horizon', 'workspace_grants') ORDER BY 1`,
    [SCHEMA],
  );
  assert.equal(
    rows.map((r) => [r.relname, r.relrowsecurity, r.relforcerowsecurity]),
    [
      ["changes", true, false],
      ["changes_horizon", true, false],
      ["chunks", true, false],
      ["files", true, false],
      ["workspace_grants", true, false],
    ],
  );
  for (const ws of ["acme", "acme-corp", "globex"])
    assert.is(
      (await owner.withWorkspace(ws).readRaw("/secret.txt")).data!.content,
      `${ws} secret\nsecond line of ${ws}\n`,
    );
  const legacy = await connectAs(LEGACY);
  const seen = await legacy.query(`SELECT DISTINCT workspace FROM ${SCHEMA}.files ORDER BY 1`);
  assert.equal(
    seen.rows.map((r) => r.workspace),
    ["acme", "acme-corp", "globex"],
  );
});

test("restricted role via rowLevelSecurity: true — the whole protocol works in its workspace, with the change log", async () => {
  await restricted.initialize();
  const changes: Change[] = [];
  const sub = await restricted.watch({ onChange: (c) => changes.push(c) });
  try {
    const w = await restricted.write("/notes/a.md", "alpha\nbeta\n");
    assert.is(w.error, undefined);
    assert.is((await restricted.edit("/notes/a.md", "beta", "gamma")).occurrences, 1);
    assert.match(
      (await restricted.write("/notes/a.md", "x", { ifVersion: w.version })).error!,
      /^Error: Version conflict/,
    );
    assert.is((await restricted.read("/notes/a.md")).content, "alpha\ngamma\n");
    assert.equal(
      (await restricted.ls("/")).files!.map((f) => f.path),
      ["/docs/", "/img.png", "/notes/", "/secret.txt"],
    );
    assert.equal((await restricted.grep("gamma")).matches, [{ path: "/notes/a.md", line: 2, text: "gamma" }]);
    assert.equal((await restricted.grep("secret")).matches, [{ path: "/secret.txt", line: 1, text: "acme secret" }]);
    const streamed = [];
    for await (const m of restricted.grepStream("secret")) streamed.push(m);
    assert.equal(streamed, [{ path: "/secret.txt", line: 1, text: "acme secret" }]);
    assert.equal((await restricted.search({ pattern: "SECOND LINE", ignoreCase: true })).matches, [
      { path: "/secret.txt", line: 2, text: "second line of acme" },
    ]);
    assert.equal((await restricted.glob("**/*.md")).files!.map((f) => f.path).sort(), [
      "/docs/readme.md",
      "/notes/a.md",
    ]);
    assert.is((await restricted.stat("/notes/a.md")).data!.version, 2);
    assert.equal((await restricted.uploadFiles([["/up/b.txt", Buffer.from("uploaded\n")]]))[0].error, null);
    assert.equal(Buffer.from((await restricted.downloadFiles(["/up/b.txt"]))[0].content!).toString(), "uploaded\n");
    assert.is((await restricted.delete("/up")).error, undefined);
    // Concurrent edits of one file as the restricted role: the row lock, the chunk triggers and
    // the commit-time change log all work under RLS, and nothing is lost.
    const tokens = Array.from({ length: 40 }, (_, i) => `<t${i}>`);
    await restricted.write("/race.txt", tokens.join("\n") + "\n");
    const edits = await Promise.all(tokens.map((t, i) => restricted.edit("/race.txt", t, `done${i}`)));
    assert.equal(
      edits.filter((e) => e.error),
      [],
    );
    assert.is(
      (await restricted.readRaw("/race.txt")).data!.content,
      tokens.map((_, i) => `done${i}`).join("\n") + "\n",
    );
    assert.equal((await restricted.grep("done39")).matches, [{ path: "/race.txt", line: 40, text: "done39" }]);
    const expected = 2 + 1 + 1 + 1 + 40; // write+edit of a.md, upload, delete, race write, 40 edits
    for (let i = 0; i < 200 && changes.length < expected; i++) await sleep(50);
    assert.is(changes.length, expected);
    assert.ok(changes.every((c) => c.workspace === "acme"));
  } finally {
    await sub.close();
  }
});

test("other workspaces through the restricted backend: invisible, writes refused clearly, nothing changed", async () => {
  await restricted.initialize();
  const snapshot = await foreignSnapshot();
  const corp = restricted.withWorkspace("acme-corp");
  assert.equal(await corp.read("/secret.txt"), { error: "File '/secret.txt' not found" });
  assert.equal(await corp.ls("/"), { files: [] });
  assert.equal(await corp.grep("secret"), { matches: [] });
  assert.equal(await corp.search({ pattern: "SECRET", ignoreCase: true }), { matches: [] });
  // A stream is a cursor the role's own transaction reads: the policy applies to it as well.
  for await (const m of corp.searchStream({ pattern: "secret", ignoreCase: true })) assert.unreachable(m.path);
  for await (const m of corp.grepStream("secret")) assert.unreachable(m.path);
  assert.equal(await corp.glob("**"), { files: [] });
  assert.equal((await corp.downloadFiles(["/secret.txt"]))[0].error, "file_not_found");
  assert.equal(await corp.stat("/secret.txt"), { error: "File '/secret.txt' not found" });
  assert.match(
    (await corp.write("/secret.txt", "pwned")).error!,
    /^Error: permission denied during write in workspace 'acme-corp': new row violates row-level security policy/,
  );
  assert.match(
    (await corp.write("/new.txt", "pwned")).error!,
    /^Error: permission denied during write in workspace 'acme-corp': /,
  );
  assert.equal(await corp.edit("/secret.txt", "secret", "pwned"), { error: "Error: File '/secret.txt' not found" });
  assert.equal(await corp.delete("/"), { error: "Error: File '/' not found" });
  assert.equal(
    (
      await corp.uploadFiles([
        ["/x.txt", Buffer.from("pwned")],
        ["/y.txt", Buffer.from("pwned")],
      ])
    ).map((u) => u.error),
    ["permission_denied", "permission_denied"],
  );
  // Workspaces granted to a role it belongs to count: "globex" via GROUP.
  assert.is(
    (await restricted.withWorkspace("globex").readRaw("/secret.txt")).data!.content,
    "globex secret\nsecond line of globex\n",
  );
  assert.equal(await foreignSnapshot(), snapshot);
});

test("raw SQL as the restricted role cannot read or modify another workspace's rows", async () => {
  const snapshot = await foreignSnapshot();
  const c = await connectAs(ROLE);
  const notices: string[] = [];
  c.on("notice", (n) => notices.push(n.message ?? ""));
  const one = async (sql: string, values: unknown[] = []) => (await c.query(sql, values)).rows;
  const fails = async (sql: string, pattern: RegExp) => {
    try {
      await c.query(sql);
    } catch (e) {
      assert.match((e as Error).message, pattern, sql);
      return;
    }
    assert.unreachable(`should have failed: ${sql}`);
  };
  const s = SCHEMA;
  // Reads: only granted workspaces, in every table.
  for (const table of ["files", "changes", "changes_horizon"]) {
    const rows = await one(`SELECT DISTINCT workspace FROM ${s}.${table} ORDER BY 1`);
    assert.equal(
      rows.map((r) => r.workspace),
      ["acme", "globex"],
      table,
    );
  }
  // Chunks belong to chunk sets (0010): the role sees exactly the sets of the files it sees.
  const sets = async (sql: string) => (await one(sql)).map((r) => String(r.chunk_set));
  assert.equal(
    await sets(`SELECT DISTINCT chunk_set FROM ${s}.chunks ORDER BY 1`),
    (
      await admin.query(
        `SELECT DISTINCT c.chunk_set FROM ${s}.chunks c JOIN ${s}.files f ON f.chunk_set = c.chunk_set
       WHERE f.workspace IN ('acme', 'globex') ORDER BY 1`,
      )
    ).rows.map((r) => String(r.chunk_set)),
  );
  assert.ok((await sets(`SELECT DISTINCT chunk_set FROM ${s}.chunks`)).length > 0);
  assert.equal((await one(`SELECT count(*)::int AS n FROM ${s}.files WHERE workspace = 'acme-corp'`))[0].n, 0);
  assert.equal(
    (await one(`SELECT role_name, workspace FROM ${s}.workspace_grants ORDER BY 2`)).map((r) => [
      r.role_name,
      r.workspace,
    ]),
    [
      [ROLE, "acme"],
      [GROUP, "globex"],
    ],
  );
  // Where a stream's second connection starts (0025): the sizes of files it can read, no others.
  const splitSql = `SELECT ${s}.fs_search_split($1, '/', true, 4, 0) AS bounds`;
  const split = async (ws: string) => (await one(splitSql, [ws]))[0].bounds as string[];
  assert.equal((await admin.query(splitSql, ["acme-corp"])).rows[0].bounds, ["/secret.txt"], "the owner sees it");
  assert.equal(await split("acme-corp"), []);
  assert.equal(await split("acme"), ["/secret.txt"]);
  assert.equal(await one(`SELECT * FROM ${s}.fs_read('acme-corp', '/secret.txt', 0, 10)`), []);
  assert.equal(await one(`SELECT * FROM ${s}.fs_grep('acme-corp', '/', false, NULL, NULL, false, 'secret', NULL)`), []);
  assert.equal(
    await one(`SELECT * FROM ${s}.fs_download('acme-corp', ARRAY['/secret.txt'])`).then((r) => r.map((x) => x.content)),
    [null],
  );
  // A leaky function of its own (pg_temp needs no privilege) sees only rows the policy let through.
  await c.query(
    `CREATE FUNCTION pg_temp.peek(text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS $$ BEGIN RAISE NOTICE 'peek: %', $1; RETURN true; END $$`,
  );
  await c.query(`SELECT path FROM ${s}.files WHERE pg_temp.peek(content)`);
  await c.query(`SELECT chunk_set FROM ${s}.chunks WHERE pg_temp.peek(content)`);
  assert.ok(notices.length > 0);
  assert.equal(
    notices.filter((n) => n.includes("acme-corp")),
    [],
  );
  // Planner statistics of RLS tables are hidden from it (pg_stats would show common values).
  await admin.query(`ANALYZE ${s}.files, ${s}.chunks`);
  assert.equal(
    (
      await one(`SELECT count(*)::int AS n FROM pg_stats WHERE schemaname = $1 AND tablename IN ('files', 'chunks')`, [
        s,
      ])
    )[0].n,
    0,
  );
  // Writes: invisible rows are untouched; rows cannot be moved or created in another workspace.
  assert.is((await c.query(`UPDATE ${s}.files SET content = 'pwned' WHERE workspace = 'acme-corp'`)).rowCount, 0);
  assert.is((await c.query(`DELETE FROM ${s}.files WHERE workspace NOT IN ('acme', 'globex')`)).rowCount, 0);
  await fails(`DELETE FROM ${s}.chunks`, /permission denied for table chunks/);
  await fails(
    `INSERT INTO ${s}.files (workspace, path, content, mime_type, size, line_count) VALUES ('acme-corp', '/evil.txt', 'x', 'text/plain', 1, 1)`,
    /new row violates row-level security policy for table "files"/,
  );
  await fails(
    `UPDATE ${s}.files SET workspace = 'acme-corp' WHERE workspace = 'acme' AND path = '/secret.txt'`,
    /new row violates row-level security policy/,
  );
  await fails(
    `SELECT * FROM ${s}.fs_write('acme-corp', '/evil.txt', 'x', NULL, 'text/plain', NULL)`,
    /new row violates row-level security policy/,
  );
  assert.is((await one(`SELECT ${s}.fs_delete('acme-corp', '/') AS n`))[0].n, "0");
  await fails(`TRUNCATE ${s}.files`, /permission denied for table files/);
  await fails(
    `INSERT INTO ${s}.changes (workspace, path, op, version, size) VALUES ('acme-corp', '/x', 'create', 1, 1)`,
    /permission denied for table changes/,
  );
  await fails(`DELETE FROM ${s}.changes`, /permission denied for table changes/);
  await fails(
    `INSERT INTO ${s}.workspace_grants (role_name, workspace) VALUES ('${ROLE}', 'acme-corp')`,
    /permission denied for table workspace_grants/,
  );
  await fails(`SELECT ${s}.grant_workspace('${ROLE}', 'acme-corp')`, /permission denied for function grant_workspace/);
  await fails(`ALTER TABLE ${s}.files DISABLE ROW LEVEL SECURITY`, /must be owner of table files/);
  await fails(
    `SET row_security = off; SELECT count(*) FROM ${s}.files`,
    /query would be affected by row-level security policy for table "files"/,
  );
  await c.query("RESET row_security");
  assert.equal(await foreignSnapshot(), snapshot);
});

test("rowLevelSecurity: true refuses an unrestricted role, an ungranted workspace and a role with no grant, clearly", async () => {
  const asOwner = track(
    new PostgresBackend({
      connectionString: url,
      schema: SCHEMA,
      workspace: "acme",
      rowLevelSecurity: true,
      minPoolSize: 0,
    }),
  );
  const superuser = (await admin.query("SELECT current_user AS u")).rows[0].u;
  await asOwner.initialize().then(
    () => assert.unreachable("the owner must be refused"),
    (e) =>
      assert.match(
        e.message,
        new RegExp(`^rowLevelSecurity is on, but row-level security does not apply to role "${superuser}"`),
      ),
  );
  const ungranted = track(
    new PostgresBackend({
      connectionString: roleUrl(ROLE),
      schema: SCHEMA,
      workspace: "acme-corp",
      rowLevelSecurity: true,
      minPoolSize: 0,
    }),
  );
  await ungranted.initialize().then(
    () => assert.unreachable("an ungranted workspace must be refused"),
    (e) =>
      assert.is(
        e.message,
        `Workspace "acme-corp" is not granted to role "${ROLE}": grantWorkspace(pool, "${SCHEMA}", "${ROLE}", workspace) as the schema owner`,
      ),
  );
  const nobody = track(
    new PostgresBackend({
      connectionString: roleUrl(NOBODY),
      schema: SCHEMA,
      workspace: "acme",
      rowLevelSecurity: true,
      minPoolSize: 0,
    }),
  );
  await nobody.initialize().then(
    () => assert.unreachable("a role without grants must be refused"),
    (e) =>
      assert.match(
        e.message,
        /^rowLevelSecurity: this role cannot read schema ".*" \(permission denied for schema .*\); grant it a workspace first/,
      ),
  );
  // Operations report it as a result instead of throwing.
  assert.match(
    (await nobody.read("/secret.txt")).error!,
    /^Error: storage failure during read: rowLevelSecurity: this role cannot read schema/,
  );
  await grantWorkspace(owner.pool, SCHEMA, "", "acme").then(
    () => assert.unreachable("an empty role name must be refused"),
    (e) => assert.match(e.message, /^Invalid role name "": /),
  );
  await grantWorkspace(owner.pool, SCHEMA, `missing_${suffix}`, "acme").then(
    () => assert.unreachable("an unknown role must be refused"),
    (e) => assert.match(e.message, /^role "missing_.*" does not exist$/),
  );
});

test("revokeWorkspace: the workspace disappears for the role; with its last grant, so do its privileges", async () => {
  assert.is(await grantWorkspace(owner.pool, SCHEMA, ROLE, "acme"), false); // already granted
  assert.is(await revokeWorkspace(owner.pool, SCHEMA, ROLE, "acme"), true);
  const c = await connectAs(ROLE);
  // Still a member of GROUP (globex): that grant and its privileges remain.
  assert.equal(
    (await c.query(`SELECT DISTINCT workspace FROM ${SCHEMA}.files`)).rows.map((r) => r.workspace),
    ["globex"],
  );
  assert.is(await revokeWorkspace(owner.pool, SCHEMA, GROUP, "globex"), true);
  assert.is(await revokeWorkspace(owner.pool, SCHEMA, GROUP, "globex"), false);
  await c.query(`SELECT count(*) FROM ${SCHEMA}.files`).then(
    () => assert.unreachable("privileges must be gone"),
    (e) => assert.match(e.message, /permission denied for (schema|table)/),
  );
  // The owner's view is unchanged.
  assert.is((await owner.readRaw("/secret.txt")).data!.content, "acme secret\nsecond line of acme\n");
});

test("reverting 0004 takes a restricted role's privileges back (without RLS they would reach every workspace)", async () => {
  await grantWorkspace(owner.pool, SCHEMA, NOBODY, "acme");
  const c = await connectAs(NOBODY);
  assert.equal(
    (await c.query(`SELECT DISTINCT workspace FROM ${SCHEMA}.files`)).rows.map((r) => r.workspace),
    ["acme"],
  );
  const reverted = await migrate({
    connectionString: url,
    schema: SCHEMA,
    direction: "down",
    count: ALL.length - before,
  });
  assert.is(reverted.at(-1)!.name, "0004_row_level_security");
  await c.query(`SELECT count(*) FROM ${SCHEMA}.files`).then(
    () => assert.unreachable("privileges must be gone"),
    (e) => assert.match(e.message, /permission denied for schema/),
  );
  const legacy = await connectAs(LEGACY); // had every workspace before: keeps its privileges
  assert.equal(
    (await legacy.query(`SELECT DISTINCT workspace FROM ${SCHEMA}.files ORDER BY 1`)).rows.map((r) => r.workspace),
    ["acme", "acme-corp", "globex"],
  );
  await migrate({ connectionString: url, schema: SCHEMA });
  assert.equal(
    (await legacy.query(`SELECT DISTINCT workspace FROM ${SCHEMA}.files ORDER BY 1`)).rows.map((r) => r.workspace),
    ["acme", "acme-corp", "globex"],
  );
});

test.run();
