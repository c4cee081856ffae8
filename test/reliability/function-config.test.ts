/**
 * The privilege boundary, read from the catalog (issue 11, item 1): every function of the schema
 * either pins `search_path = <schema>, pg_temp` (pg_temp last, so a caller's temporary objects
 * can never shadow a name in its body) or is one of the few pure helpers listed here, which touch
 * no relation, run only inside pinned callers, and must stay unpinned so the planner can inline
 * them. SECURITY DEFINER functions are always pinned, are all trigger functions, and none can be
 * executed (so attached to another table) by PUBLIC.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { adminClient, testBackend, TEST_SCHEMA } from "../helpers/db.js";

/** Pure helpers (no table, view or type name in their bodies other than built-in ones). */
const UNPINNED = [
  "bytes_common_prefix",
  "bytes_common_suffix",
  "changes_lock", // 0005's changes_lock(), kept by 0028 for a flush of the old body (see PINNED_OVERLOADS)
  "chunk_lines",
  "chunk_matches",
  "content_has",
  "dir_upper_bound",
  "file_body",
  // (a SQL-standard body, bound when created: its one name, the pinned chunk_set_text, qualified)
  "file_text",
  "history_max_depth",
  "path_ancestors",
  "text_chunks",
  "text_line_count",
];

/** Overloads of a listed helper's name that must be pinned all the same. */
const PINNED_OVERLOADS = ["changes_lock(p_workspaces text[])"];

const b = await testBackend(); // migrates the test schema
const admin = await adminClient();
test.after(async () => {
  await b.close();
  await admin.end();
});

test("every function pins search_path to '<schema>, pg_temp' or is a listed pure helper", async () => {
  const { rows } = await admin.query(
    `SELECT p.proname, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS signature,
            p.prosecdef, p.prorettype = 'trigger'::regtype AS is_trigger,
            (SELECT c FROM unnest(p.proconfig) c WHERE c LIKE 'search\\_path=%') AS search_path,
            has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
     FROM pg_proc p
     WHERE p.pronamespace = $1::regnamespace
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
     ORDER BY p.proname`,
    [TEST_SCHEMA],
  );
  assert.ok(rows.length > 30, `${rows.length} functions`);
  const wrong = rows.filter(
    (r) =>
      (r.search_path ?? null) !== `search_path=${TEST_SCHEMA}, pg_temp` &&
      (!UNPINNED.includes(r.proname) || PINNED_OVERLOADS.includes(r.signature)),
  );
  assert.equal(
    wrong.map((r) => `${r.proname}: ${r.search_path}`),
    [],
  );
  const unpinnedDefiners = rows.filter((r) => r.prosecdef && r.search_path !== `search_path=${TEST_SCHEMA}, pg_temp`);
  assert.equal(
    unpinnedDefiners.map((r) => r.proname),
    [],
  );
  // The only definers are trigger functions, and no one but the owner may use them: a role with
  // EXECUTE could attach one to a temporary table of its own and run it as the owner.
  assert.equal(
    rows.filter((r) => r.prosecdef && !r.is_trigger).map((r) => r.proname),
    [],
  );
  assert.equal(
    rows.filter((r) => r.prosecdef && r.public_execute).map((r) => r.proname),
    [],
  );
  assert.ok(rows.filter((r) => r.prosecdef).length >= 9, "the definer triggers are there");
  assert.equal(
    UNPINNED.filter((name) => !rows.some((r) => r.proname === name)),
    [],
    "every listed helper exists",
  );
});

test("the pure helpers reference no relation: their bodies resolve only built-in functions and operators", async () => {
  const { rows } = await admin.query(
    `SELECT p.proname, p.prosrc FROM pg_proc p WHERE p.pronamespace = $1::regnamespace AND p.proname = ANY ($2)`,
    [TEST_SCHEMA, UNPINNED],
  );
  for (const r of rows) {
    // A FROM/JOIN may only name a set-returning built-in (string_to_table, generate_series, unnest).
    const sources = [...String(r.prosrc).matchAll(/\b(?:FROM|JOIN)\s+([a-z_][a-z0-9_.]*)/gi)].map((m) =>
      m[1].toLowerCase(),
    );
    const relations = sources.filter((s) => !["string_to_table", "generate_series", "unnest"].includes(s));
    assert.equal(relations, [], `${r.proname} reads ${relations.join(", ")}`);
    assert.not.match(
      String(r.prosrc),
      /::\s*text\b|\bnew_rows\b|\bfiles\b|\bchunks\b/i,
      `${r.proname} names a type or table`,
    );
  }
});

test("the pure helpers with SQL-standard bodies (RETURN ..., no source text to read above) depend on no relation or composite type", async () => {
  // PostgreSQL records what a SQL-standard body references in pg_depend, bound when it is created.
  const { rows } = await admin.query(
    `SELECT p.proname,
            coalesce(array_agg(d.refobjid::regclass::text ORDER BY 1) FILTER (WHERE d.refclassid = 'pg_class'::regclass), '{}') AS relations,
            coalesce(array_agg(d.refobjid::regtype::text ORDER BY 1) FILTER (
              WHERE d.refclassid = 'pg_type'::regclass AND (SELECT t.typtype FROM pg_type t WHERE t.oid = d.refobjid) = 'c'), '{}') AS row_types
     FROM pg_proc p
     LEFT JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'n'
     WHERE p.pronamespace = $1::regnamespace AND p.proname = ANY ($2) AND p.prosqlbody IS NOT NULL
     GROUP BY p.proname ORDER BY 1`,
    [TEST_SCHEMA, UNPINNED],
  );
  assert.ok(rows.length >= 3, `${rows.map((r) => r.proname).join()}: the SQL-standard helpers are checked`);
  assert.equal(
    rows
      .filter((r) => r.relations.length > 0 || r.row_types.length > 0)
      .map((r) => `${r.proname}: ${r.relations} ${r.row_types}`),
    [],
  );
});

test("a function that turns sequential scans off turns JIT off too (before PostgreSQL 18 a disabled node costs 10^10, which JIT-compiled every call)", async () => {
  const { rows } = await admin.query(
    `SELECT p.proname, p.proconfig FROM pg_proc p
     WHERE p.pronamespace = $1::regnamespace AND 'enable_seqscan=off' = ANY (p.proconfig)
     ORDER BY 1`,
    [TEST_SCHEMA],
  );
  assert.ok(rows.length >= 30, `${rows.length} functions with enable_seqscan=off`);
  assert.equal(
    rows.filter((r) => !r.proconfig.includes("jit=off")).map((r) => r.proname),
    [],
  );
});

test("the triggers every write runs keep generic plans (0015, 0016): a key probe re-planned on every call cost a 10,000-file fork 0.4 s", async () => {
  const perRow = [
    "changes_flush_now",
    "files_first_version",
    "files_renamed_version",
    "chunks_assign",
    "history_policy",
    "history_enabled",
  ];
  const { rows } = await admin.query(
    `SELECT p.proname FROM pg_proc p
     WHERE p.pronamespace = $1::regnamespace AND p.proname = ANY ($2)
       AND 'plan_cache_mode=force_generic_plan' = ANY (p.proconfig)
     ORDER BY 1`,
    [TEST_SCHEMA, perRow],
  );
  assert.equal(
    rows.map((r) => r.proname),
    [...perRow].sort(),
  );
});

test("the statement triggers, which read their transition tables, re-plan their parameterized statements per call (0016): a generic plan made for a one-row statement took a 2,000-file delete with history to 1.2 s", async () => {
  const { rows } = await admin.query(
    `SELECT p.proname, coalesce(p.proconfig, '{}') AS proconfig FROM pg_proc p
     WHERE p.pronamespace = $1::regnamespace AND p.prosrc ~ '\\m(new_rows|old_rows)\\M'
     ORDER BY 1`,
    [TEST_SCHEMA],
  );
  assert.ok(rows.length >= 9, rows.map((r) => r.proname).join());
  // chunks_update (0018) and history_updated (0019) keep one plan: their statements are linear
  // whatever the plan, and re-planning them cost 0.7 ms of every write (chunks_update's);
  // plans.transition-tables.test.ts holds the shapes.
  const oncePerSession = ["chunks_update", "history_updated"];
  assert.equal(
    rows
      .filter((r) => !r.proconfig.includes("plan_cache_mode=force_custom_plan"))
      .map((r) => [r.proname, r.proconfig.includes("plan_cache_mode=force_generic_plan")]),
    oncePerSession.map((name) => [name, true]),
  );
});

test("path_ancestors (PL/pgSQL since 0029, planned once) gives 0005's answers: the directories above a path, outermost first", async () => {
  const { rows } = await admin.query(`SELECT p, ${TEST_SCHEMA}.path_ancestors(p) AS a FROM unnest($1::text[]) p`, [
    ["/a/b/c.txt", "/a", "/", "", "//", "/a//b", "/a b/ü/x"],
  ]);
  assert.equal(
    rows.map((r) => [r.p, r.a]),
    [
      ["/a/b/c.txt", ["/a", "/a/b"]],
      ["/a", []],
      ["/", []],
      ["", []],
      ["//", ["/"]],
      ["/a//b", ["/a", "/a/"]],
      ["/a b/ü/x", ["/a b", "/a b/ü"]],
    ],
  );
  const { rows: language } = await admin.query(
    `SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
     WHERE p.oid = '${TEST_SCHEMA}.path_ancestors(text)'::regprocedure`,
  );
  assert.is(language[0].lanname, "plpgsql", "a SQL body with a sub-select is never inlined: planned on every call");
});

test("file_text and file_body are inlined where they are used (0018): not inlined, each use was a SQL-function call planned anew", async () => {
  const { rows } = await admin.query(
    `EXPLAIN (VERBOSE, COSTS OFF)
     SELECT ${TEST_SCHEMA}.file_body(${TEST_SCHEMA}.file_text(f.content, f.chunk_set), f.bytes) FROM ${TEST_SCHEMA}.files f`,
  );
  const plan = rows.map((r) => r["QUERY PLAN"]).join("\n");
  assert.match(plan, /convert_to/);
  assert.match(plan, /CASE WHEN/);
  assert.not.match(plan, /file_body\(|file_text\(/);
});

test.run();
