/**
 * Migrations install into an existing database without touching what else lives there. Each
 * case gets a database of its own, so pg_trgm's presence (or absence) is under the test's control.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import pg from "pg";
import { migrate, PostgresBackend } from "../src/index.js";
import { migrationLockValue, shippedMigrations } from "../src/postgres/migrate.js";
import { adminClient, databaseUrl, uniqueName } from "./helpers/db.js";

const admin = await adminClient();
const ALL = await shippedMigrations(); // ["0001_files", "0002_changes", ...]
const created: string[] = [];

async function freshDatabase(): Promise<string> {
  const name = uniqueName("mig");
  await admin.query(`CREATE DATABASE ${name}`);
  created.push(name);
  const url = new URL(await databaseUrl());
  url.pathname = `/${name}`;
  return url.toString();
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const objectsIn = (url: string, schema: string) =>
  withClient(url, async (c) => {
    const { rows } = await c.query(
      // Tables, indexes and functions of ours; members of an extension (pg_trgm) are not ours.
      `SELECT c.relname AS name FROM pg_class c WHERE c.relnamespace = to_regnamespace($1)
       UNION ALL
       SELECT p.proname FROM pg_proc p WHERE p.pronamespace = to_regnamespace($1)
         AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
       ORDER BY 1`,
      [schema],
    );
    return rows.map((r) => r.name as string);
  });

const trgmSchema = (url: string) =>
  withClient(
    url,
    async (c) =>
      (await c.query("SELECT extnamespace::regnamespace::text AS s FROM pg_extension WHERE extname = 'pg_trgm'"))
        .rows[0]?.s ?? null,
  );

const roles: string[] = []; // login roles made by ownerRole() below, dropped with the databases

test.after(async () => {
  for (const name of created) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  for (const role of roles)
    await admin
      .query(`DROP ROLE IF EXISTS ${role}`)
      .catch((e) => console.log(`could not drop role ${role}: ${e.message}`));
  await admin.end();
});

test("fresh install, re-run is a no-op, and the backend works on it", async () => {
  const url = await freshDatabase();
  const first = await migrate({ connectionString: url });
  assert.equal(
    first.map((m) => m.name),
    ALL,
  );
  assert.equal(await migrate({ connectionString: url }), []);
  assert.is(await trgmSchema(url), "public"); // it was missing: installed where every schema can use it
  const objects = await objectsIn(url, "deepagents");
  for (const name of ["files", "chunks", "migrations", "fs_grep", "fs_edit", "chunks_content_trgm_idx"])
    assert.ok(objects.includes(name), name);
  const b = new PostgresBackend({ connectionString: url, workspace: "w" });
  await b.initialize({ migrate: false });
  await b.write("/a.txt", "hello");
  assert.equal((await b.grep("hell")).matches, [{ path: "/a.txt", line: 1, text: "hello" }]);
  await b.close();
});

test("initialize({ migrate: false }) on an empty database says what to do", async () => {
  const url = await freshDatabase();
  const b = new PostgresBackend({ connectionString: url, schema: "nothing_here" });
  try {
    await b.initialize({ migrate: false });
    assert.unreachable("should have thrown");
  } catch (e) {
    assert.match(
      (e as Error).message,
      new RegExp(`Schema "nothing_here" is not up to date \\(missing migrations: ${ALL.join(", ")}\\)`),
    );
  }
  await b.close();
});

test("four concurrent migrate() calls apply each migration exactly once", async () => {
  const url = await freshDatabase();
  const results = await Promise.all(
    Array.from({ length: 4 }, () => migrate({ connectionString: url, schema: "conc" })),
  );
  assert.is(results.flat().length, ALL.length);
  const rows = await withClient(url, async (c) => (await c.query("SELECT name FROM conc.migrations ORDER BY id")).rows);
  assert.equal(
    rows.map((r) => r.name),
    ALL,
  );
});

test("down removes only what it created; up again restores it", async () => {
  const url = await freshDatabase();
  await migrate({ connectionString: url, schema: "roundtrip" });
  const down = await migrate({ connectionString: url, schema: "roundtrip", direction: "down" });
  assert.equal(
    down.map((m) => m.name),
    [...ALL].reverse(),
  );
  assert.equal(await objectsIn(url, "roundtrip"), []);
  assert.is(
    await withClient(url, async (c) => (await c.query("SELECT to_regnamespace('roundtrip') AS s")).rows[0].s),
    null,
  );
  assert.is(await trgmSchema(url), "public"); // database-wide: down never removes it
  assert.equal(await migrate({ connectionString: url, schema: "roundtrip", direction: "down" }), []); // nothing left
  assert.equal(
    (await migrate({ connectionString: url, schema: "roundtrip" })).map((m) => m.name),
    ALL,
  );
});

test("installs beside public.pg_trgm and another app's node-pg-migrate table, touching neither", async () => {
  const url = await freshDatabase();
  await withClient(url, async (c) => {
    await c.query("CREATE EXTENSION pg_trgm SCHEMA public");
    await c.query(
      "CREATE TABLE public.pgmigrations (id serial PRIMARY KEY, name varchar(255) NOT NULL, run_on timestamp NOT NULL)",
    );
    await c.query("INSERT INTO public.pgmigrations (name, run_on) VALUES ('1700000000000_their-app', now())");
    await c.query("CREATE TABLE public.customers (id int PRIMARY KEY, name text)");
    await c.query("INSERT INTO public.customers VALUES (1, 'ada')");
    await c.query("CREATE INDEX customers_name_trgm ON public.customers USING gin (name public.gin_trgm_ops)");
    // Their migrator holds the default node-pg-migrate lock: ours must not wait for it.
    await c.query("SELECT pg_advisory_lock(7241865325823964)");
    await migrate({ connectionString: url, schema: "agents" });
    await c.query("SELECT pg_advisory_unlock(7241865325823964)");
  });
  assert.is(await trgmSchema(url), "public");
  const opclass = await withClient(
    url,
    async (c) =>
      (
        await c.query(
          `SELECT o.opcnamespace::regnamespace::text || '.' || o.opcname AS name FROM pg_index i
       JOIN pg_opclass o ON o.oid = i.indclass[0] WHERE i.indexrelid = 'agents.chunks_content_trgm_idx'::regclass`,
        )
      ).rows[0].name,
  );
  assert.is(opclass, "public.gin_trgm_ops");
  const b = new PostgresBackend({ connectionString: url, schema: "agents", workspace: "w" });
  await b.write("/x.md", "trigram search works");
  assert.is((await b.grep("search")).matches!.length, 1);
  await b.close();

  await migrate({ connectionString: url, schema: "agents", direction: "down" });
  const theirs = await withClient(url, async (c) => ({
    migrations: (await c.query("SELECT name FROM public.pgmigrations")).rows.map((r) => r.name),
    customers: (await c.query("SELECT name FROM public.customers")).rows.map((r) => r.name),
    trgm: (await c.query("SELECT extnamespace::regnamespace::text AS s FROM pg_extension WHERE extname = 'pg_trgm'"))
      .rows[0].s,
    index: (await c.query("SELECT 1 FROM pg_indexes WHERE indexname = 'customers_name_trgm'")).rowCount,
  }));
  assert.equal(theirs, { migrations: ["1700000000000_their-app"], customers: ["ada"], trgm: "public", index: 1 });
});

test("down keeps the pg_trgm it installed while another schema's index still uses it", async () => {
  const url = await freshDatabase();
  await migrate({ connectionString: url, schema: "first" }); // installs pg_trgm into public
  await migrate({ connectionString: url, schema: "second" }); // reuses it
  await migrate({ connectionString: url, schema: "first", direction: "down" });
  assert.is(await trgmSchema(url), "public");
  assert.equal(await objectsIn(url, "first"), []); // our tables and functions are gone
  const b = new PostgresBackend({ connectionString: url, schema: "second", workspace: "w" });
  await b.write("/still.txt", "works fine");
  assert.is((await b.grep("fine")).matches!.length, 1);
  await b.close();
});

test("two schemas in one database migrate independently, under different locks", async () => {
  const url = await freshDatabase();
  assert.is.not(migrationLockValue("one"), migrationLockValue("two"));
  await Promise.all([
    migrate({ connectionString: url, schema: "one" }),
    migrate({ connectionString: url, schema: "two" }),
  ]);
  const a = new PostgresBackend({ connectionString: url, schema: "one", workspace: "w" });
  const b = new PostgresBackend({ connectionString: url, schema: "two", workspace: "w" });
  await a.write("/only-in-one.txt", "1");
  assert.equal((await b.ls("/")).files, []);
  await Promise.all([a.close(), b.close()]);
});

test("upgrading a schema with files to chunks (0003) cuts the existing files, and down restores whole-file search", async () => {
  const url = await freshDatabase();
  const before = ALL.indexOf("0003_chunks");
  assert.ok(before > 0, "0003_chunks is shipped");
  await migrate({ connectionString: url, schema: "up", count: before }); // the schema as released before chunks
  const big = Array.from({ length: 2000 }, (_, i) => `line ${i}${i === 1500 ? " needle" : ""}`).join("\n") + "\n";
  await withClient(url, async (c) => {
    await c.query("SELECT * FROM up.fs_write('w', '/big.txt', $1, NULL, 'text/plain', NULL)", [big]);
    await c.query("SELECT * FROM up.fs_write('w', '/empty.txt', '', NULL, 'text/plain', NULL)");
    await c.query("SELECT * FROM up.fs_write('w', '/bin', NULL, '\\x00ff'::bytea, 'application/octet-stream', NULL)");
  });
  await migrate({ connectionString: url, schema: "up" });
  const b = new PostgresBackend({ connectionString: url, schema: "up", workspace: "w" });
  try {
    assert.equal((await b.grep("needle")).matches, [{ path: "/big.txt", line: 1501, text: "line 1500 needle" }]);
    assert.is((await b.read("/big.txt", 1499, 2)).content, "line 1499\nline 1500 needle");
    const chunks = await withClient(
      url,
      async (c) =>
        (
          await c.query(
            "SELECT f.path, count(*)::int AS n FROM up.chunks c JOIN up.files f USING (chunk_set) GROUP BY f.path ORDER BY f.path",
          )
        ).rows,
    );
    assert.equal(
      chunks.map((r) => r.path),
      ["/big.txt", "/empty.txt"],
      "text files only",
    );
    assert.ok(chunks[0].n > 1, "the big file is in several chunks");
    await migrate({ connectionString: url, schema: "up", direction: "down", count: ALL.length - before });
    assert.equal((await b.grep("needle")).matches, [{ path: "/big.txt", line: 1501, text: "line 1500 needle" }]);
    assert.is((await b.read("/big.txt", 1499, 2)).content, "line 1499\nline 1500 needle");
    assert.not.ok((await objectsIn(url, "up")).includes("chunks"));
    assert.ok((await objectsIn(url, "up")).includes("files_content_trgm_idx"));
  } finally {
    await b.close();
  }
});

// ---- pg_trgm shared by several owners (issue 11, item 2) ------------------------------------
const PASSWORD = uniqueName("pw");
/** A login role that owns nothing yet; `createOnDatabase`: it may create schemas (and trusted extensions). */
async function ownerRole(dbUrl: string, createOnDatabase = true): Promise<{ role: string; url: string }> {
  const role = uniqueName("owner");
  await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${PASSWORD}'`);
  roles.push(role);
  const db = new URL(dbUrl).pathname.slice(1);
  if (createOnDatabase) await admin.query(`GRANT CREATE ON DATABASE ${db} TO ${role}`);
  const u = new URL(dbUrl);
  u.username = role;
  u.password = PASSWORD;
  return { role, url: u.toString() };
}

async function greps(url: string, schema: string): Promise<number> {
  const b = new PostgresBackend({ connectionString: url, schema, workspace: "w" });
  try {
    await b.initialize({ migrate: false });
    await b.write(`/${schema}.txt`, "a trigram needle");
    return (await b.grep("needle")).matches!.length;
  } finally {
    await b.close();
  }
}

for (const order of ["A then B", "B then A"]) {
  test(`two non-superuser owners migrate their own schemas into one database (${order}); down of the first keeps the second`, async () => {
    const url = await freshDatabase(); // no pg_trgm; public is not writable for them (PostgreSQL 15+)
    const a = await ownerRole(url);
    const b = await ownerRole(url);
    const [first, second] = order === "A then B" ? [a, b] : [b, a];
    const schemas = new Map([
      [first, `s_${first.role}`],
      [second, `s_${second.role}`],
    ]);
    await migrate({ connectionString: first.url, schema: schemas.get(first) });
    const home = await trgmSchema(url);
    assert.ok(home === "public" || home === "extensions", `pg_trgm lives in ${home}`);
    assert.ok(![...schemas.values()].includes(home!), "never inside one application's schema");
    await migrate({ connectionString: second.url, schema: schemas.get(second) });
    assert.is(await greps(second.url, schemas.get(second)!), 1);
    await migrate({ connectionString: first.url, schema: schemas.get(first), direction: "down" });
    assert.is(await trgmSchema(url), home);
    assert.is(await greps(second.url, schemas.get(second)!), 1);
    const index = await withClient(
      url,
      async (c) =>
        (await c.query("SELECT to_regclass($1) IS NOT NULL AS ok", [`${schemas.get(second)}.chunks_content_trgm_idx`]))
          .rows[0].ok,
    );
    assert.ok(index, "the second schema's trigram index survived");
    // Even a DROP SCHEMA ... CASCADE of the first owner's schema cannot reach it now.
    await migrate({ connectionString: first.url, schema: schemas.get(first) });
    await withClient(first.url, (c) => c.query(`DROP SCHEMA ${schemas.get(first)} CASCADE`));
    assert.is(await greps(second.url, schemas.get(second)!), 1);
  });
}

test("a pg_trgm an older version installed inside an owner's schema: moved out when a superuser migrates; otherwise a warning there and a clear error for the next owner", async () => {
  // As a superuser (who owns the extension's objects), migrate moves it.
  const url = await freshDatabase();
  await withClient(url, async (c) => {
    await c.query("CREATE SCHEMA legacy");
    await c.query("CREATE EXTENSION pg_trgm SCHEMA legacy"); // what 0001 did when pg_trgm was missing
  });
  await migrate({ connectionString: url, schema: "legacy" });
  assert.is(await trgmSchema(url), "public");
  // ... also when it is inside another schema of this package, not the one being migrated.
  const url1 = await freshDatabase();
  await withClient(url1, async (c) => {
    await c.query("CREATE SCHEMA older");
    await c.query("CREATE EXTENSION pg_trgm SCHEMA older");
  });
  await migrate({ connectionString: url1, schema: "older" }); // moves it out of "older" ...
  await withClient(url1, (c) => c.query("ALTER EXTENSION pg_trgm SET SCHEMA older")); // ... put back, as an older version left it
  await migrate({ connectionString: url1, schema: "newer" });
  assert.is(await trgmSchema(url1), "public");
  assert.is(await greps(url1, "newer"), 1);
  // As a plain owner: its own schema keeps working (with a warning); another owner is told what to run.
  const url2 = await freshDatabase();
  const a = await ownerRole(url2);
  const b = await ownerRole(url2);
  const schemaA = `s_${a.role}`;
  await withClient(a.url, async (c) => {
    await c.query(`CREATE SCHEMA ${schemaA}`);
    await c.query(`CREATE EXTENSION pg_trgm SCHEMA ${schemaA}`);
  });
  const messages: string[] = [];
  await migrate({ connectionString: a.url, schema: schemaA, log: (m) => messages.push(m) });
  assert.ok(
    messages.some(
      (m) =>
        m.startsWith(`WARNING: pg_trgm lives inside schema "${schemaA}"`) &&
        m.endsWith("a superuser runs: ALTER EXTENSION pg_trgm SET SCHEMA public;"),
    ),
    messages.join("\n"),
  );
  assert.is(await greps(a.url, schemaA), 1);
  const refused = await migrate({ connectionString: b.url, schema: `s_${b.role}` }).then(
    () => null,
    (e: Error) => e,
  );
  assert.match(
    refused?.message ?? "",
    new RegExp(
      `^pg_trgm is installed in schema "${schemaA}", which role "${b.role}" cannot use; a superuser runs: ALTER EXTENSION pg_trgm SET SCHEMA public;`,
    ),
  );
  assert.equal(await objectsIn(url2, `s_${b.role}`), []);
  await withClient(url2, (c) => c.query("ALTER EXTENSION pg_trgm SET SCHEMA public"));
  await migrate({ connectionString: b.url, schema: `s_${b.role}` });
  assert.is(await greps(b.url, `s_${b.role}`), 1);
  assert.is(await greps(a.url, schemaA), 1);
});

test("pg_trgm missing or unusable and the role cannot fix it: one clear error naming the DBA's command, nothing changed", async () => {
  const url = await freshDatabase();
  const c = await ownerRole(url, false); // no CREATE on the database
  const schema = `s_${c.role}`;
  await withClient(url, (x) => x.query(`CREATE SCHEMA ${schema} AUTHORIZATION ${c.role}`));
  const missing = await migrate({ connectionString: c.url, schema }).then(
    () => null,
    (e: Error) => e,
  );
  assert.ok(missing, "must fail");
  assert.match(
    missing!.message,
    /^pg_trgm is not installed, and role "owner_\w+" may not create it .*a database owner or superuser runs: CREATE EXTENSION pg_trgm SCHEMA public;$/,
  );
  assert.not.match(missing!.message, /\n/);
  assert.equal(await objectsIn(url, schema), []);
  assert.is(await trgmSchema(url), null);
  // Installed by the DBA in a schema the role may not use: the error names the GRANT.
  await withClient(url, async (x) => {
    await x.query("CREATE SCHEMA private_ext");
    await x.query("CREATE EXTENSION pg_trgm SCHEMA private_ext");
  });
  const unusable = await migrate({ connectionString: c.url, schema }).then(
    () => null,
    (e: Error) => e,
  );
  assert.match(
    unusable?.message ?? "",
    /pg_trgm is installed in schema "private_ext", which role "owner_\w+" cannot use; a superuser runs: ALTER EXTENSION pg_trgm SET SCHEMA public; \(or, to leave it there: GRANT USAGE ON SCHEMA private_ext TO owner_\w+;\)/,
  );
  await withClient(url, (x) => x.query(`GRANT USAGE ON SCHEMA private_ext TO ${c.role}`));
  await migrate({ connectionString: c.url, schema });
  assert.is(await greps(c.url, schema), 1);
});

test("0006 (search line semantics) down puts 0003's fs_search back and grep still works; up again answers per line", async () => {
  const url = await freshDatabase();
  const at = ALL.indexOf("0006_search_line_semantics");
  assert.ok(at > 0, "0006 is shipped");
  await migrate({ connectionString: url, schema: "lines" });
  const signatures = () =>
    withClient(
      url,
      async (c) =>
        (
          await c.query(
            "SELECT p.oid::regprocedure::text AS s, p.proconfig FROM pg_proc p WHERE p.pronamespace = 'lines'::regnamespace AND p.proname = 'fs_search'",
          )
        ).rows,
    );
  const b = new PostgresBackend({ connectionString: url, schema: "lines", workspace: "w" });
  try {
    await b.write("/edge.txt", "xfoo\nbar\n");
    const [now] = await signatures();
    assert.match(now.s, /fs_search\(.*,bigint,text\)$/);
    assert.ok(now.proconfig.includes("search_path=lines, pg_temp"), now.proconfig.join());
    assert.equal((await b.search({ pattern: "foo(?!\\s)", regex: true })).matches, [
      { path: "/edge.txt", line: 1, text: "xfoo" },
    ]);
    await migrate({ connectionString: url, schema: "lines", direction: "down", count: ALL.length - at });
    const back = await signatures();
    assert.equal(back.length, 1);
    assert.match(back[0].s, /fs_search\(.*,boolean,boolean,bigint\)$/);
    assert.ok(back[0].proconfig.includes("search_path=lines, pg_temp"), back[0].proconfig.join());
    assert.equal((await b.grep("foo")).matches, [{ path: "/edge.txt", line: 1, text: "xfoo" }]); // fs_grep's call resolves
    await migrate({ connectionString: url, schema: "lines" });
    assert.equal((await b.search({ pattern: "(?<!\\s)bar", regex: true })).matches, [
      { path: "/edge.txt", line: 2, text: "bar" },
    ]);
  } finally {
    await b.close();
  }
});

/** The history triggers on files once every migration is applied (0009's three; 0015 dropped 0012's two). */
// (0019's fires before files_chunks_update, hence its name)
const NEWEST_HISTORY_TRIGGERS = ["files_a_history_updated", "files_history_deleted", "files_history_inserted"];

/**
 * A path's history as fs_history answers it at whatever migration the schema is at (through SQL:
 * the backend's own statement reads columns later migrations added).
 */
async function historyAt(url: string, schema: string, workspace: string, path: string) {
  const { rows } = await withClient(url, (c) =>
    c.query(`SELECT version::int, op, nullif(change_id, 0)::int AS change_id FROM ${schema}.fs_history($1, $2)`, [
      workspace,
      path,
    ]),
  );
  return rows as Array<{ version: number; op: string; change_id: number | null }>;
}

test("0009 (set-based history) continues 0008's history across the upgrade; down puts the row trigger back", async () => {
  const url = await freshDatabase();
  const at = ALL.indexOf("0009_set_based_history");
  assert.ok(at > 0, "0009 is shipped");
  await migrate({ connectionString: url, schema: "hist", count: at }); // up to 0008
  const sql = (statement: string) => withClient(url, (c) => c.query(`SET search_path = hist; ${statement}`));
  const write = (path: string, text: string) =>
    sql(`SELECT * FROM fs_write('w', '${path}', '${text}', NULL, 'text/plain', NULL)`);
  const remove = (path: string) => sql(`SELECT * FROM fs_delete('w', '${path}')`);
  const upload = (paths: string[]) =>
    sql(`SELECT fs_upload('w', ARRAY[${paths.map((p) => `'${p}'`)}], ARRAY[${paths.map((p) => `'${p}'`)}],
                          ARRAY[${paths.map(() => "NULL")}]::bytea[], ARRAY[${paths.map(() => "'text/plain'")}])`);
  const triggers = async () =>
    (
      await withClient(url, (c) =>
        c.query(
          `SELECT tgname FROM pg_trigger WHERE tgrelid = 'hist.files'::regclass AND tgname LIKE 'files%history%' ORDER BY 1`,
        ),
      )
    ).rows.map((r) => r.tgname);
  await write("/a.txt", "one");
  await write("/a.txt", "two");
  await upload(["/b.txt", "/c.txt"]);
  await remove("/b.txt");
  await migrate({ connectionString: url, schema: "hist" });
  assert.equal(await triggers(), NEWEST_HISTORY_TRIGGERS);
  await remove("/a.txt");
  await upload(["/d.txt"]);
  const b = new PostgresBackend({ connectionString: url, schema: "hist", workspace: "w" });
  try {
    const ops = async (path: string) => (await historyAt(url, "hist", "w", path)).map((v) => `${v.op}:${v.version}`);
    assert.equal(await ops("/a.txt"), ["create:1", "update:2", "delete:2"]);
    assert.is((await b.readVersion("/a.txt", 2)).content, "two");
    assert.equal(await ops("/b.txt"), ["create:1", "delete:1"]);
    assert.equal(await ops("/d.txt"), ["create:1"]);
    assert.is((await b.restore("/a.txt", 1)).version, 3);

    await migrate({ connectionString: url, schema: "hist", direction: "down", count: ALL.length - at });
    assert.equal(await triggers(), ["files_history"]);
    await remove("/d.txt");
    await upload(["/e.txt"]);
    assert.equal(await ops("/d.txt"), ["create:1", "delete:1"]);
    assert.equal(await ops("/e.txt"), ["create:1"]);
    await migrate({ connectionString: url, schema: "hist" });
    assert.equal(await triggers(), NEWEST_HISTORY_TRIGGERS);
  } finally {
    await b.close();
  }
});

test("0010 (shared chunks) keys the chunks of existing files by set; forks share them; down cuts per file again", async () => {
  const url = await freshDatabase();
  const at = ALL.indexOf("0010_shared_chunks");
  assert.ok(at > 0, "0010 is shipped");
  await migrate({ connectionString: url, schema: "sets", count: at }); // up to 0009
  const big = Array.from({ length: 3000 }, (_, i) => `row ${i}${i === 2500 ? " needle" : ""}`).join("\n") + "\n";
  await withClient(url, async (c) => {
    await c.query("SELECT * FROM sets.fs_write('w', '/big.txt', $1, NULL, 'text/plain', NULL)", [big]);
    await c.query("SELECT * FROM sets.fs_write('w', '/bin', NULL, '\\x00ff'::bytea, 'application/octet-stream', NULL)");
  });
  await migrate({ connectionString: url, schema: "sets" });
  const b = new PostgresBackend({ connectionString: url, schema: "sets", workspace: "w" });
  const needle = [{ path: "/big.txt", line: 2501, text: "row 2500 needle" }];
  try {
    assert.equal((await b.grep("needle")).matches, needle);
    assert.is((await b.read("/big.txt", 2499, 2)).content, "row 2499\nrow 2500 needle");
    assert.equal((await b.history("/big.txt")).versions?.length, 1, "no version or change for the renumbering");
    assert.equal((await b.fork("w2")).files, 2);
    const w2 = b.withWorkspace("w2");
    assert.equal((await w2.grep("needle")).matches, needle);
    const rows = async () =>
      (await withClient(url, (c) => c.query("SELECT count(*)::int AS n FROM sets.chunks"))).rows[0].n as number;
    const shared = await rows();
    await migrate({ connectionString: url, schema: "sets", direction: "down", count: ALL.length - at });
    assert.is(await rows(), shared * 2, "each workspace has its own chunks again");
    assert.equal((await b.grep("needle")).matches, needle);
    assert.equal((await w2.grep("needle")).matches, needle);
    assert.is((await w2.read("/big.txt", 2499, 2)).content, "row 2499\nrow 2500 needle");
    await w2.edit("/big.txt", "row 2500 needle", "row 2500 pin");
    assert.equal((await b.grep("needle")).matches, needle);
    await migrate({ connectionString: url, schema: "sets" });
    assert.equal(
      (await w2.grep("pin")).matches?.map((m) => m.line),
      [2501],
    );
    assert.equal((await b.grep("needle")).matches, needle);
  } finally {
    await b.close();
  }
});

test("0019 (history of UPDATEs per statement, no blob foreign key) continues 0018's history; down puts the row trigger and the key back", async () => {
  const url = await freshDatabase();
  const at = ALL.indexOf("0019_set_based_update_history");
  assert.ok(at > 0, "0019 is shipped");
  await migrate({ connectionString: url, schema: "upd", count: at }); // up to 0018
  const b = new PostgresBackend({ connectionString: url, schema: "upd", workspace: "w" });
  const shape = async () =>
    (
      await withClient(url, (c) =>
        c.query(
          `SELECT (SELECT array_agg(tgname::text ORDER BY tgname) FROM pg_trigger
                   WHERE tgrelid = 'upd.files'::regclass AND tgname LIKE 'files%history%') AS triggers,
                  EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'upd.file_versions'::regclass
                          AND conname = 'file_versions_blob_fkey') AS foreign_key,
                  (SELECT reloptions FROM pg_class WHERE oid = 'upd.file_versions'::regclass) AS options`,
        ),
      )
    ).rows[0];
  const ops = async (path: string) => (await historyAt(url, "upd", "w", path)).map((v) => `${v.op}:${v.version}`);
  const text = async (path: string, version: number) => (await b.readVersion(path, version, 0, 100)).content;
  try {
    // Through SQL: a backend's first call would migrate the schema to the newest first.
    await withClient(url, async (c) => {
      const write = (path: string, text: string) =>
        c.query("SELECT * FROM upd.fs_write('w', $1, $2, NULL, 'text/plain', NULL)", [path, text]);
      await write("/a.txt", "one\n");
      await write("/a.txt", "two\n"); // 0018's row trigger keeps version 1
      await write("/b.txt", "bravo\n");
      await c.query("SELECT upd.fs_delete('w', '/b.txt')");
    });
    await migrate({ connectionString: url, schema: "upd" });
    assert.equal(await shape(), { triggers: NEWEST_HISTORY_TRIGGERS, foreign_key: false, options: ["fillfactor=80"] });
    await b.write("/a.txt", "three\n");
    await b.write("/b.txt", "bravo again\n");
    assert.equal(await ops("/a.txt"), ["create:1", "update:2", "update:3"]);
    assert.equal(await ops("/b.txt"), ["create:1", "delete:1", "create:2"]);
    assert.equal(
      [await text("/a.txt", 1), await text("/a.txt", 2), await text("/b.txt", 1)],
      ["one\n", "two\n", "bravo\n"],
    );

    await migrate({ connectionString: url, schema: "upd", direction: "down", count: ALL.length - at });
    assert.equal(await shape(), {
      triggers: ["files_history", "files_history_deleted", "files_history_inserted"],
      foreign_key: true,
      options: null,
    });
    await b.write("/a.txt", "four\n");
    assert.equal(await ops("/a.txt"), ["create:1", "update:2", "update:3", "update:4"]);
    assert.equal(await text("/a.txt", 3), "three\n");
    await migrate({ connectionString: url, schema: "upd" });
    await b.write("/a.txt", "five\n");
    assert.equal(await Promise.all([1, 2, 3, 4].map((v) => text("/a.txt", v))), [
      "one\n",
      "two\n",
      "three\n",
      "four\n",
    ]);
  } finally {
    await b.close();
  }
});

test("0020 (a rewind writes back every path) replaces fs_rewind; down restores 0019's exactly; a rewind works at each", async () => {
  const url = await freshDatabase();
  const at = ALL.indexOf("0020_rewind_writes_every_path");
  assert.ok(at > 0, "0020 is shipped");
  await migrate({ connectionString: url, schema: "rw", count: at }); // up to 0019
  const definition = async () =>
    (await withClient(url, (c) => c.query("SELECT pg_get_functiondef('rw.fs_rewind'::regproc) AS d"))).rows[0]
      .d as string;
  const before = await definition();
  // Through SQL: a backend's first call would migrate the schema to the newest first.
  const roundTrip = (text: string) =>
    withClient(url, async (c) => {
      const write = (t: string) =>
        c.query("SELECT * FROM rw.fs_write('w', '/a.txt', $1, NULL, 'text/plain', NULL)", [`${text} ${t}\n`]);
      await write("before");
      const [cp] = (await c.query("SELECT * FROM rw.fs_checkpoint('w', NULL, NULL)")).rows;
      await write("after");
      await c.query("SELECT * FROM rw.fs_rewind('w', $1, NULL, false)", [cp.id]);
      const [row] = (await c.query("SELECT content FROM rw.files WHERE workspace = 'w' AND path = '/a.txt'")).rows;
      assert.is(row.content, `${text} before\n`);
    });
  await roundTrip("0019");
  await migrate({ connectionString: url, schema: "rw" });
  assert.match(await definition(), /DA019/);
  await roundTrip("0020");
  await migrate({ connectionString: url, schema: "rw", direction: "down", count: ALL.length - at });
  assert.is(await definition(), before);
  await roundTrip("down");
  await migrate({ connectionString: url, schema: "rw" });
});

test("0026 (move and copy) up from 0025 keeps the change log readable and logs moves; down restores 0025's functions and trigger exactly", async () => {
  const url = await freshDatabase();
  const at = ALL.indexOf("0026_move_copy");
  assert.ok(at > 0, "0026 is shipped");
  await migrate({ connectionString: url, schema: "mc", count: at }); // up to 0025
  const definitions = () =>
    withClient(url, async (c) => {
      const fns = await c.query(
        `SELECT p.proname, pg_get_functiondef(p.oid) AS d FROM pg_proc p
         WHERE p.pronamespace = 'mc'::regnamespace
           AND p.proname IN ('changes_stage', 'changes_flush_now', 'chunks_update', 'fs_changes', 'fs_move')
         ORDER BY 1`,
      );
      const trigger = await c.query(
        "SELECT pg_get_triggerdef(oid) AS d FROM pg_trigger WHERE tgname = 'files_chunks_set' AND tgrelid = 'mc.files'::regclass",
      );
      return [...fns.rows.map((r) => `${r.proname}: ${r.d}`), trigger.rows[0].d];
    });
  const before = await definitions();
  const run = (sql: string, values: unknown[] = []) => withClient(url, (c) => c.query(sql, values));
  await run("SELECT * FROM mc.fs_write('w', '/d/a.txt', 'a', NULL, 'text/plain', NULL)");
  await migrate({ connectionString: url, schema: "mc" });
  // the log written at 0025 reads at 0026 (moved is NULL), and a move is logged as one
  await run("SELECT * FROM mc.fs_move('w', '/d', '/e', false, false, 1024)");
  const log = (await run("SELECT path, op, moved FROM mc.fs_changes('w', 0, 10) ORDER BY id")).rows;
  assert.equal(log, [
    { path: "/d/a.txt", op: "create", moved: null },
    { path: "/d/a.txt", op: "delete", moved: "/e/a.txt" },
    { path: "/e/a.txt", op: "create", moved: "/d/a.txt" },
  ]);
  await migrate({ connectionString: url, schema: "mc", direction: "down", count: ALL.length - at });
  assert.equal(await definitions(), before);
  // at 0025 again: a rename through SQL is a plain delete and create, and writes still re-cut chunks
  await run("UPDATE mc.files SET path = '/f/a.txt' WHERE workspace = 'w' AND path = '/e/a.txt'");
  await run("SELECT * FROM mc.fs_write('w', '/f/a.txt', 'changed', NULL, 'text/plain', NULL)");
  const tail = (await run("SELECT path, op FROM mc.fs_changes('w', 3, 10) ORDER BY id")).rows;
  assert.equal(tail, [
    { path: "/e/a.txt", op: "delete" },
    { path: "/f/a.txt", op: "create" },
    { path: "/f/a.txt", op: "update" },
  ]);
  assert.is(
    (await run("SELECT mc.chunk_set_text(chunk_set) AS t FROM mc.files WHERE path = '/f/a.txt'")).rows[0].t,
    "changed",
  );
  await migrate({ connectionString: url, schema: "mc" });
});

test("0027 (directories) up from 0026: roles granted before it get the table, moves and writes work; down restores 0026's functions exactly", async () => {
  const url = await freshDatabase();
  const at = ALL.indexOf("0027_directories");
  assert.ok(at > 0, "0027 is shipped");
  await migrate({ connectionString: url, schema: "dr", count: at }); // up to 0026
  const changed = [
    "changes_flush_now",
    "fs_delete",
    "fs_download",
    "fs_fork",
    "fs_ls",
    "fs_move",
    "fs_upload",
    "fs_write",
    "grant_workspace",
    "revoke_workspace",
  ];
  const definitions = () =>
    withClient(url, async (c) => {
      const fns = await c.query(
        `SELECT p.proname, pg_get_functiondef(p.oid) AS d, p.proacl::text AS acl FROM pg_proc p
         WHERE p.pronamespace = 'dr'::regnamespace AND p.proname = ANY ($1) ORDER BY 1`,
        [changed],
      );
      return fns.rows.map((r) => `${r.proname} ${r.acl}: ${r.d}`);
    });
  const before = await definitions();
  assert.is(before.length, changed.length);
  const run = (sql: string, values: unknown[] = []) => withClient(url, (c) => c.query(sql, values));
  const role = `dr_${Date.now().toString(36)}`;
  roles.push(role);
  await run(`CREATE ROLE ${role} NOLOGIN`);
  await run("SELECT dr.grant_workspace($1, 'w')", [role]);
  await run("SELECT * FROM dr.fs_write('w', '/d/a.txt', 'a', NULL, 'text/plain', NULL)");
  await migrate({ connectionString: url, schema: "dr" });
  const may = await run("SELECT has_table_privilege($1, 'dr.directories', 'INSERT') AS ok", [role]);
  assert.is(may.rows[0].ok, true, "a role granted at 0026 may make directories");
  assert.equal((await run("SELECT * FROM dr.fs_mkdir('w', '/d/e', false)")).rows, [
    { status: "created", conflict: null },
  ]);
  await run("SELECT * FROM dr.fs_move('w', '/d', '/m', false, false, 1024)");
  assert.equal((await run("SELECT path, is_dir FROM dr.fs_ls('w', '/m/')")).rows, [
    { path: "/m/a.txt", is_dir: false },
    { path: "/m/e/", is_dir: true },
  ]);
  await migrate({ connectionString: url, schema: "dr", direction: "down", count: ALL.length - at });
  assert.equal(await definitions(), before);
  assert.is((await run("SELECT to_regclass('dr.directories') AS t")).rows[0].t, null);
  // at 0026 again: the file moved is there, the directory went with its table
  assert.equal((await run("SELECT path FROM dr.fs_ls('w', '/m/')")).rows, [{ path: "/m/a.txt" }]);
  await migrate({ connectionString: url, schema: "dr" });
  await run("SELECT dr.revoke_workspace($1, 'w')", [role]);
  const revoked = await run("SELECT has_table_privilege($1, 'dr.directories', 'SELECT') AS ok", [role]);
  assert.is(revoked.rows[0].ok, false, "revoke_workspace takes the table back");
});

test("0021 (statistics after bulk writes): an upload of many files into a new workspace analyzes at 0021, not after down", async () => {
  const url = await freshDatabase();
  const at = ALL.indexOf("0021_statistics_after_bulk_writes");
  assert.ok(at > 0, "0021 is shipped");
  await migrate({ connectionString: url, schema: "st" });
  // (Autovacuum's ANALYZE would move relpages too.)
  await withClient(url, (c) => c.query("ALTER TABLE st.files SET (autovacuum_enabled = false)"));
  // Through SQL (a backend would migrate to the newest first); pg_class.relpages is set by
  // ANALYZE itself, in the uploading transaction: no statistics collector to wait for.
  const uploadAndPages = (workspace: string) =>
    withClient(url, async (c) => {
      const paths = Array.from({ length: 200 }, (_, i) => `/f${i}.txt`);
      await c.query("SELECT * FROM st.fs_upload($1, $2, $3, $4, $5)", [
        workspace,
        paths,
        paths.map((p) => `${p}\n`.repeat(50)),
        paths.map(() => null),
        paths.map(() => "text/plain"),
      ]);
      const { rows } = await c.query("SELECT relpages FROM pg_class WHERE oid = 'st.files'::regclass");
      return Number(rows[0].relpages);
    });
  assert.ok((await uploadAndPages("w1")) > 0, "analyzed by the upload");
  await migrate({ connectionString: url, schema: "st", direction: "down", count: ALL.length - at });
  const pagesBefore = await withClient(url, async (c) =>
    Number((await c.query("SELECT relpages FROM pg_class WHERE oid = 'st.files'::regclass")).rows[0].relpages),
  );
  assert.is(await uploadAndPages("w2"), pagesBefore, "not analyzed after down");
  await migrate({ connectionString: url, schema: "st" });
  assert.ok((await uploadAndPages("w3")) > pagesBefore, "analyzed again after up");
});

test("0017 (fork log horizon) down gives a fork's unchanged files the version rows 0016 reads; up again keeps them readable", async () => {
  const url = await freshDatabase();
  await migrate({ connectionString: url, schema: "horizon" });
  const b = new PostgresBackend({ connectionString: url, schema: "horizon", workspace: "w" });
  try {
    await b.write("/a.txt", "one\n");
    await b.write("/a.txt", "two\n");
    await b.fork("w2");
    const w2 = b.withWorkspace("w2");
    const versions = async () =>
      (
        await withClient(url, (c) =>
          c.query("SELECT count(*)::int AS n FROM horizon.file_versions WHERE workspace = 'w2'"),
        )
      ).rows[0].n as number;
    assert.is(await versions(), 0, "the fork wrote no version row");
    const at = ALL.indexOf("0017_fork_log_starts_at_fork");
    assert.ok(at > 0, "0017 is shipped");
    await migrate({ connectionString: url, schema: "horizon", direction: "down", count: ALL.length - at });
    assert.is(await versions(), 1, "down wrote the current version's row");
    assert.equal(
      (await historyAt(url, "horizon", "w2", "/a.txt")).map((v) => [v.version, v.change_id]),
      [[1, null]],
    );
    assert.is((await w2.readVersion("/a.txt", 1)).content, "two\n");
    await migrate({ connectionString: url, schema: "horizon" });
    await w2.write("/a.txt", "three\n");
    assert.is((await w2.readVersion("/a.txt", 1)).content, "two\n");
  } finally {
    await b.close();
  }
});

test.run();
