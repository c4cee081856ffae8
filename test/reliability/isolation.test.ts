/**
 * Workspace isolation on PostgreSQL (issue 7, part 2): awkward workspace names are accepted and
 * kept apart (or refused with a clear error), and a seeded random-operation property test — every
 * workspace at once, with the same paths and words — shows that no ls, read, grep, search, glob,
 * download, stat, write, edit, upload or delete in one workspace returns or touches another's data;
 * the rows in `files` and `changes` and every watch() subscription agree with each workspace's
 * model. ISO_SEED replays a run, ISO_OPS widens it.
 *
 * Runs in a schema of its own: the names (`acme`, ...) are fixed, so no other test file may share them.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { PostgresBackend, type Change, type Subscription } from "../../src/index.js";
import { adminClient, databaseUrl } from "../helpers/db.js";
import { privateSchema } from "./private-schema.js";
import {
  assertWorkspaceEquals,
  namedWorkspaces,
  runWorkspace,
  tagOf,
  type WorkspaceRun,
} from "./isolation-property.js";

const SEED = Number(process.env.ISO_SEED ?? Date.now() % 1_000_000);
const OPS = Number(process.env.ISO_OPS ?? 120);
const { schema: SCHEMA, drop: dropSchema } = await privateSchema("iso");
/** The longest name accepted: 128 characters of 3 UTF-8 bytes each. */
const LONG = "ワ".repeat(128);
const NAMES = namedWorkspaces(LONG);

const root = new PostgresBackend({
  connectionString: await databaseUrl(),
  schema: SCHEMA,
  workspace: "acme",
  maxPoolSize: 8,
  minPoolSize: 0,
});
await root.initialize();
const admin = await adminClient();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.after(async () => {
  await root.close();
  await admin.end();
  await dropSchema();
});

const rowCount = async () => Number((await admin.query(`SELECT count(*) AS n FROM ${SCHEMA}.files`)).rows[0].n);

test("names: prefixes, LIKE wildcards, backslashes, slashes, unicode and 128 characters are distinct workspaces", async () => {
  for (const name of NAMES) {
    const b = root.withWorkspace(name);
    assert.is(b.workspace, name);
    assert.is((await b.write("/whoami.txt", name)).error, undefined, name);
  }
  for (const name of NAMES) {
    const b = root.withWorkspace(name);
    assert.is((await b.readRaw("/whoami.txt")).data!.content, name, name);
    assert.equal(
      (await b.ls("/")).files!.map((f) => f.path),
      ["/whoami.txt"],
      name,
    );
    assert.equal(
      (await b.grep("a")).matches!.map((m) => m.text),
      name.includes("a") ? [name] : [],
      name,
    );
  }
  // The longest name with the longest path: (workspace, parent, path) still fits every index.
  const deep = `/${"é".repeat(120)}/${"é".repeat(120)}/${"é".repeat(120)}/${"é".repeat(120)}/${"x".repeat(59)}`;
  assert.is(Buffer.byteLength(deep), 1024);
  const long = root.withWorkspace(LONG);
  assert.is((await long.write(deep, "deep")).error, undefined);
  assert.equal((await long.grep("deep")).matches, [{ path: deep, line: 1, text: "deep" }]);
  assert.equal((await long.delete("/")).error, undefined);
  for (const name of NAMES) await root.withWorkspace(name).delete("/");
  assert.is(await rowCount(), 0);
});

test("names that cannot be a workspace are refused with a clear error and change nothing", async () => {
  await root.withWorkspace("acme").write("/keep.txt", "keep");
  const before = await rowCount();
  const refused: unknown[] = ["", "x".repeat(129), "a\nb", "a\u0000b", "tab\there", "\ud800", 42, null];
  for (const name of refused) {
    assert.throws(
      () => root.withWorkspace(name as string),
      /^Invalid workspace name .*: use 1-128 printable characters$/,
      String(name),
    );
    if (name !== null)
      assert.throws(
        () => new PostgresBackend({ connectionString: "postgres://unused", workspace: name as string }),
        /^Invalid workspace name /,
      );
  }
  assert.is(await rowCount(), before);
  await root.withWorkspace("acme").delete("/");
});

test(`property: ${NAMES.length} workspaces × ${OPS} random operations at once never see or touch each other (seed ${SEED})`, async () => {
  const tags = NAMES.map((_, i) => tagOf(i));
  const backends = NAMES.map((name) => root.withWorkspace(name));
  const seen = new Map<string, Change[]>(NAMES.map((n) => [n, []]));
  const subs: Subscription[] = await Promise.all(
    backends.map((b) => b.watch({ onChange: (c) => seen.get(b.workspace)!.push(c), coalesceMs: 20 })),
  );
  const head = Number((await admin.query(`SELECT coalesce(max(id), 0) AS id FROM ${SCHEMA}.changes`)).rows[0].id);
  let runs: WorkspaceRun[];
  try {
    runs = await Promise.all(backends.map((b, i) => runWorkspace(b, i, SEED, OPS, tags)));
    for (const [i, run] of runs.entries()) await assertWorkspaceEquals(backends[i], run);

    // Storage: the rows of each workspace are exactly its model; nothing else is in the table.
    const { rows } = await admin.query(`SELECT workspace, path, content FROM ${SCHEMA}.files`);
    const stored = new Map<string, Map<string, string>>(NAMES.map((n) => [n, new Map()]));
    for (const row of rows) {
      assert.ok(stored.has(row.workspace), `unexpected workspace ${JSON.stringify(row.workspace)}`);
      stored.get(row.workspace)!.set(row.path, row.content);
    }
    for (const run of runs)
      assert.equal(stored.get(run.workspace), run.model, `rows of ${JSON.stringify(run.workspace)}`);

    // The change log and every subscription: exactly this workspace's changes, none of another's.
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && runs.some((run) => seen.get(run.workspace)!.length < run.changes)) await sleep(50);
    await sleep(300); // anything extra (a foreign change) would arrive now
    for (const run of runs) {
      const changes = seen.get(run.workspace)!;
      const at = `watch(${JSON.stringify(run.workspace)})`;
      assert.is(changes.length, run.changes, at);
      assert.ok(
        changes.every((c) => c.workspace === run.workspace && run.touched.has(c.path)),
        at,
      );
      const logged = await admin.query(
        `SELECT count(*)::int AS n FROM ${SCHEMA}.changes WHERE workspace = $1 AND id > $2`,
        [run.workspace, head],
      );
      assert.is(logged.rows[0].n, run.changes, `changes rows of ${JSON.stringify(run.workspace)}`);
    }
    const total = runs.reduce((n, run) => n + run.ops, 0);
    console.log(
      `isolation (PostgreSQL): ${NAMES.length} workspaces, ${total} operations, ${runs.reduce((n, r) => n + r.changes, 0)} changes, seed ${SEED}: nothing crossed`,
    );
  } finally {
    await Promise.all(subs.map((s) => s.close()));
  }
});

test.run();
