/**
 * The typed SQL boundary (src/postgres/sql/): every file of sql/ has exactly one typed definition
 * and every definition its file; named parameters compile to $1..$n by first appearance and
 * never inside casts, strings, quoted identifiers or comments; a parameter object with a key
 * missing or extra throws before anything is sent; and the rows are what the row types say
 * (column names and the JavaScript type node-postgres gives each value).
 */
import { readdirSync } from "node:fs";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { compileNamedParameters } from "../src/postgres/sql/params.js";
import * as sql from "../src/postgres/sql/queries.js";
import { type Statement, statement, statementNames, WAKE_UP_WRAPPER } from "../src/postgres/sql/statement.js";
import { adminClient, TEST_SCHEMA, testBackend } from "./helpers/db.js";

const backend = await testBackend();
const admin = await adminClient();
test.after(async () => {
  await backend.close();
  await admin.end();
});

const files = readdirSync(new URL("../sql/", import.meta.url))
  .filter((f) => f.endsWith(".sql"))
  .map((f) => f.slice(0, -4))
  .filter((f) => f !== WAKE_UP_WRAPPER) // (the wrapper of the statements with `wakes`)
  .sort();
type AnyStatement = Statement<any, unknown>;
const definitions = Object.values(sql as Record<string, unknown>).filter(
  (v): v is AnyStatement => typeof (v as AnyStatement).bind === "function",
);

test("every sql/*.sql file has exactly one typed definition, and every definition its file", () => {
  assert.ok(files.length > 20, "sql/ was read");
  assert.equal(statementNames(), files);
  const names = definitions.map((d) => d.name).sort();
  assert.equal(names, [...new Set(names)], "no file is defined twice");
  assert.equal(names, files);
  assert.throws(() => statement("ls"), /sql\/ls\.sql is defined twice/);
  assert.throws(() => statement("no_such_statement"), /no sql\/no_such_statement\.sql/);
});

test("exactly the statements that change files are wrapped to leave their commit's NOTIFY to the backend's wake-up (sql/wake_up_after_commit.sql)", () => {
  const wrapped = definitions
    .filter((d) => d.bind("s", Object.fromEntries(d.params.map((p) => [p, null]))).text.includes("after_commit"))
    .map((d) => d.name)
    .sort();
  assert.equal(wrapped, ["delete", "edit", "fork", "move", "restore", "rewind", "upload", "write"]);
  assert.equal(
    definitions
      .filter((d) => d.wakes !== undefined)
      .map((d) => d.name)
      .sort(),
    wrapped,
  );
});

test("every statement binds to the schema, with one $n per named parameter", () => {
  for (const d of definitions) {
    const values = Object.fromEntries(d.params.map((p) => [p, null]));
    const { text } = d.bind("some_schema", values);
    assert.not.match(text, /\{\{schema\}\}/, d.name);
    for (let n = 1; n <= d.params.length; n++) assert.ok(text.includes(`$${n}`), `${d.name}: $${n}`);
    assert.not.ok(text.includes(`$${d.params.length + 1}`), `${d.name}: no $n beyond its parameters`);
  }
  const write = sql.write.bind("my_schema", {
    workspace: "w",
    path: "/p",
    text: "t",
    bytes: null,
    mimeType: "text/plain",
    ifVersion: 3,
  });
  assert.ok(write.text.includes(`"my_schema".fs_write($1, $2, $3, $4, $5, $6)`), write.text);
  assert.equal(write.values, ["w", "/p", "t", null, "text/plain", 3]);
});

test("named parameters: numbered by first appearance, a repeated name is one parameter", () => {
  const { text, params } = compileNamedParameters("SELECT :b, :a, :b, f(:a_1)");
  assert.is(text, "SELECT $1, $2, $1, f($3)");
  assert.equal(params, ["b", "a", "a_1"]);
});

test("named parameters: casts, strings, identifiers and comments are not parameters", () => {
  const source = [
    "-- a comment naming :notOne",
    "/* a block :notTwo /* nested :notThree */ still :notFour */",
    "SELECT :olderThan::interval, :x ::int, 'it''s :notFive', E'\\' :notSix', \"col:notSeven\",",
    "  $$ :notEight $$, $body$ :notNine $$ :notTen $body$, a$b, '::notEleven'::text -- :notTwelve",
    "FROM t WHERE c = :y",
  ].join("\n");
  const { text, params } = compileNamedParameters(source);
  assert.equal(params, ["olderThan", "x", "y"]);
  assert.ok(text.includes("SELECT $1::interval, $2 ::int, 'it''s :notFive'"), text);
  assert.ok(text.endsWith("FROM t WHERE c = $3"), text);
  // Everything but the three parameters is copied verbatim.
  assert.is(text.replace("$1", ":olderThan").replace("$2", ":x").replace("$3", ":y"), source);
});

test("named parameters: a positional parameter or an unterminated quote is refused", () => {
  assert.throws(() => compileNamedParameters("SELECT $1"), /positional parameter/);
  assert.throws(() => compileNamedParameters("SELECT 'open"), /unterminated string/);
  assert.throws(() => compileNamedParameters('SELECT "open'), /unterminated quoted identifier/);
  assert.throws(() => compileNamedParameters("SELECT $$ open"), /unterminated \$\$-quoted string/);
  assert.throws(() => compileNamedParameters("SELECT /* open /* */"), /unterminated \/\* comment/);
});

test("a parameter object with a key missing or extra throws, naming it, before a query is sent", async () => {
  const pool = backend.pool;
  const workspace = backend.workspace;
  let sent = 0;
  const counting = {
    query: (text: string, values?: unknown[]) => {
      sent++;
      return pool.query(text, values);
    },
  };
  // @ts-expect-error path is missing
  await sql.stat.run(counting, TEST_SCHEMA, { workspace }).then(
    () => assert.unreachable("missing key accepted"),
    (e: Error) => assert.match(e.message, /sql\/stat\.sql takes :workspace, :path; missing :path$/),
  );
  // @ts-expect-error extra is not a parameter
  await sql.stat.run(counting, TEST_SCHEMA, { workspace, path: "/x", extra: 1 }).then(
    () => assert.unreachable("extra key accepted"),
    (e: Error) => assert.match(e.message, /unexpected :extra$/),
  );
  // @ts-expect-error schemaVersion takes none
  assert.throws(() => sql.schemaVersion.bind(TEST_SCHEMA, { workspace }), /takes no parameters; unexpected :workspace/);
  assert.is(sent, 0);
  // A key present with the value undefined is present (the driver sends NULL): no file, and
  // fs_is_directory (STRICT) answers NULL for a NULL path.
  const [row] = await sql.stat.run(counting, TEST_SCHEMA, { workspace, path: undefined as unknown as string });
  assert.equal([row.mime_type, row.is_dir], [null, null]);
  assert.is(sent, 1);
});

// --- row types --------------------------------------------------------------------------------

type Kind = "string" | "number" | "boolean" | "Date" | "Buffer" | "null" | "string[]";
type KindOf<T> = T extends null
  ? "null"
  : T extends string
    ? "string"
    : T extends number
      ? "number"
      : T extends boolean
        ? "boolean"
        : T extends Date
          ? "Date"
          : T extends Buffer
            ? "Buffer"
            : never;
/** The columns of every variant of a row type, and a column's type across the variants. */
type Columns<R> = R extends unknown ? keyof R : never;
type Column<R, K> = R extends unknown ? (K extends keyof R ? R[K] : never) : never;
/** Per column, the kinds a value may have: each one a kind the row type allows (checked by tsc). */
type Shape<R> = { [K in Columns<R>]-?: readonly KindOf<Column<R, K>>[] };

const kindOf = (v: unknown): Kind =>
  v === null
    ? "null"
    : v instanceof Date
      ? "Date"
      : Buffer.isBuffer(v)
        ? "Buffer"
        : Array.isArray(v)
          ? "string[]"
          : (typeof v as Kind);

/** Each row has exactly the shape's columns, each value of a kind the shape (so the type) allows. */
function assertRows<R>(what: string, rows: R[], shape: Shape<R>, seen: Map<string, Set<Kind>>): void {
  assert.ok(rows.length > 0, `${what}: rows to check`);
  for (const row of rows) {
    assert.equal(Object.keys(row as object).sort(), Object.keys(shape).sort(), `${what}: columns`);
    for (const [column, kinds] of Object.entries(shape) as [string, Kind[]][]) {
      const kind = kindOf((row as Record<string, unknown>)[column]);
      assert.ok(kinds.includes(kind), `${what}.${column}: ${kind}, declared ${kinds.join(" | ")}`);
      const key = `${what}.${column}`;
      seen.set(key, (seen.get(key) ?? new Set()).add(kind));
    }
  }
}

test("rows are what the row types declare", async () => {
  const s = TEST_SCHEMA;
  const db = backend.pool;
  const workspace = backend.workspace;
  const seen = new Map<string, Set<Kind>>();
  const check = <P extends object, R>(st: Statement<P, R>, params: P, shape: Shape<R>) =>
    st.run(db, s, params).then((rows) => assertRows(st.name, rows, shape, seen));

  const text = { workspace, text: null, bytes: null, mimeType: "text/plain", ifVersion: null };
  await check(
    sql.write,
    { ...text, path: "/d/a.txt", text: "one\ntwo\n" },
    {
      status: ["string"],
      version: ["string"],
      conflict: ["null", "string"],
    },
  );
  await check(
    sql.write,
    { ...text, path: "/d/a.txt/under", text: "x" },
    {
      status: ["string"],
      version: ["string"],
      conflict: ["string"],
    },
  );
  await check(
    sql.write,
    { ...text, path: "/bin.png", bytes: Buffer.from([0, 255]), mimeType: "image/png" },
    { status: ["string"], version: ["string"], conflict: ["null"] },
  );
  const edit = { workspace, oldString: "one", newString: "uno", replaceAll: false, ifVersion: null, maxBytes: 1000 };
  await check(
    sql.edit,
    { ...edit, path: "/d/a.txt" },
    { status: ["string"], occurrences: ["number"], version: ["string"] },
  );
  await check(sql.edit, { ...edit, path: "/none" }, { status: ["string"], occurrences: ["number"], version: ["null"] });
  await check(
    sql.ls,
    { workspace, dir: "/" },
    { path: ["string"], is_dir: ["boolean"], size: ["string"], modified_at: ["Date", "null"] },
  );
  assert.equal(seen.get("ls.modified_at"), new Set(["Date", "null"]), "a file and a directory");
  await check(
    sql.read,
    { workspace, path: "/d/a.txt", offset: 0, limit: 10 },
    {
      mime_type: ["string"],
      bytes: ["null"],
      total_lines: ["number"],
      window_text: ["string"],
      window_lines: ["number"],
    },
  );
  await check(
    sql.read,
    { workspace, path: "/bin.png", offset: 0, limit: 10 },
    {
      mime_type: ["string"],
      bytes: ["Buffer"],
      total_lines: ["number"],
      window_text: ["null"],
      window_lines: ["number"],
    },
  );
  for (const path of ["/d/a.txt", "/bin.png"]) {
    await check(
      sql.readRaw,
      { workspace, path },
      {
        mime_type: ["string"],
        content: ["string", "null"],
        bytes: ["Buffer", "null"],
        created_at: ["Date"],
        modified_at: ["Date"],
      },
    );
  }
  await check(
    sql.stat,
    { workspace, path: "/d/a.txt" },
    {
      mime_type: ["string"],
      is_binary: ["boolean"],
      size: ["string"],
      line_count: ["number"],
      version: ["string"],
      created_at: ["Date"],
      modified_at: ["Date"],
      is_dir: ["boolean"],
    },
  );
  // no file: NULLs, and is_dir true for a directory ("/d" holds a file), false for nothing
  const none = ["null"] as const;
  for (const path of ["/d", "/nothing"]) {
    await check(
      sql.stat,
      { workspace, path },
      {
        mime_type: [...none],
        is_binary: [...none],
        size: [...none],
        line_count: [...none],
        version: [...none],
        created_at: [...none],
        modified_at: [...none],
        is_dir: ["boolean"],
      },
    );
  }
  const scope = { workspace, path: "/", allowExact: false, glob: null, globRegex: null, globBasename: false, limit: 5 };
  const line = { path: ["string"], line: ["number"], text: ["string"] } as const;
  await check(sql.grep, { ...scope, pattern: "two" }, line);
  await check(sql.search, { ...scope, pattern: "TWO", regex: false, ignoreCase: true, chunkPattern: null }, line);
  await check(
    sql.glob,
    { workspace, path: "/", allowExact: false, base: "", pattern: "**", regex: "^.*$" },
    { path: ["string"], size: ["string"], modified_at: ["Date"] },
  );
  await check(
    sql.upload,
    {
      workspace,
      paths: ["/d/a.txt/x", "/d"],
      texts: ["x", "y"],
      bytes: [null, null],
      mimeTypes: ["text/plain", "text/plain"],
    },
    { path: ["string"], status: ["string"], conflict: ["string"] },
  );
  await check(
    sql.download,
    { workspace, paths: ["/d/a.txt", "/bin.png", "/d", "/none"] },
    { ord: ["string"], content: ["string", "null"], bytes: ["Buffer", "null"], is_dir: ["boolean"] },
  );
  await check(
    sql.move,
    { workspace, from: "/d", to: "/d-copy", overwrite: false, copy: true, maxBytes: 1024 },
    { status: ["string"], files: ["string"], conflict: ["null"] },
  );
  await check(
    sql.move,
    { workspace, from: "/d-copy", to: "/d", overwrite: false, copy: false, maxBytes: 1024 },
    { status: ["string"], files: ["string"], conflict: ["string"] },
  );
  await check(
    sql.move,
    { workspace, from: "/d-copy", to: "/d-moved", overwrite: false, copy: false, maxBytes: 1024 },
    { status: ["string"], files: ["string"], conflict: ["null"] },
  );
  await sql.deleteTree.run(db, s, { workspace, path: "/d-moved" });
  await check(
    sql.changes,
    { workspace, after: 0, limit: 1000 },
    {
      id: ["string"],
      path: ["string"],
      op: ["string"],
      version: ["string"],
      size: ["string"],
      at: ["Date"],
      moved: ["string", "null"],
    },
  );
  await check(sql.changesHead, { workspace }, { head: ["string"], channel: ["string"] });
  await check(sql.deleteTree, { workspace, path: "/bin.png" }, { deleted: ["string"] });
  await check(sql.pruneChanges, { olderThan: null, keepPerWorkspace: 1_000_000 }, { pruned: ["string"] });
  await check(sql.serverInfo, { schema: s }, { version: ["number"], encoding: ["string"], proxy: ["boolean"] });
  await check(sql.clusterMigrations, {}, { name: ["string"], run_on: ["Date"] });
  // (cluster_signatures has array columns, which Shape cannot say: their kinds are checked here)
  const signatures = await sql.clusterSignatures.run(db, s, { schema: s });
  const write = signatures.find((f) => f.name === "fs_write");
  assert.ok(write, "fs_write's signature");
  assert.equal(write.inputs.slice(0, 2), ["p_workspace", "p_path"]);
  assert.equal(typeof write.arguments, "string");
  assert.equal(typeof write.result, "string");
  assert.ok(Array.isArray(write.output_types) && typeof write.returns_set === "boolean");
  assert.equal(typeof write.public_execute, "boolean");
  // (the proxy's statements run in cluster.test.ts; this database has no cluster)
  assert.equal(await sql.clusterPartitions.run(db, s, { schema: s }), []);
  await check(sql.rlsCheck, { workspace }, { role: ["string"], active: ["boolean"], granted: ["boolean"] });
  await check(
    sql.workspaces,
    {},
    { workspace: ["string"], files: ["string"], bytes: ["string"], modified_at: ["Date"] },
  );
  await check(
    sql.stats,
    { schema: s },
    { name: ["string"], kind: ["string"], bytes: ["string"], estimated_rows: ["string", "null"] },
  );
  await check(sql.schemaVersion, {}, { name: ["string"] });
  await check(sql.schemaExists, { schema: s }, { exists: ["boolean"] });
  await check(sql.migrationsInstalled, {}, { installed: ["boolean"] });

  // The advisory lock pair and pg_trgm_scope, on one connection (a session lock; a transaction).
  const client = await db.connect();
  try {
    const lockValue = 4242;
    await sql.advisoryLock
      .run(client, s, { lockValue })
      .then((r) => assertRows("advisory_lock", r, { pg_advisory_lock: ["string"] }, seen));
    await sql.advisoryUnlock
      .run(client, s, { lockValue })
      .then((r) => assertRows("advisory_unlock", r, { pg_advisory_unlock: ["boolean"] }, seen));
    await client.query("BEGIN");
    await sql.pgTrgmScope
      .run(client, s, { schema: s, direction: "up" })
      .then((r) => assertRows("pg_trgm_scope", r, { set_config: ["string"] }, seen));
    await client.query("ROLLBACK");
  } finally {
    client.release();
  }
  assert.equal(
    (await admin.query(`SELECT count(*)::int AS n FROM ${s}.files WHERE workspace = $1`, [workspace])).rows[0].n,
    1,
  );
});

test.run();
