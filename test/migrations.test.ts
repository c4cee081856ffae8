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
  withClient(url, async (c) => (await c.query("SELECT extnamespace::regnamespace::text AS s FROM pg_extension WHERE extname = 'pg_trgm'")).rows[0]?.s ?? null);

test.after(async () => {
  for (const name of created) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
});

test("fresh install, re-run is a no-op, and the backend works on it", async () => {
  const url = await freshDatabase();
  const first = await migrate({ connectionString: url });
  assert.equal(first.map((m) => m.name), ALL);
  assert.equal(await migrate({ connectionString: url }), []);
  assert.is(await trgmSchema(url), "deepagents"); // it was missing: installed beside our objects
  const objects = await objectsIn(url, "deepagents");
  for (const name of ["files", "chunks", "migrations", "fs_grep", "fs_edit", "chunks_content_trgm_idx"]) assert.ok(objects.includes(name), name);
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
    assert.match((e as Error).message, new RegExp(`Schema "nothing_here" is not up to date \\(missing migrations: ${ALL.join(", ")}\\)`));
  }
  await b.close();
});

test("four concurrent migrate() calls apply each migration exactly once", async () => {
  const url = await freshDatabase();
  const results = await Promise.all(Array.from({ length: 4 }, () => migrate({ connectionString: url, schema: "conc" })));
  assert.is(results.flat().length, ALL.length);
  const rows = await withClient(url, async (c) => (await c.query("SELECT name FROM conc.migrations ORDER BY id")).rows);
  assert.equal(rows.map((r) => r.name), ALL);
});

test("down removes only what it created; up again restores it", async () => {
  const url = await freshDatabase();
  await migrate({ connectionString: url, schema: "roundtrip" });
  const down = await migrate({ connectionString: url, schema: "roundtrip", direction: "down" });
  assert.equal(down.map((m) => m.name), [...ALL].reverse());
  assert.equal(await objectsIn(url, "roundtrip"), []);
  assert.is(await withClient(url, async (c) => (await c.query("SELECT to_regnamespace('roundtrip') AS s")).rows[0].s), null);
  assert.is(await trgmSchema(url), null); // we installed it, we removed it
  assert.equal(await migrate({ connectionString: url, schema: "roundtrip", direction: "down" }), []); // nothing left
  assert.equal((await migrate({ connectionString: url, schema: "roundtrip" })).map((m) => m.name), ALL);
});

test("installs beside public.pg_trgm and another app's node-pg-migrate table, touching neither", async () => {
  const url = await freshDatabase();
  await withClient(url, async (c) => {
    await c.query("CREATE EXTENSION pg_trgm SCHEMA public");
    await c.query("CREATE TABLE public.pgmigrations (id serial PRIMARY KEY, name varchar(255) NOT NULL, run_on timestamp NOT NULL)");
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
  const opclass = await withClient(url, async (c) =>
    (await c.query(
      `SELECT o.opcnamespace::regnamespace::text || '.' || o.opcname AS name FROM pg_index i
       JOIN pg_opclass o ON o.oid = i.indclass[0] WHERE i.indexrelid = 'agents.chunks_content_trgm_idx'::regclass`,
    )).rows[0].name,
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
    trgm: (await c.query("SELECT extnamespace::regnamespace::text AS s FROM pg_extension WHERE extname = 'pg_trgm'")).rows[0].s,
    index: (await c.query("SELECT 1 FROM pg_indexes WHERE indexname = 'customers_name_trgm'")).rowCount,
  }));
  assert.equal(theirs, { migrations: ["1700000000000_their-app"], customers: ["ada"], trgm: "public", index: 1 });
});

test("down keeps a pg_trgm we installed while another schema's index still uses it", async () => {
  const url = await freshDatabase();
  await migrate({ connectionString: url, schema: "first" }); // installs pg_trgm into "first"
  await migrate({ connectionString: url, schema: "second" }); // reuses it
  await migrate({ connectionString: url, schema: "first", direction: "down" });
  assert.is(await trgmSchema(url), "first");
  assert.equal(await objectsIn(url, "first"), []); // our tables and functions are gone
  const b = new PostgresBackend({ connectionString: url, schema: "second", workspace: "w" });
  await b.write("/still.txt", "works fine");
  assert.is((await b.grep("fine")).matches!.length, 1);
  await b.close();
});

test("two schemas in one database migrate independently, under different locks", async () => {
  const url = await freshDatabase();
  assert.is.not(migrationLockValue("one"), migrationLockValue("two"));
  await Promise.all([migrate({ connectionString: url, schema: "one" }), migrate({ connectionString: url, schema: "two" })]);
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
    const chunks = await withClient(url, async (c) =>
      (await c.query("SELECT path, count(*)::int AS n FROM up.chunks GROUP BY path ORDER BY path")).rows);
    assert.equal(chunks.map((r) => r.path), ["/big.txt", "/empty.txt"], "text files only");
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

test.run();
