/**
 * Chunk rows (migrations/0003_chunks.sql): every text file is also stored as ~3 kB runs of whole
 * lines, kept in step with `files` by triggers, and read windows, grep and search are cut from
 * them. These tests hold the chunks to the file: they join back to exactly its content, number
 * lines as JavaScript's split("\n") does, follow every kind of write, and windows and matches
 * that straddle chunk boundaries come out as JavaScript computes them on the whole text.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { adminClient, testBackend, TEST_SCHEMA } from "./helpers/db.js";

const backend = await testBackend();
const admin = await adminClient();
test.after(async () => {
  await backend.close();
  await admin.end();
});

interface ChunkRow {
  first_line: number;
  line_count: number;
  content: string;
}
async function chunksOf(path: string, ws = backend.workspace): Promise<ChunkRow[]> {
  const { rows } = await admin.query(
    `SELECT c.first_line, c.line_count, c.content FROM ${TEST_SCHEMA}.chunks c
     JOIN ${TEST_SCHEMA}.files f ON f.chunk_set = c.chunk_set
     WHERE f.workspace = $1 AND f.path = $2 ORDER BY c.first_line`,
    [ws, path],
  );
  return rows;
}

/** The chunks of a file cover its lines exactly once, in order, and join back to its text. */
async function assertChunked(path: string, text: string) {
  const chunks = await chunksOf(path);
  const lines = text.split("\n");
  assert.ok(chunks.length > 0, `${path} has chunks`);
  let next = 1;
  for (const c of chunks) {
    assert.is(c.first_line, next, `${path}: chunks are contiguous`);
    assert.is(c.content === "" ? 1 : c.content.split("\n").length, c.line_count, `${path}: line_count`);
    next += c.line_count;
  }
  assert.is(next - 1, lines.length, `${path}: every line once`);
  assert.is(chunks.map((c) => c.content).join("\n"), text, `${path}: joins back to the file`);
}

// Seeded generator: the same texts on every run.
let seed = 20261122;
const rand = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
};
const word = () => ["alpha", "beta", "függ", "日本語", "x", "", "needle", "\r", "  "][Math.floor(rand() * 9)];
const line = (maxWords: number) => Array.from({ length: Math.floor(rand() * maxWords) }, word).join(" ");

const texts: Record<string, string> = {
  "/empty.txt": "",
  "/newline.txt": "\n",
  "/one.txt": "a",
  "/one-nl.txt": "a\n",
  "/blank-lines.txt": "\n\n\n\n",
  "/crlf.txt": "one\r\ntwo\r\n",
  // Lines longer than a chunk, and an empty line alone between two of them.
  "/long-lines.txt": ["short", "L".repeat(7000), "", "M".repeat(9000), "tail", ""].join("\n"),
  "/boundary.txt": Array.from({ length: 400 }, (_, i) => `${i}`.padStart(29, "-")).join("\n") + "\n",
  "/mixed.txt": Array.from({ length: 3000 }, () => line(40)).join("\n"),
};

test("every kind of text is cut into contiguous chunks that join back to it", async () => {
  for (const [path, text] of Object.entries(texts)) assert.is((await backend.write(path, text)).error, undefined, path);
  for (const [path, text] of Object.entries(texts)) await assertChunked(path, text);
  assert.ok((await chunksOf("/mixed.txt")).length > 10, "a big file has many chunks");
  for (const c of await chunksOf("/mixed.txt"))
    assert.ok(Buffer.byteLength(c.content) < 3000 + 400, "chunks stay near 3 kB");
});

test("read windows that straddle chunk boundaries equal JavaScript's slice of the lines", async () => {
  for (const path of ["/mixed.txt", "/boundary.txt", "/long-lines.txt"]) {
    const lines = texts[path].split("\n");
    const chunkStarts = (await chunksOf(path)).map((c) => c.first_line - 1);
    const offsets = new Set([0, 1, lines.length - 2, ...chunkStarts.flatMap((s) => [s - 1, s, s + 1])]);
    const total = texts[path].endsWith("\n") ? lines.length - 1 : lines.length; // deepagents' line count
    for (const offset of [...offsets].filter((o) => o >= 0 && o < total)) {
      for (const limit of [1, 2, 7, 150]) {
        const r = await backend.read(path, offset, limit);
        assert.is(r.error, undefined);
        assert.is(r.content, lines.slice(offset, offset + limit).join("\n"), `${path} offset ${offset} limit ${limit}`);
      }
    }
  }
});

test("grep line numbers across chunks equal JavaScript's, and LIMIT keeps path and line order", async () => {
  for (const pattern of ["needle", "日本語 x", "\r", "", "--1"]) {
    const expected = Object.entries(texts)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .flatMap(([path, text]) =>
        text.split("\n").flatMap((l, i) => (l.includes(pattern) ? [{ path, line: i + 1, text: l }] : [])),
      );
    const all = await backend.grep(pattern);
    assert.equal(all.matches, expected, `grep ${JSON.stringify(pattern)}`);
    const capped = await backend.grep(pattern, "/", null, 5);
    assert.equal(capped.matches, expected.slice(0, 5), `grep ${JSON.stringify(pattern)} maxCount 5`);
  }
});

test("edits, overwrites, uploads and deletes re-cut or remove the chunks in the same transaction", async () => {
  const path = "/mixed.txt";
  let text = texts[path];
  // An edit that adds lines near the top shifts every later line number.
  const r = await backend.edit(
    path,
    text.split("\n")[3] + "\n",
    "inserted 1\ninserted 2\n" + text.split("\n")[3] + "\n",
  );
  if (!r.error)
    text = text.replace(text.split("\n")[3] + "\n", "inserted 1\ninserted 2\n" + text.split("\n")[3] + "\n");
  await assertChunked(path, text);
  const last = text.split("\n").length;
  assert.is((await backend.read(path, last - 1, 1)).content, text.split("\n")[last - 1]);

  await backend.write(path, "rewritten\n");
  await assertChunked(path, "rewritten\n");
  await backend.uploadFiles([
    [path, Buffer.from("uploaded over\nit")],
    ["/bin.png", Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1])],
  ]);
  await assertChunked(path, "uploaded over\nit");
  assert.equal(await chunksOf("/bin.png"), [], "binary files have no chunks");

  await backend.write("/dir/a.txt", "a\n");
  await backend.write("/dir/sub/b.txt", "b\n");
  await backend.delete!("/dir");
  assert.equal([...(await chunksOf("/dir/a.txt")), ...(await chunksOf("/dir/sub/b.txt"))], []);
});

test("rewriting a file with the same content keeps its chunk rows", async () => {
  await backend.write("/same.txt", "stable\ncontent\n");
  const before = (
    await admin.query(
      `SELECT c.xmin::text FROM ${TEST_SCHEMA}.chunks c JOIN ${TEST_SCHEMA}.files f ON f.chunk_set = c.chunk_set
      WHERE f.workspace = $1 AND f.path = '/same.txt'`,
      [backend.workspace],
    )
  ).rows;
  await backend.write("/same.txt", "stable\ncontent\n");
  const after = (
    await admin.query(
      `SELECT c.xmin::text FROM ${TEST_SCHEMA}.chunks c JOIN ${TEST_SCHEMA}.files f ON f.chunk_set = c.chunk_set
      WHERE f.workspace = $1 AND f.path = '/same.txt'`,
      [backend.workspace],
    )
  ).rows;
  assert.equal(after, before);
});

test("a failed write leaves no chunks behind (the triggers run inside the statement)", async () => {
  const count = async () =>
    Number(
      (
        await admin.query(
          `SELECT count(*) FROM ${TEST_SCHEMA}.chunks c JOIN ${TEST_SCHEMA}.files f ON f.chunk_set = c.chunk_set
           WHERE f.workspace = $1`,
          [backend.workspace],
        )
      ).rows[0].count,
    );
  const before = await count();
  await admin.query("BEGIN");
  await admin.query(`SELECT * FROM ${TEST_SCHEMA}.fs_write($1, '/rolled-back.txt', 'x\ny', NULL, 'text/plain', NULL)`, [
    backend.workspace,
  ]);
  assert.is(await count(), before + 1);
  await admin.query("ROLLBACK");
  assert.is(await count(), before);
});

test("an edit inside a big file rewrites only the chunks whose text or first line changed", async () => {
  const lines = Array.from({ length: 6000 }, (_, i) => `line ${i} ${"x".repeat(i % 50)}`);
  let text = lines.join("\n") + "\n";
  await backend.write("/big-edit.txt", text);
  const rows = async () =>
    (
      await admin.query(
        `SELECT c.first_line, c.xmin::text AS xmin FROM ${TEST_SCHEMA}.chunks c
         JOIN ${TEST_SCHEMA}.files f ON f.chunk_set = c.chunk_set
         WHERE f.workspace = $1 AND f.path = '/big-edit.txt' ORDER BY c.first_line`,
        [backend.workspace],
      )
    ).rows as Array<{ first_line: number; xmin: string }>;
  const before = await rows();
  assert.ok(before.length > 50, `${before.length} chunks`);
  // Same line count, a few bytes longer, in the middle of the file.
  assert.is((await backend.edit("/big-edit.txt", "line 3000 ", "line 3000 (edited) ")).error, undefined);
  text = text.replace("line 3000 ", "line 3000 (edited) ");
  await assertChunked("/big-edit.txt", text);
  const after = await rows();
  const kept = after.filter((r) => before.some((b) => b.first_line === r.first_line && b.xmin === r.xmin));
  const editedChunk = before.findLast((b) => b.first_line <= 3001)!.first_line;
  assert.ok(
    before
      .filter((b) => b.first_line < editedChunk)
      .every((b) => after.some((a) => a.first_line === b.first_line && a.xmin === b.xmin)),
    "every chunk before the edit is untouched",
  );
  assert.ok(kept.length >= before.length * 0.8, `${kept.length} of ${before.length} chunks kept`);
  assert.ok(kept.length < after.length, "the edited chunk was rewritten");
  assert.equal((await backend.grep("(edited)")).matches, [
    { path: "/big-edit.txt", line: 3001, text: text.split("\n")[3000] },
  ]);
});

test("chunks are stored compressed with lz4 and inline where the server has lz4 (0024), else inline and plain", async () => {
  // Prose-like text compresses well; three chunks of it, none out of line.
  const text = Array.from({ length: 300 }, (_, i) => `line ${i} of a file that says the same thing again`).join("\n");
  await backend.write("/compressed.txt", text);
  await assertChunked("/compressed.txt", text);
  const lz4 = (
    await admin.query("SELECT 'lz4' = ANY(enumvals) AS lz4 FROM pg_settings WHERE name = 'default_toast_compression'")
  ).rows[0].lz4 as boolean;
  const { rows } = await admin.query(
    `SELECT pg_column_compression(c.content) AS method, pg_column_size(c.content) AS stored,
            octet_length(c.content) AS bytes
     FROM ${TEST_SCHEMA}.chunks c JOIN ${TEST_SCHEMA}.files f ON f.chunk_set = c.chunk_set
     WHERE f.workspace = $1 AND f.path = '/compressed.txt'`,
    [backend.workspace],
  );
  assert.ok(rows.length >= 3, `${rows.length} chunks`);
  for (const r of rows) {
    if (lz4) {
      assert.is(r.method, "lz4", "compressed with lz4");
      assert.ok(r.stored * 2 < r.bytes, `${r.stored} bytes stored for ${r.bytes}`);
    } else assert.is(r.method, null, "stored plain");
  }
  // Inline: writing more of them adds nothing to the chunks table's TOAST relation (a scan never
  // fetches TOAST). Counted in one REPEATABLE READ transaction: only its own write shows.
  const toast = (
    await admin.query(
      `SELECT t.oid::regclass::text AS name FROM pg_class c JOIN pg_class t ON t.oid = c.reltoastrelid
       WHERE c.oid = '${TEST_SCHEMA}.chunks'::regclass`,
    )
  ).rows[0].name as string;
  const toastRows = async () => (await admin.query(`SELECT count(*)::int AS n FROM ${toast}`)).rows[0].n as number;
  await admin.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
  try {
    const before = await toastRows();
    await admin.query(`SELECT * FROM ${TEST_SCHEMA}.fs_write($1, '/compressed-2.txt', $2, NULL, 'text/plain', NULL)`, [
      backend.workspace,
      text.repeat(20),
    ]);
    assert.ok((await chunksOf("/compressed-2.txt")).length >= 60, "many chunks written");
    assert.is(await toastRows(), before, "no chunk moved out of line");
  } finally {
    await admin.query("ROLLBACK");
  }
});

test.run();
