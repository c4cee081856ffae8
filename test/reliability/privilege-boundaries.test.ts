/**
 * Privilege boundaries inside the database (issue 11, item 1): a role restricted by
 * grantWorkspace() must not run code with the schema owner's rights, nor divert the rows the
 * owner's trigger functions derive, through objects of its own session's temporary schema.
 *
 * Why this can happen at all: PostgreSQL searches the session's temporary schema (pg_temp) FIRST
 * for relation and type names unless pg_temp is listed in search_path explicitly. Our
 * SECURITY DEFINER trigger functions (record_change, chunks_*; migrations 0002-0004) run as the
 * owner with `search_path = <schema>`, so an unqualified `changes` or `chunks` in their bodies
 * would resolve to a temporary view or table of the *calling* role's session, and a temporary
 * `text` domain would replace the type `text` in their casts and declarations. Functions and
 * operators are never looked up in pg_temp; the tests prove that for ours too.
 *
 * Every case: a LOGIN role granted only workspace "acme", on a session of its own, creates the
 * shadowing objects, then drives every write path (the backend's operations and raw SQL: INSERT,
 * UPDATE, DELETE on files, fs_write, fs_edit, fs_upload, fs_delete) and every read path. The
 * planted code records who ran it (pg_temp.loot) and, when it runs as someone else, tries to
 * escalate: grant its role every workspace, read another workspace ("globex"), and ALTER ROLE ...
 * SUPERUSER (which works when the owner is a superuser, as in CI). Afterwards: nothing ran as
 * the owner, the role is unchanged, no derived row went anywhere but the real tables, and the
 * change feed and search are exact.
 *
 * Runs in a schema of its own; the role (cluster-wide) gets a unique name and is dropped at the
 * end (its temporary objects die with its sessions).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { grantWorkspace, migrate, PostgresBackend, type Change } from "../../src/index.js";
import { adminClient, databaseUrl } from "../helpers/db.js";
import { privateSchema } from "./private-schema.js";

const { schema: S, drop: dropSchema } = await privateSchema("privb");
const url = await databaseUrl();
const admin = await adminClient();
const suffix = randomBytes(4).toString("hex");
const ROLE = `da_priv_${suffix}`;
const PASSWORD = randomBytes(12).toString("hex");
const roleUrl = () => {
  const u = new URL(url);
  u.username = ROLE;
  u.password = PASSWORD;
  return u.toString();
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const json = (v: unknown) => JSON.stringify(v);

const closers: Array<() => Promise<unknown>> = [];
test.after(async () => {
  for (const close of closers.reverse()) await close().catch(() => {});
  await dropSchema();
  await admin.query(`DROP OWNED BY ${ROLE}`).catch(() => {});
  await admin
    .query(`DROP ROLE IF EXISTS ${ROLE}`)
    .catch((e) => console.log(`could not drop role ${ROLE}: ${e.message}`));
  await admin.end();
});

await admin.query(`CREATE ROLE ${ROLE} LOGIN PASSWORD '${PASSWORD}'`);
await migrate({ connectionString: url, schema: S });
const OWNER_IS_SUPERUSER: boolean = (await admin.query("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
  .rows[0].rolsuper;
const owner = new PostgresBackend({
  connectionString: url,
  schema: S,
  workspace: "acme",
  maxPoolSize: 4,
  minPoolSize: 0,
});
closers.push(() => owner.close());
await owner.initialize();
await owner.withWorkspace("globex").write("/secret.txt", "globex secret\n");
await owner.write("/seed.txt", "seed\n");
await grantWorkspace(owner.pool, S, ROLE, "acme");

/** What the planted code does; every name qualified, so it works whatever shadows what. */
const PWN = `
  CREATE TEMP TABLE loot (tag pg_catalog.text, cur pg_catalog.name, sess pg_catalog.name, super boolean, leaked pg_catalog.text);
  GRANT ALL ON pg_temp.loot TO PUBLIC;
  CREATE FUNCTION pg_temp.pwn(p_tag pg_catalog.text) RETURNS boolean LANGUAGE plpgsql AS $f$
  DECLARE
    v_leaked pg_catalog.text;
  BEGIN
    IF current_user OPERATOR(pg_catalog.<>) session_user THEN
      BEGIN
        INSERT INTO ${S}.workspace_grants (role_name, workspace) VALUES (session_user, NULL) ON CONFLICT DO NOTHING;
      EXCEPTION WHEN OTHERS THEN NULL;
      END;
      BEGIN
        EXECUTE pg_catalog.format('ALTER ROLE %I SUPERUSER', session_user);
      EXCEPTION WHEN OTHERS THEN NULL;
      END;
      BEGIN
        SELECT pg_catalog.string_agg(f.content, '|') INTO v_leaked FROM ${S}.files f WHERE f.workspace OPERATOR(pg_catalog.=) 'globex';
      EXCEPTION WHEN OTHERS THEN NULL;
      END;
    END IF;
    INSERT INTO pg_temp.loot VALUES (p_tag, current_user, session_user,
      (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user), v_leaked);
    RETURN true;
  END
  $f$;
  CREATE FUNCTION pg_temp.pwn_trigger() RETURNS trigger LANGUAGE plpgsql AS $f$
  BEGIN
    PERFORM pg_temp.pwn(pg_catalog.concat(TG_TABLE_NAME, ' ', TG_OP));
    IF TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
  END
  $f$;
`;

/**
 * A session of the restricted role. The backend and the raw SQL share its one connection (and so
 * its temporary schema): a pool that hands out that connection and never drops it (pg's own pool
 * discards a connection whose query failed, and the shadowing objects with it).
 */
async function roleSession(setup: string): Promise<{
  backend: PostgresBackend;
  sql: (text: string, values?: unknown[]) => Promise<pg.QueryResultRow[]>;
  end(): Promise<void>;
}> {
  const client = new pg.Client({ connectionString: roleUrl() });
  client.on("error", () => {});
  let backend: PostgresBackend | undefined;
  let ended = false;
  const end = async () => {
    if (ended) return;
    ended = true;
    await backend?.close();
    await client.end();
  };
  closers.push(end);
  await client.connect();
  await client.query(PWN);
  await client.query(setup);
  const session = Object.assign(client, { release: () => {} });
  const pool = {
    query: (text: string, values?: unknown[]) => client.query(text, values),
    connect: async () => session,
  } as unknown as pg.Pool;
  backend = new PostgresBackend({ pool, schema: S, workspace: "acme", rowLevelSecurity: true });
  await backend.initialize();
  const sql = async (text: string, values: unknown[] = []) => (await client.query(text, values)).rows;
  return { backend, sql, end };
}

/** Undo whatever an escalation achieved, so that each case starts from the same role. */
async function restoreRole(): Promise<void> {
  await admin.query(`ALTER ROLE ${ROLE} NOSUPERUSER`);
  await admin.query(`DELETE FROM ${S}.workspace_grants WHERE role_name = $1 AND workspace IS DISTINCT FROM 'acme'`, [
    ROLE,
  ]);
}

interface Expected {
  path: string;
  content: string;
  token: string;
  line: number;
}

/** The files `exercise` leaves under `p`, each with a word found on exactly one line. */
const expectedFiles = (p: string): Expected[] => [
  { path: `${p}/a.md`, content: "alpha\nBETA\ngamma\n", token: "BETA", line: 2 },
  { path: `${p}/fn-up.txt`, content: "fn upload\n", token: "fn upload", line: 1 },
  { path: `${p}/fn.txt`, content: "fn edit\n", token: "fn edit", line: 1 },
  { path: `${p}/raw.txt`, content: "raw update\nline two\n", token: "line two", line: 2 },
  { path: `${p}/up/b.txt`, content: "upload one\n", token: "upload one", line: 1 },
];

/** The change log `exercise` produces under `p`, in id order. */
const expectedChanges = (p: string): string[] => [
  `${p}/a.md create`,
  `${p}/a.md update`,
  `${p}/a.md update`,
  `${p}/up/b.txt create`,
  `${p}/up/c.txt create`,
  `${p}/up/c.txt delete`,
  `${p}/raw.txt create`,
  `${p}/raw.txt update`,
  `${p}/raw-gone.txt create`,
  `${p}/raw-gone.txt delete`,
  `${p}/fn.txt create`,
  `${p}/fn.txt update`,
  `${p}/fn-up.txt create`,
  `${p}/fn-gone/x.txt create`,
  `${p}/fn-gone/x.txt delete`,
];

/** Every write path and every read path, as the role; returns what did not work as it should. */
async function exercise(session: Awaited<ReturnType<typeof roleSession>>, p: string): Promise<string[]> {
  const { backend: b, sql } = session;
  const failures: string[] = [];
  const attempt = async (label: string, run: () => Promise<unknown>) => {
    try {
      const r = (await run()) as { error?: unknown } | Array<{ error?: unknown }> | undefined;
      const error = Array.isArray(r) ? r.find((x) => x?.error)?.error : r?.error;
      if (error) failures.push(`${label}: ${error}`);
    } catch (e) {
      failures.push(`${label}: ${(e as Error).message}`);
    }
  };
  // Writes through the backend.
  await attempt("backend write (create)", () => b.write(`${p}/a.md`, "alpha\nbeta\n"));
  await attempt("backend write (overwrite)", () => b.write(`${p}/a.md`, "alpha\nbeta\ngamma\n"));
  await attempt("backend edit", () => b.edit(`${p}/a.md`, "beta", "BETA"));
  await attempt("backend uploadFiles", () =>
    b.uploadFiles([
      [`${p}/up/b.txt`, Buffer.from("upload one\n")],
      [`${p}/up/c.txt`, Buffer.from("upload two\n")],
    ]),
  );
  await attempt("backend delete", () => b.delete(`${p}/up/c.txt`));
  // Raw SQL on the tables.
  const text = (t: string) => [t, Buffer.byteLength(t), t.split("\n").length - 1];
  await attempt("raw INSERT INTO files", () =>
    sql(
      `INSERT INTO ${S}.files (workspace, path, content, mime_type, size, line_count) VALUES ('acme', $1, $2, 'text/plain', $3, $4)`,
      [`${p}/raw.txt`, ...text("raw insert\n")],
    ),
  );
  await attempt("raw UPDATE files", () =>
    sql(
      `UPDATE ${S}.files SET content = $2, size = $3, line_count = $4, version = version + 1 WHERE workspace = 'acme' AND path = $1`,
      [`${p}/raw.txt`, ...text("raw update\nline two\n")],
    ),
  );
  await attempt("raw INSERT INTO files (to delete)", () =>
    sql(
      `INSERT INTO ${S}.files (workspace, path, content, mime_type, size, line_count) VALUES ('acme', $1, $2, 'text/plain', $3, $4)`,
      [`${p}/raw-gone.txt`, ...text("gone\n")],
    ),
  );
  await attempt("raw DELETE FROM files", () =>
    sql(`DELETE FROM ${S}.files WHERE workspace = 'acme' AND path = $1`, [`${p}/raw-gone.txt`]),
  );
  // Raw SQL through the functions.
  await attempt("fs_write", () =>
    sql(`SELECT * FROM ${S}.fs_write('acme', $1, 'fn write\n', NULL, 'text/plain', NULL)`, [`${p}/fn.txt`]),
  );
  await attempt("fs_edit", async () => {
    const [r] = await sql(`SELECT * FROM ${S}.fs_edit('acme', $1, 'write', 'edit', false, NULL, 1048576)`, [
      `${p}/fn.txt`,
    ]);
    return r?.status === "ok" ? undefined : { error: `status ${r?.status}` };
  });
  await attempt("fs_upload", () =>
    sql(`SELECT ${S}.fs_upload('acme', $1, $2, $3, $4)`, [[`${p}/fn-up.txt`], ["fn upload\n"], [null], ["text/plain"]]),
  );
  await attempt("fs_upload (to delete)", () =>
    sql(`SELECT ${S}.fs_upload('acme', $1, $2, $3, $4)`, [[`${p}/fn-gone/x.txt`], ["x\n"], [null], ["text/plain"]]),
  );
  await attempt("fs_delete", async () => {
    const [r] = await sql(`SELECT ${S}.fs_delete('acme', $1) AS n`, [`${p}/fn-gone`]);
    return Number(r.n) === 1 ? undefined : { error: `deleted ${r.n}` };
  });

  // Reads, through the backend and as raw SQL: exactly what is stored.
  const files = expectedFiles(p);
  const expect = (label: string, actual: unknown, wanted: unknown) => {
    if (json(actual) !== json(wanted)) failures.push(`${label}: expected ${json(wanted)}, got ${json(actual)}`);
  };
  const downloads = await b.downloadFiles(files.map((f) => f.path));
  expect(
    "backend downloadFiles",
    downloads.map((d) => (d.content ? Buffer.from(d.content).toString() : d.error)),
    files.map((f) => f.content),
  );
  for (const f of files) {
    expect(`backend read ${f.path}`, (await b.read(f.path)).content, f.content);
    expect(`backend readRaw ${f.path}`, (await b.readRaw(f.path)).data?.content, f.content);
    expect(`backend stat ${f.path}`, (await b.stat(f.path)).data?.size, Buffer.byteLength(f.content));
    const hit = [{ path: f.path, line: f.line, text: f.content.split("\n")[f.line - 1] }];
    expect(`backend grep ${f.token}`, (await b.grep(f.token, p)).matches, hit);
    expect(
      `backend search (regex) ${f.token}`,
      (await b.search({ pattern: f.token.replace(" ", "\\s"), regex: true, path: p })).matches,
      hit,
    );
    expect(
      `backend search (ignoreCase) ${f.token}`,
      (await b.search({ pattern: f.token.toLowerCase(), ignoreCase: true, path: p })).matches,
      hit,
    );
  }
  expect("backend glob", (await b.glob("**", p)).files?.map((f) => f.path).sort(), files.map((f) => f.path).sort());
  const listing = [`${p}/a.md`, `${p}/fn-up.txt`, `${p}/fn.txt`, `${p}/raw.txt`, `${p}/up/`].sort((x, y) =>
    x.localeCompare(y),
  ); // ls's order
  expect(
    "backend ls",
    (await b.ls(p)).files?.map((f) => f.path),
    listing,
  );
  try {
    const changes = await sql(
      `SELECT path, op FROM ${S}.fs_changes('acme', 0, 100000) WHERE starts_with(path, $1) ORDER BY id`,
      [`${p}/`],
    );
    expect(
      "fs_changes",
      changes.map((c) => `${c.path} ${c.op}`),
      expectedChanges(p),
    );
    await sql(`SELECT ${S}.fs_changes_head(), ${S}.changes_channel('acme')`);
  } catch (e) {
    failures.push(`fs_changes: ${(e as Error).message}`);
  }
  return failures;
}

/**
 * The verdict of one case, as a list of broken promises (empty: all held), from the owner's side
 * (the admin connection bypasses RLS) and from the role's.
 */
async function verdict(
  session: Awaited<ReturnType<typeof roleSession>>,
  p: string,
  shadows: Record<string, number>,
  watched: Change[],
): Promise<string[]> {
  const broken: string[] = [];
  const expect = (label: string, actual: unknown, wanted: unknown) => {
    if (json(actual) !== json(wanted)) broken.push(`${label}: expected ${json(wanted)}, got ${json(actual)}`);
  };
  const loot = await session.sql("SELECT tag, cur, super, leaked FROM pg_temp.loot");
  // The critical promises first.
  const distinct = (xs: string[]) => [...new Set(xs)];
  expect(
    "planted code ran with another role's rights",
    distinct(
      loot
        .filter((l) => l.cur !== ROLE)
        .map(
          (l) => `${l.tag} as ${l.cur}${l.super ? " (superuser)" : ""}${l.leaked ? `, read ${json(l.leaked)}` : ""}`,
        ),
    ),
    [],
  );
  expect(
    "role is superuser",
    (await admin.query("SELECT rolsuper FROM pg_roles WHERE rolname = $1", [ROLE])).rows[0].rolsuper,
    false,
  );
  expect(
    "role's grants",
    (await admin.query(`SELECT workspace FROM ${S}.workspace_grants WHERE role_name = $1 ORDER BY 1`, [ROLE])).rows.map(
      (r) => r.workspace,
    ),
    ["acme"],
  );
  expect(
    "workspaces the role can see",
    (await session.sql(`SELECT DISTINCT workspace FROM ${S}.files ORDER BY 1`)).map((r) => r.workspace),
    ["acme"],
  );
  // Our function bodies never resolved a name through the session's temporary schema.
  expect("planted code ran at all", distinct(loot.map((l) => l.tag)), []);
  for (const [name, planted] of Object.entries(shadows)) {
    expect(
      `rows in pg_temp.${name}`,
      (await session.sql(`SELECT count(*)::int AS n FROM pg_temp.${name}`))[0].n,
      planted,
    );
  }
  // The real tables hold exactly what was written: files, their chunks, the change log.
  const files = expectedFiles(p);
  const real = await admin.query(
    `SELECT path, content FROM ${S}.files WHERE workspace = 'acme' AND starts_with(path, $1) ORDER BY path`,
    [`${p}/`],
  );
  expect(
    "real files",
    real.rows.map((r) => [r.path, r.content]),
    files.map((f) => [f.path, f.content]),
  );
  const chunks = await admin.query(
    `SELECT f.path, string_agg(c.content, E'\\n' ORDER BY c.first_line) AS text
     FROM ${S}.chunks c JOIN ${S}.files f ON f.chunk_set = c.chunk_set
     WHERE f.workspace = 'acme' AND starts_with(f.path, $1) GROUP BY f.path ORDER BY f.path`,
    [`${p}/`],
  );
  expect(
    "real chunks",
    chunks.rows.map((r) => [r.path, r.text]),
    files.map((f) => [f.path, f.content]),
  );
  const changes = await admin.query(
    `SELECT path, op FROM ${S}.changes WHERE workspace = 'acme' AND starts_with(path, $1) ORDER BY id`,
    [`${p}/`],
  );
  expect(
    "real change log",
    changes.rows.map((c) => `${c.path} ${c.op}`),
    expectedChanges(p),
  );
  for (let i = 0; i < 100 && watched.length < expectedChanges(p).length; i++) await sleep(50);
  expect(
    "owner's watch()",
    watched.map((c) => `${c.path} ${c.op}`),
    expectedChanges(p),
  );
  // The owner's reads agree with its downloads.
  const own = await owner.downloadFiles(files.map((f) => f.path));
  expect(
    "owner downloadFiles",
    own.map((d) => (d.content ? Buffer.from(d.content).toString() : d.error)),
    files.map((f) => f.content),
  );
  for (const f of files) {
    expect(`owner read ${f.path}`, (await owner.read(f.path)).content, f.content);
    expect(`owner grep ${f.token}`, (await owner.grep(f.token, p)).matches, [
      { path: f.path, line: f.line, text: f.content.split("\n")[f.line - 1] },
    ]);
  }
  return broken;
}

/** One case: a fresh role session with `setup`, every path driven, the verdict. */
async function attack(p: string, setup: string, shadows: Record<string, number> = {}): Promise<string[]> {
  const watched: Change[] = [];
  const sub = await owner.watch({ pollIntervalMs: 200, paths: `${p.slice(1)}/**`, onChange: (c) => watched.push(c) });
  let session: Awaited<ReturnType<typeof roleSession>> | undefined;
  try {
    session = await roleSession(setup);
    const failures = await exercise(session, p);
    return [...(await verdict(session, p, shadows, watched)), ...failures.map((f) => `as the role, ${f}`)];
  } finally {
    await sub.close();
    await session?.end();
    await restoreRole();
  }
}

const COLUMNS_OF: Record<string, string> = {
  files: "files",
  chunks: "chunks",
  changes: "changes",
  changes_horizon: "changes_horizon",
  workspace_grants: "workspace_grants",
  migrations: "migrations",
  // The transition tables of the chunk triggers are not in the catalog: prove they cannot be shadowed either.
  new_rows: "files",
  old_rows: "files",
};

/**
 * A temporary view named like one of our relations, with the columns of the real one: reading it
 * runs pg_temp.pwn, and an INSTEAD OF trigger runs it for every row written to it.
 */
const shadowView = (name: string) => `
  CREATE TEMP VIEW ${name} AS
    SELECT t.* FROM (SELECT pg_temp.pwn('read ${name}') AS ok OFFSET 0) x,
                    LATERAL (SELECT * FROM ${S}.${COLUMNS_OF[name]} WHERE NOT x.ok) t;
  ${name === "changes" ? `ALTER VIEW pg_temp.changes ALTER COLUMN id SET DEFAULT 1;` : ""}
  CREATE TRIGGER pwn INSTEAD OF INSERT OR UPDATE OR DELETE ON pg_temp.${name} FOR EACH ROW EXECUTE FUNCTION pg_temp.pwn_trigger();
`;

for (const name of Object.keys(COLUMNS_OF)) {
  test(`a pg_temp view named ${name} with an INSTEAD OF trigger: nothing runs as the owner${OWNER_IS_SUPERUSER ? " (a superuser)" : ""}, every path stays exact`, async () => {
    assert.equal(await attack(`/view-${name}`, shadowView(name)), []);
  });
}

test("plain pg_temp tables named changes, chunks, files, changes_horizon: no derived row is diverted; watch(), read and grep stay exact", async () => {
  const setup = `
    CREATE TEMP TABLE changes (id bigserial, workspace pg_catalog.text, path pg_catalog.text, op pg_catalog.text,
                               version bigint, size bigint, at timestamptz DEFAULT pg_catalog.clock_timestamp());
    -- Columns and defaults only: the real tables' trigram indexes name pg_trgm's schema.
    CREATE TEMP TABLE chunks (LIKE ${S}.chunks INCLUDING DEFAULTS, PRIMARY KEY (chunk_set, first_line));
    CREATE TEMP TABLE files (LIKE ${S}.files INCLUDING DEFAULTS INCLUDING GENERATED, PRIMARY KEY (workspace, path));
    CREATE TEMP TABLE changes_horizon (LIKE ${S}.changes_horizon INCLUDING DEFAULTS, PRIMARY KEY (workspace));
    INSERT INTO pg_temp.changes_horizon VALUES ('acme', 9223372036854775806);
    -- So that an owner without superuser rights could write into them too.
    GRANT ALL ON pg_temp.changes, pg_temp.chunks, pg_temp.files, pg_temp.changes_horizon TO PUBLIC;
    GRANT ALL ON SEQUENCE pg_temp.changes_id_seq TO PUBLIC;
  `;
  // Only the horizon row planted above may be there afterwards.
  assert.equal(await attack("/tables", setup, { changes: 0, chunks: 0, files: 0, changes_horizon: 1 }), []);
});

test("temporary types named text and record (temp tables): our functions keep the built-in types", async () => {
  const setup = `CREATE TEMP TABLE text (x integer); CREATE TEMP TABLE record (x integer);`;
  assert.equal(await attack("/type-table", setup), []);
});

test("a pg_temp domain named text whose CHECK runs planted code: never evaluated by our functions, never as the owner", async () => {
  const setup = `CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.pwn('domain text'));`;
  assert.equal(await attack("/type-domain", setup), []);
});

test("pg_temp functions and operators named like those our functions call: never resolved", async () => {
  const fn = (signature: string, returns: string, value: string) => `
    CREATE FUNCTION pg_temp.${signature} RETURNS ${returns} LANGUAGE plpgsql AS $f$
    BEGIN PERFORM pg_temp.pwn('function ${signature.replace(/'/g, "")}'); RETURN ${value}; END $f$;`;
  const setof = (signature: string, returns: string) => `
    CREATE FUNCTION pg_temp.${signature} RETURNS ${returns} LANGUAGE plpgsql AS $f$
    BEGIN PERFORM pg_temp.pwn('function ${signature}'); END $f$;`;
  const T = "pg_catalog.text";
  const setup = [
    // Ours (not schema-qualified in the bodies).
    fn(`text_line_count(${T})`, "integer", "0"),
    fn(`dir_upper_bound(${T})`, T, "''"),
    fn(`content_has(${T}, ${T})`, "boolean", "false"),
    fn(`chunk_matches(${T}, ${T}, boolean, boolean)`, "boolean", "false"),
    fn(`changes_channel()`, T, "'elsewhere'"),
    fn(`changes_channel(${T})`, T, "'elsewhere'"),
    setof(`chunk_lines(${T})`, `TABLE (line ${T}, n bigint)`),
    setof(`text_chunks(${T})`, `TABLE (first_line integer, line_count integer, content ${T})`),
    `CREATE FUNCTION pg_temp.search_scope(${T}, ${T}, boolean, ${T}, OUT lo ${T}, OUT hi ${T}, OUT dir ${T}, OUT exact boolean)
       LANGUAGE plpgsql AS $f$ BEGIN PERFORM pg_temp.pwn('function search_scope'); lo := ''; hi := ''; dir := '/'; exact := false; END $f$;`,
    // Built-ins the bodies call.
    setof(`string_to_table(${T}, ${T})`, `SETOF ${T}`),
    fn(`replace(${T}, ${T}, ${T})`, T, "''"),
    fn(`strpos(${T}, ${T})`, "integer", "0"),
    fn(`length(${T})`, "integer", "0"),
    fn(`octet_length(${T})`, "integer", "0"),
    fn(`substr(${T}, integer)`, T, "''"),
    fn(`split_part(${T}, ${T}, integer)`, T, "''"),
    fn(`"left"(${T}, integer)`, T, "''"),
    fn(`"right"(${T}, integer)`, T, "''"),
    fn(`reverse(${T})`, T, "''"),
    fn(`regexp_replace(${T}, ${T}, ${T})`, T, "''"),
    fn(`current_setting(${T}, boolean)`, T, "'1'"),
    fn(`set_config(${T}, ${T}, boolean)`, T, "''"),
    fn(`hashtext(${T})`, "integer", "0"),
    setof(`pg_advisory_xact_lock(bigint)`, "void"),
    setof(`pg_notify(${T}, ${T})`, "void"),
    fn(`clock_timestamp()`, "timestamptz", "'epoch'"),
    // Operators, each backed by a planted function.
    fn(`op_tt(a ${T}, b ${T})`, "boolean", "false"),
    fn(`op_cat(a ${T}, b ${T})`, T, "''"),
    fn(`op_bb(a bigint, b bigint)`, "boolean", "false"),
    fn(`op_ii(a integer, b integer)`, "integer", "0"),
    ...["=", "<>", "<", ">=", "~~", "~~*", "~", "~*"].map(
      (op) => `CREATE OPERATOR pg_temp.${op} (LEFTARG = ${T}, RIGHTARG = ${T}, FUNCTION = pg_temp.op_tt);`,
    ),
    `CREATE OPERATOR pg_temp.|| (LEFTARG = ${T}, RIGHTARG = ${T}, FUNCTION = pg_temp.op_cat);`,
    ...["=", ">", ">=", "<>"].map(
      (op) => `CREATE OPERATOR pg_temp.${op} (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = pg_temp.op_bb);`,
    ),
    ...["+", "-"].map(
      (op) => `CREATE OPERATOR pg_temp.${op} (LEFTARG = integer, RIGHTARG = integer, FUNCTION = pg_temp.op_ii);`,
    ),
  ].join("\n");
  assert.equal(await attack("/functions", setup), []);
});

/**
 * Migration 0002's transaction-local markers are custom settings, which any role may also set for
 * its whole session; a preset marker must not let it skip the change log's ordering lock or its
 * notification. The lock's key is workspace acme's (0028): the two-key advisory lock
 * (hashtext('deepagents-backends:changes:' || schema), hashtext('acme')).
 */
async function listen(): Promise<{ notes: Array<{ workspace: string; id: number }>; end(): Promise<void> }> {
  const c = await adminClient();
  // Workspace acme's own channel (migrations/0005): the payload is the id alone.
  const channel = (await c.query(`SELECT ${S}.changes_channel('acme') AS channel`)).rows[0].channel;
  const notes: Array<{ workspace: string; id: number }> = [];
  c.on("notification", (n) => {
    if (n.channel === channel && n.payload) notes.push({ workspace: "acme", ...JSON.parse(n.payload) });
  });
  await c.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
  let ended: Promise<void> | undefined;
  const end = () => (ended ??= c.end());
  closers.push(end);
  return { notes, end };
}

/** Whether a write by `write` waits while another session holds the change log's lock. */
async function waitsForChangeLock(write: () => Promise<unknown>): Promise<boolean> {
  const holder = await adminClient();
  try {
    await holder.query("SELECT pg_advisory_lock(hashtext('deepagents-backends:changes:' || $1), hashtext('acme'))", [
      S,
    ]);
    let done = false;
    const running = write().finally(() => (done = true));
    await sleep(700);
    const waited = !done;
    await holder.query("SELECT pg_advisory_unlock(hashtext('deepagents-backends:changes:' || $1), hashtext('acme'))", [
      S,
    ]);
    await running;
    return waited;
  } finally {
    await holder.end();
  }
}

test("a session-level deepagents_backends.notified = '1' does not silence the change notification", async () => {
  const listener = await listen();
  const watched: Change[] = [];
  // Notification-driven only: the fallback poll is far beyond the test's wait.
  const sub = await owner.watch({ pollIntervalMs: 600_000, onChange: (c) => watched.push(c) });
  const session = await roleSession("SET deepagents_backends.notified = '1'");
  try {
    assert.is((await session.sql("SELECT current_setting('deepagents_backends.notified') AS v"))[0].v, "1");
    assert.is((await session.backend.write("/notified/a.txt", "a\n")).error, undefined);
    await session.sql(`SELECT * FROM ${S}.fs_write('acme', '/notified/b.txt', 'b\n', NULL, 'text/plain', NULL)`);
    const ids = (
      await admin.query(
        `SELECT id FROM ${S}.changes WHERE workspace = 'acme' AND starts_with(path, '/notified/') ORDER BY id`,
      )
    ).rows.map((r) => Number(r.id));
    assert.is(ids.length, 2, "both changes recorded");
    // Wait for both: the watcher can read both changes on the first wake-up, before the second
    // notification reaches the raw listener.
    const heard = () => listener.notes.filter((n) => n.workspace === "acme");
    for (let i = 0; i < 60 && (watched.length < 2 || heard().length < 2); i++) await sleep(50);
    assert.equal(
      heard().map((n) => n.id),
      ids,
      "one notification per commit, with its id",
    );
    assert.equal(
      watched.map((c) => c.path),
      ["/notified/a.txt", "/notified/b.txt"],
      "the owner's watch() woke up",
    );
  } finally {
    await sub.close();
    await session.end();
    await listener.end();
  }
});

test("a session-level deepagents_backends.first_change does not skip the commit-order lock or the notification", async () => {
  const listener = await listen();
  const session = await roleSession("SELECT 1");
  try {
    // The probe itself: an ordinary write by the role waits for the lock at commit.
    assert.ok(
      await waitsForChangeLock(() =>
        session.sql(`SELECT * FROM ${S}.fs_write('acme', '/first/control.txt', 'c\n', NULL, 'text/plain', NULL)`),
      ),
      "control: a write waits for the change log's lock (if not, the lock key in this test is out of date)",
    );
    await session.sql("SET deepagents_backends.first_change = '9223372036854775807'");
    const before = Number((await admin.query(`SELECT coalesce(max(id), 0) AS id FROM ${S}.changes`)).rows[0].id);
    const waited = await waitsForChangeLock(() => session.backend.write("/first/a.txt", "a\n"));
    const rows = (await admin.query(`SELECT id FROM ${S}.changes WHERE workspace = 'acme' AND path = '/first/a.txt'`))
      .rows;
    assert.is(rows.length, 1, "the change is recorded");
    assert.ok(Number(rows[0].id) > before, "with an id above every earlier one");
    for (let i = 0; i < 60 && !listener.notes.some((n) => n.id === Number(rows[0].id)); i++) await sleep(50);
    const notified = listener.notes.some((n) => n.workspace === "acme" && n.id === Number(rows[0].id));
    assert.equal({ waitedForCommitOrderLock: waited, notified }, { waitedForCommitOrderLock: true, notified: true });
  } finally {
    await session.end();
    await listener.end();
  }
});

test("a session-level deepagents_backends.wake_up = 'after_commit' (0028) silences only the NOTIFY of the role's own commits: they are logged in order under the workspace's lock, and a watcher reads them at its next poll", async () => {
  const listener = await listen();
  const watched: Change[] = [];
  const sub = await owner.watch({ pollIntervalMs: 300, coalesceMs: 0, onChange: (c) => watched.push(c) });
  const session = await roleSession("SET deepagents_backends.wake_up = 'after_commit'");
  try {
    const waited = await waitsForChangeLock(() =>
      session.sql(`SELECT * FROM ${S}.fs_write('acme', '/silent/a.txt', 'a\n', NULL, 'text/plain', NULL)`),
    );
    assert.ok(waited, "the write waited for workspace acme's commit-order lock");
    const [{ id }] = (
      await admin.query(`SELECT id FROM ${S}.changes WHERE workspace = 'acme' AND path = '/silent/a.txt'`)
    ).rows;
    for (let i = 0; i < 60 && !watched.some((c) => c.path === "/silent/a.txt"); i++) await sleep(50);
    assert.equal(
      watched.filter((c) => c.path === "/silent/a.txt").map((c) => c.id),
      [Number(id)],
      "the watcher read the change at its poll",
    );
    assert.not.ok(
      listener.notes.some((n) => n.id === Number(id)),
      "no NOTIFY from the commit of a session that said it wakes watchers itself",
    );
    // Another session's commit in the same workspace is still notified.
    await admin.query(`SELECT * FROM ${S}.fs_write('acme', '/silent/b.txt', 'b\n', NULL, 'text/plain', NULL)`);
    const [{ id: other }] = (
      await admin.query(`SELECT id FROM ${S}.changes WHERE workspace = 'acme' AND path = '/silent/b.txt'`)
    ).rows;
    for (let i = 0; i < 60 && !listener.notes.some((n) => n.id === Number(other)); i++) await sleep(50);
    assert.ok(
      listener.notes.some((n) => n.id === Number(other)),
      "the next commit of another session notifies",
    );
  } finally {
    await sub.close();
    await session.end();
    await listener.end();
  }
});

test("the change log's staging and arming tables (0015) are the owner's alone: a role can neither forge a staged change nor disarm the flush", async () => {
  const session = await roleSession("SELECT 1");
  try {
    for (const statement of [
      `INSERT INTO ${S}.changes_pending (workspace, path, op, version, size) VALUES ('globex', '/forged.txt', 'create', 1, 1)`,
      `SELECT * FROM ${S}.changes_pending`,
      `INSERT INTO ${S}.changes_flush (xact) VALUES (pg_current_xact_id())`,
      `DELETE FROM ${S}.changes_flush`,
      `TRUNCATE ${S}.changes_pending`,
    ]) {
      const error = await session.sql(statement).then(
        () => "accepted",
        (e: Error) => e.message,
      );
      assert.match(error, /permission denied/, statement);
    }
    // And its own write, in a transaction that tried the above first, is still logged.
    await session.sql("BEGIN");
    await session.sql(`DELETE FROM ${S}.changes_flush`).catch(() => undefined);
    await session.sql("ROLLBACK");
    assert.is((await session.backend.write("/staged/a.txt", "a\n")).error, undefined);
    const rows = (await admin.query(`SELECT op FROM ${S}.changes WHERE workspace = 'acme' AND path = '/staged/a.txt'`))
      .rows;
    assert.equal(
      rows.map((r) => r.op),
      ["create"],
    );
  } finally {
    await session.end();
  }
});

/**
 * The owner's SECURITY DEFINER trigger functions attached by the role to a temporary table of its
 * own (CREATE TRIGGER needs EXECUTE on the function, which was PUBLIC's): each would run as the
 * owner on rows the role made up — TRUNCATE of its table wiped every workspace's chunks, a
 * tombstone planted for another workspace broke its writes, a forged change landed in its feed.
 */
test("the owner's trigger functions cannot be attached to a table of the role's own", async () => {
  await owner.write("/attach/victim.txt", "hello chunks\n");
  const chunksBefore = Number((await admin.query(`SELECT count(*) AS n FROM ${S}.chunks`)).rows[0].n);
  const session = await roleSession("CREATE TEMP TABLE t (LIKE " + S + ".files INCLUDING DEFAULTS)");
  const refused: string[] = [];
  try {
    const definers = (
      await admin.query(
        `SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS args FROM pg_proc p
       WHERE p.pronamespace = $1::regnamespace AND p.prosecdef ORDER BY 1`,
        [S],
      )
    ).rows;
    assert.ok(definers.length >= 9, `${definers.length} definer functions`);
    for (const { proname } of definers) {
      for (const [timing, event] of [
        ["AFTER", "TRUNCATE"],
        ["BEFORE", "INSERT"],
        ["AFTER", "DELETE"],
      ]) {
        const level = event === "TRUNCATE" ? "STATEMENT" : "ROW";
        const ddl = `CREATE TRIGGER x_${proname}_${event.toLowerCase()} ${timing} ${event} ON pg_temp.t FOR EACH ${level} EXECUTE FUNCTION ${S}.${proname}()`;
        const error = await session.sql(ddl).then(
          () => null,
          (e: Error) => e.message,
        );
        if (error && /permission denied for function/.test(error)) refused.push(`${proname} ${event}`);
        else assert.unreachable(`${ddl}: ${error ?? "accepted"}`);
      }
    }
    await session.sql("TRUNCATE pg_temp.t");
  } finally {
    await session.end();
    await restoreRole();
  }
  assert.is(
    Number((await admin.query(`SELECT count(*) AS n FROM ${S}.chunks`)).rows[0].n),
    chunksBefore,
    "every chunk is still there",
  );
  assert.equal((await owner.grep("hello chunks", "/attach")).matches?.length, 1);
});

test.run();
