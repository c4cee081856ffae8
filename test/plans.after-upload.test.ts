/**
 * Plans right after bulk writes, with no ANALYZE by hand and autovacuum kept away (issue 14,
 * item 1; migration 0021): the statement that makes the planner's statistics wrong refreshes them.
 * - into an empty schema: uploads of 500 files at a time, then a selective grep and an
 *   ignore-case search are answered by the trigram index (before 0021 the planner believed the
 *   tables empty and read every chunk of the workspace: 7.4 s against 3.4 ms on 12,000 files);
 * - a workspace that grows 100× in a table whose statistics describe it small;
 * - a tiny workspace in a big table: a capped common literal reads its few files in path order,
 *   not the whole table's postings of the literal;
 * - a role restricted with grant_workspace, which may not ANALYZE, gets the same from its upload;
 * - single writes and small uploads (under 50 rows a statement) never analyze.
 * Plans and statistics counters, not timings.
 */
import { randomBytes } from "node:crypto";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { grantWorkspace, PostgresBackend } from "../src/index.js";
import { adminClient, databaseUrl } from "./helpers/db.js";
import { planCapturingBackend } from "./helpers/plans.js";

const { schema, capture, backend, admin, end } = await planCapturingBackend("plans_fresh");
test.after(end);

// Autovacuum must not refresh the statistics for us during the test.
await admin.query(
  `ALTER TABLE ${schema}.files SET (autovacuum_enabled = false);
   ALTER TABLE ${schema}.chunks SET (autovacuum_enabled = false)`,
);
const analyzes = async () =>
  Number((await admin.query(`SELECT pg_stat_get_analyze_count('${schema}.files'::regclass) AS n`)).rows[0].n);
// ANALYZE counts itself in the shared statistics at once (PostgreSQL 15 and later); a fresh
// snapshot of them, in case this connection read them inside a transaction.
const settledAnalyzes = async () => {
  await admin.query("SELECT pg_stat_clear_snapshot()");
  return analyzes();
};

const TRIGRAM = /Bitmap Index Scan on chunks_content_trgm_idx\s+\([^)]*\)\s+Index Cond: \(content (~~\*?|~\*?) /;
const upload = async (workspace: string, files: Array<[string, Uint8Array]>) => {
  const b = backend.withWorkspace(workspace);
  for (let i = 0; i < files.length; i += 500)
    assert.ok((await b.uploadFiles(files.slice(i, i + 500))).every((r) => r.error === null));
  return b;
};
const codeFile = (i: number): [string, Uint8Array] => [
  `/src/d${i % 30}/f${i}.ts`,
  Buffer.from(`export const value${i} = ${i}; // the usual words\n`.repeat(20)),
];
const needle: [string, Uint8Array] = ["/src/d1/rare.ts", Buffer.from("before\nthe zyxwvutsrq needle\nafter\n")];
const RARE_MATCH = { matches: [{ path: "/src/d1/rare.ts", line: 2, text: "the zyxwvutsrq needle" }] };

async function selectiveUsesTrigrams(workspace: string): Promise<void> {
  const b = backend.withWorkspace(workspace);
  for (const call of [
    () => b.grep("zyxwvutsrq", "/", null, 10),
    () => b.search({ pattern: "ZYXWVUTSRQ", ignoreCase: true, maxCount: 10 }),
  ]) {
    let result: unknown;
    const plan = await capture.planOf("JOIN chunks c ON c.chunk_set = f.chunk_set", async () => {
      result = await call();
    });
    assert.equal(result, RARE_MATCH);
    assert.match(plan, TRIGRAM, plan);
    assert.not.match(plan, /Scan (using|on) chunks_pkey/, plan);
  }
}

test("right after an upload into an empty schema: a selective grep uses the trigram index", async () => {
  const before = await settledAnalyzes(); // (the migrations analyzed the empty tables)
  await upload("fresh", [...Array.from({ length: 3000 }, (_, i) => codeFile(i)), needle]);
  assert.ok((await settledAnalyzes()) > before, "the upload analyzed");
  await selectiveUsesTrigrams("fresh");
});

test("a workspace that grows 100× after its statistics were taken: a selective grep uses the trigram index", async () => {
  await upload(
    "grows",
    Array.from({ length: 15 }, (_, i) => codeFile(i)),
  );
  await admin.query(`ANALYZE ${schema}.files, ${schema}.chunks`); // taken while it was small
  const before = await settledAnalyzes();
  // 1,500 files: the workspace grows 100×, the table (3,000 files of the test above) by half, so
  // it is the workspace's estimate, not the table's size, that calls for ANALYZE.
  await upload("grows", [...Array.from({ length: 1499 }, (_, i) => codeFile(i + 15)), needle]);
  assert.ok((await settledAnalyzes()) > before, "the upload analyzed");
  await selectiveUsesTrigrams("grows");
});

test("a tiny workspace in a big table: a capped common literal reads its files in path order", async () => {
  const tiny = await upload(
    "tiny",
    Array.from({ length: 5 }, (_, i) => codeFile(i)),
  );
  let result: { matches?: unknown[] } = {};
  const plan = await capture.planOf("m.lines IS NOT NULL", async () => {
    result = await tiny.grep("the usual words", "/", null, 25);
  });
  assert.is(result.matches?.length, 25);
  assert.match(plan, /Index Scan using files_pkey on files f/, plan);
  assert.not.match(plan, /chunks_content_trgm_idx/, plan);
});

test("a role restricted to its workspace: its upload refreshes the statistics it may not ANALYZE itself", async () => {
  const role = `da_stats_${randomBytes(4).toString("hex")}`;
  const password = randomBytes(12).toString("hex");
  const url = new URL(await databaseUrl());
  url.username = role;
  url.password = password;
  await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
  // A setting the role could give itself (ALTER ROLE ... SET): ANALYZE must not take it from the
  // writer's session, or one upload writes every workspace's statistics from a handful of rows.
  await admin.query(`ALTER ROLE ${role} SET default_statistics_target = 1`);
  const tenant = new PostgresBackend({
    connectionString: url.toString(),
    schema,
    workspace: "tenant",
    rowLevelSecurity: true,
    maxPoolSize: 2,
    minPoolSize: 0,
  });
  try {
    await grantWorkspace(capture.pool, schema, role, "tenant");
    // PostgreSQL answers a role that may not ANALYZE a table with a warning, and skips it.
    const before = await settledAnalyzes();
    await tenant.pool.query(`ANALYZE ${schema}.files`).catch(() => {});
    assert.is(await settledAnalyzes(), before, "the role's own ANALYZE did nothing");
    const files = [...Array.from({ length: 599 }, (_, i) => codeFile(i)), needle];
    assert.ok((await tenant.uploadFiles(files)).every((r) => r.error === null));
    assert.ok((await settledAnalyzes()) > before, "its upload analyzed, as the owner");
    const { rows } = await admin.query(
      `SELECT cardinality(histogram_bounds::text::text[]) AS n FROM pg_stats
       WHERE schemaname = $1 AND tablename = 'files' AND attname = 'path'`,
      [schema],
    );
    assert.ok(rows[0]?.n > 10, `statistics target pinned: ${rows[0]?.n} histogram bounds`);
    await selectiveUsesTrigrams("tenant");
  } finally {
    await tenant.close();
    await admin.query(`DROP OWNED BY ${role}`);
    await admin.query(`DROP ROLE ${role}`);
  }
});

test("an upload whose ANALYZE deadlocks with an uncommitted GRANT still lands (the ANALYZE is skipped)", async () => {
  const granting = await adminClient();
  const b = backend.withWorkspace("deadlock");
  try {
    // An owner's transaction that granted on files (as grant_workspace does) and is still open:
    // ANALYZE's in-place update of files' pg_class row waits for it.
    await granting.query("BEGIN");
    await granting.query(`GRANT SELECT ON ${schema}.files TO PUBLIC`);
    const files = Array.from({ length: 60 }, (_, i) => codeFile(i));
    const uploading = b.uploadFiles(files);
    // Wait until the upload waits (on the granting transaction), then close the cycle: insert
    // one of the upload's paths, which waits on the upload's uncommitted row.
    let waited = false;
    for (let i = 0; i < 200 && !waited; i++) {
      const { rows } = await admin.query(
        `SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE NOT l.granted AND a.query LIKE '%fs_upload%' AND a.pid <> pg_backend_pid()`,
      );
      waited = rows.length > 0;
      if (!waited) await new Promise((r) => setTimeout(r, 25));
    }
    assert.ok(waited, "the upload's ANALYZE waited for the granting transaction");
    const inserting = granting
      .query(
        `INSERT INTO ${schema}.files (workspace, path, content, mime_type, size, line_count)
         VALUES ('deadlock', $1, 'x', 'text/plain', 1, 1)`,
        [files[0][0]],
      )
      .then(
        () => null,
        (e: { code?: string }) => e.code,
      );
    const uploaded = await uploading;
    assert.ok(
      uploaded.every((r) => r.error === null),
      JSON.stringify(uploaded.find((r) => r.error)),
    );
    // The INSERT met the upload's row: a duplicate once the upload committed.
    assert.is(await inserting, "23505");
  } finally {
    await granting.query("ROLLBACK").catch(() => {});
    await granting.end();
  }
  assert.is((await b.read(codeFile(0)[0])).error, undefined);
});

test("single writes and uploads of fewer than 50 files never analyze", async () => {
  const before = await settledAnalyzes();
  const b = backend.withWorkspace("small-writes");
  for (let i = 0; i < 20; i++) assert.is((await b.write(`/w${i}.md`, `file ${i}\n`)).error, undefined);
  await upload(
    "small-writes",
    Array.from({ length: 49 }, (_, i) => codeFile(i)),
  );
  assert.is(await settledAnalyzes(), before);
});

test.run();
