/**
 * Plan shapes of the statements PostgresBackend really runs (captured by auto_explain inside
 * fs_search, fs_glob and fs_ls, not hand-written copies), with the planner's own settings:
 * - a selective literal (grep, and search ignoring case) and a selective regex, capped with
 *   maxCount so the query has a LIMIT, are answered by the trigram index — not by reading every
 *   chunk of the workspace in primary-key order, which LIMIT makes tempting;
 * - glob and ls read a path range of the primary key (ls: the parent index for files, one probe
 *   per sub-directory);
 * - an edit's chunk trigger diffs old and new chunks in linear time.
 * Plans, not timings: what is asserted holds on any machine.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { planCapturingBackend } from "./helpers/plans.js";

const { schema, capture, backend, admin, end } = await planCapturingBackend("plans");
test.after(end);

// 600 files of ~1 kB in 30 directories, one of them holding a rare token.
const files: Array<[string, Uint8Array]> = [];
for (let i = 0; i < 600; i++) {
  files.push([
    `/src/d${i % 30}/f${i}.ts`,
    Buffer.from(`export const value${i} = ${i}; // the usual words\n`.repeat(20)),
  ]);
}
files.push(["/src/d1/rare.ts", Buffer.from("before\nthe zyxwvutsrq needle\nafter\n")]);
// And 3,000 more elsewhere: enough chunks that reading them all in path order (instead of asking
// the trigram index) costs what it would on a real workspace (files and chunks are joined on the
// chunk set since 0010; on a few hundred chunks either plan is a fraction of a millisecond).
for (let i = 0; i < 3000; i++) {
  files.push([`/bulk/b${i % 50}/g${i}.md`, Buffer.from(`Some prose, line after line ${i}.\n`.repeat(30))]);
}
assert.ok((await backend.uploadFiles(files)).every((r) => r.error === null));
await admin.query(`ANALYZE ${schema}.files, ${schema}.chunks`);

const TRIGRAM = /Bitmap Index Scan on chunks_content_trgm_idx\s+\([^)]*\)\s+Index Cond: \(content (~~\*?|~\*?) /;

const RARE_MATCH = { matches: [{ path: "/src/d1/rare.ts", line: 2, text: "the zyxwvutsrq needle" }] };
const selective: Array<[string, () => Promise<unknown>]> = [
  ["grep of a selective literal with maxCount", () => backend.grep("zyxwvutsrq", "/", null, 10)],
  [
    "search of a selective regex with maxCount",
    () => backend.search({ pattern: "zyxw[a-z]+\\s+needle", regex: true, maxCount: 10 }),
  ],
  // The chunk test of a lookaround pattern is the pattern without it (0006): still the index.
  [
    "search of a selective regex with lookarounds and \\b, with maxCount",
    () => backend.search({ pattern: "(?<=the )\\bzyxw[a-z]+(?=\\s+needle)", regex: true, maxCount: 10 }),
  ],
  // ignoreCase spells out each letter's cases ([Zz][Yy]...): pg_trgm still finds the trigrams.
  [
    "search of a selective regex ignoring case, with maxCount",
    () => backend.search({ pattern: "ZYXW[a-z]+\\s+NEEDLE", regex: true, ignoreCase: true, maxCount: 10 }),
  ],
  [
    "search of a selective literal ignoring case, with maxCount (ILIKE)",
    () => backend.search({ pattern: "ZYXWVUTSRQ", ignoreCase: true, maxCount: 10 }),
  ],
];
for (const [name, call] of selective) {
  test(`${name}: the trigram index, under the LIMIT`, async () => {
    let result: unknown;
    const plan = await capture.planOf(
      "JOIN chunks c ON c.chunk_set = f.chunk_set",
      async () => (result = await call()),
    );
    assert.equal(result, RARE_MATCH);
    assert.match(plan, /^Limit\b/m, plan);
    assert.match(plan, TRIGRAM, plan);
    assert.not.match(plan, /Scan (using|on) chunks_pkey/, plan);
  });
}

test("a capped common literal: files in path order, each file's chunks in line order, no sort of a whole file's matches", async () => {
  let result: { matches?: Array<{ path: string; line: number }> } = {};
  const plan = await capture.planOf("m.lines IS NOT NULL", async () => {
    result = await backend.grep("the usual words", "/src", null, 25);
  });
  // The first 25 matches in path and line order: the 20 lines of the first file, then the next.
  assert.is(result.matches?.length, 25);
  const order = result.matches!.map((m) => `${m.path}:${String(m.line).padStart(3, "0")}`);
  assert.equal(order, [...order].sort());
  assert.match(plan, /Index Scan using files_pkey on files f/, plan);
  assert.match(plan, /Index Scan using chunks_pkey on chunks c/, plan);
  // A plain Sort on the line order would take every matching line of a file before the first;
  // Incremental Sort sorts one chunk's lines at a time, under the LIMIT. (PostgreSQL 16 and later
  // also sort the capped rows for array_agg's ORDER BY: at most the cap, after the LIMIT.)
  assert.match(plan, /Incremental Sort.*\n\s+Sort Key: c\.first_line, t\.n\n\s+Presorted Key: c\.first_line/, plan);
  assert.not.match(plan, /->\s+Sort\b.*\n(\s+Disabled: true\n)?\s+Sort Key: c\.first_line/, plan);
  assert.not.match(plan, /chunks_content_trgm_idx/, plan);
});

test("right after a fork, a selective grep in the new workspace uses the trigram index too (fork refreshes statistics)", async () => {
  const name = `${backend.workspace}-fork`;
  assert.is((await backend.fork(name)).files, files.length);
  const fork = backend.withWorkspace(name);
  let result: unknown;
  const plan = await capture.planOf(
    "JOIN chunks c ON c.chunk_set = f.chunk_set",
    async () => (result = await fork.grep("zyxwvutsrq", "/", null, 10)),
  );
  assert.equal(result, RARE_MATCH);
  assert.match(plan, TRIGRAM, plan);
  assert.not.match(plan, /Scan (using|on) chunks_pkey/, plan);
});

test("a literal in every file of one workspace and rare in the table, capped: answered in path order, the trigram query never run (0022)", async () => {
  const dense = backend.withWorkspace(`${backend.workspace}-dense`);
  // Files over 1 kB, as real ones: ANALYZE keeps no values that wide, so the planner's estimate
  // of the pattern is its default (a narrow test corpus would have it measured, and right).
  const body = (i: number) =>
    Array.from({ length: 40 }, (_, k) =>
      k % 7 === 3
        ? `xylophone note ${k} of file ${i}, padded out a little`
        : `plain line ${k} of file ${i}, padded out`,
    ).join("\n");
  const many: Array<[string, Uint8Array]> = Array.from({ length: 400 }, (_, i) => [
    `/n/d${i % 10}/f${String(i).padStart(3, "0")}.md`,
    Buffer.from(`${body(i)}\n`),
  ]);
  assert.ok((await dense.uploadFiles(many)).every((r) => r.error === null));
  const all = (await dense.grep("xylophone", "/", null)).matches ?? [];
  assert.is(all.length, 2400);
  for (const cap of [100, 1000]) {
    let result: { matches?: unknown[] } = {};
    const plans = await capture.plansDuring(async () => {
      result = await dense.grep("xylophone", "/", null, cap);
    });
    assert.equal(result.matches, all.slice(0, cap));
    assert.ok(
      plans.some((p) => p.includes("m.lines") && /Index Scan using files_pkey on files f/.test(p)),
      plans.join("\n---\n"),
    );
    assert.not.ok(
      plans.some((p) => p.includes("chunks_content_trgm_idx")),
      plans.join("\n---\n"),
    );
  }
});

test("a capped pattern dense in the first files and sparse after: the trigram query answers, with the same result as uncapped (0022)", async () => {
  const mixed = backend.withWorkspace(`${backend.workspace}-mixed`);
  const pad = "a padding line that carries no match at all\n".repeat(30); // over 1 kB a file (above)
  const files: Array<[string, Uint8Array]> = [
    // 40 files with 3 matches each, first in path order; 1,100 without; one with 600 at the end.
    ...Array.from({ length: 40 }, (_, i): [string, Uint8Array] => [
      `/a/f${String(i).padStart(2, "0")}.txt`,
      Buffer.from(`quetzal one\n${pad}quetzal two\nquetzal three\n`),
    ]),
    ...Array.from({ length: 1100 }, (_, i): [string, Uint8Array] => [
      `/b/f${String(i).padStart(4, "0")}.txt`,
      Buffer.from(`nothing to see in ${i}\n${pad}`),
    ]),
    ["/c/last.txt", Buffer.from(Array.from({ length: 600 }, (_, i) => `quetzal ${i}`).join("\n"))],
  ];
  assert.ok((await mixed.uploadFiles(files)).every((r) => r.error === null));
  const all = (await mixed.grep("quetzal", "/", null)).matches ?? [];
  assert.is(all.length, 720);
  for (const cap of [50, 120, 121, 500, 720, 1000])
    assert.equal((await mixed.grep("quetzal", "/", null, cap)).matches, all.slice(0, cap), `cap ${cap}`);
  // 120 matches in the first 40 files, then none: the path-order read stops where the matches
  // thin out and the trigram query answers.
  const plans = await capture.plansDuring(() => mixed.grep("quetzal", "/", null, 500));
  assert.ok(
    plans.some((p) => p.includes("m.lines")),
    plans.join("\n---\n"),
  );
  assert.ok(
    plans.some((p) => p.includes("chunks_content_trgm_idx")),
    plans.join("\n---\n"),
  );
  // And under a glob, and in a subtree.
  const underA = (await mixed.grep("quetzal", "/a", null)).matches ?? [];
  assert.equal((await mixed.grep("quetzal", "/a", null, 100)).matches, underA.slice(0, 100));
  assert.equal((await mixed.grep("quetzal", "/", "*.txt", 130)).matches, all.slice(0, 130));
});

test("an upload's chunk trigger probes the new sets one by one, never reading the whole chunks table", async () => {
  const more: Array<[string, Uint8Array]> = Array.from({ length: 600 }, (_, i) => [
    `/up/u${i}.md`,
    Buffer.from(`uploaded file ${i}\n`.repeat(40)),
  ]);
  const plan = await capture.planOf("FROM new_rows n CROSS JOIN LATERAL text_chunks(n.content) c", async () => {
    assert.ok((await backend.withWorkspace(`${backend.workspace}-up`).uploadFiles(more)).every((r) => !r.error));
  });
  assert.not.match(plan, /Seq Scan on chunks/, plan);
  assert.match(plan, /Index Only Scan using chunks_pkey/, plan);
});

test("glob in a subtree: a primary-key range on the subtree's path", async () => {
  let result: { files?: unknown[] } = {};
  const plan = await capture.planOf(
    "ORDER BY f.modified_at DESC",
    async () => (result = await backend.glob("*.ts", "/src/d1")),
  );
  assert.is(result.files?.length, 21);
  assert.match(
    plan,
    /Index (Only )?Scan (using|on) files_pkey[^\n]*\n\s+Index Cond: \(\(workspace = .*\) AND \(path >= '\/src\/d1\/'::text\) AND \(path < '\/src\/d10'::text\)\)/,
    plan,
  );
  assert.not.match(plan, /Seq Scan/, plan);
});

test("ls: files from the parent index, sub-directories by one primary-key probe each", async () => {
  let result: { files?: unknown[] } = {};
  const plan = await capture.planOf(
    "FROM files f WHERE f.workspace = p_workspace AND f.parent = p_dir",
    async () => (result = await backend.ls("/src")),
  );
  assert.is(result.files?.length, 30);
  assert.match(plan, /Scan (using|on) files_parent_idx/, plan);
  assert.match(plan, /Limit[^\n]*\n\s+->\s+Index Only Scan using files_pkey/, plan);
  assert.not.match(plan, /Seq Scan/, plan);
});

test("an edit of a big file: the trigger diffs old and new chunks as a set, not chunk by chunk", async () => {
  // The planner expects one chunk per path; a nested-loop anti join then compared every old chunk
  // with every new one (a 5 MB file: 1.5 million comparisons, 2.5 s).
  const lines = Array.from({ length: 6000 }, (_, i) => `line ${i} ${"y".repeat(i % 50)}`);
  await backend.write("/big.txt", lines.join("\n") + "\n");
  const plan = await capture.planOf("c.first_line = gone.first_line", async () => {
    assert.is((await backend.edit("/big.txt", "line 3000 ", "line 3000 (edited) ")).error, undefined);
  });
  assert.match(plan, /SetOp Except/, plan);
  assert.not.match(plan, /Nested Loop Anti Join/, plan);
});

test.run();
