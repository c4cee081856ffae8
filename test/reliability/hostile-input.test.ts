/**
 * Hostile input against PostgresBackend (issue 7, part 3): what a prompt-injected model could put
 * in a tool call. Every hostile path is normalised or refused with a clear error and never touches
 * another workspace; SQL metacharacters are data; a pathological regex is stopped by the timeout
 * with the pool intact; oversized files, invalid UTF-8 and NUL bytes are refused or kept exactly;
 * glob bombs return quickly. Prints how many inputs were tried.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { isCancelled } from "../../src/postgres/sqlstate.js";
import { adminClient, testBackend, uniqueName, TEST_SCHEMA } from "../helpers/db.js";
import {
  assertClearError,
  assertStoredPathShape,
  exercisePath,
  globBombs,
  hostilePaths,
  SQL_META,
  type Tally,
} from "./hostile-cases.js";

const backend = await testBackend({ maxPoolSize: 4 });
const admin = await adminClient();
const tag = uniqueName("hostile");
const counts = { paths: 0, pathCalls: 0, sqlInputs: 0, regexInputs: 0, sizeInputs: 0, byteInputs: 0, globInputs: 0 };

test.after(async () => {
  const total = Object.entries(counts)
    .filter(([k]) => k !== "pathCalls")
    .reduce((n, [, v]) => n + v, 0);
  console.log(
    `hostile input (PostgreSQL): ${total} inputs tried — ${counts.paths} paths (${counts.pathCalls} protocol calls), ` +
      `${counts.sqlInputs} SQL-metacharacter inputs, ${counts.regexInputs} regexes, ${counts.sizeInputs} size-limit cases, ` +
      `${counts.byteInputs} byte/text-encoding cases, ${counts.globInputs} glob bombs; nothing escaped its workspace`,
  );
  await backend.close();
  await admin.end();
});

/** Rows of these workspaces as (workspace, path, version, content digest), for before/after equality. */
async function snapshot(workspaces: string[]): Promise<string[]> {
  const { rows } = await admin.query(
    `SELECT workspace, path, version, md5(coalesce(content, '') || coalesce(encode(bytes, 'hex'), '')) AS digest
       FROM ${TEST_SCHEMA}.files WHERE workspace = ANY($1) ORDER BY workspace, path`,
    [workspaces],
  );
  return rows.map((r) => `${r.workspace}\u0000${r.path}\u0000${r.version}\u0000${r.digest}`);
}

/** Neighbour workspaces with SQL metacharacters in their names, each holding a few files. */
async function neighbours(): Promise<string[]> {
  const names = [
    `${tag}`,
    `${tag}-corp`,
    `${tag}%`,
    `${tag}_`,
    `${tag}'`,
    `${tag}\\`,
    `${tag}$$`,
    `${tag}--`,
    `${tag};x`,
  ];
  for (const name of names) {
    const n = backend.withWorkspace(name);
    await n.write("/secret.txt", `secret of ${name}\n`);
    await n.write("/etc/passwd", `root:x:0:0 of ${name}\n`);
    await n.write("/a/c.txt", `neighbour c of ${name}\n`);
  }
  return names;
}

test("≥ 100 hostile paths through every operation: normalised or refused, never outside the workspace", async () => {
  const others = await neighbours();
  const before = await snapshot(others);
  const attacker = backend.withWorkspace(`${tag}/attacker`); // "/" in a workspace name is just a character here
  const tally: Tally = { inputs: 0, normalised: 0, directories: 0, refused: 0, calls: 0 };
  const cases = hostilePaths();
  assert.ok(cases.length >= 100, `${cases.length} cases`);
  const stored = async (path: string, marker: string) => {
    const { rows } = await admin.query(
      `SELECT workspace, path FROM ${TEST_SCHEMA}.files
        WHERE strpos(content, $1) > 0 OR position(convert_to($1, 'UTF8') IN bytes) > 0`,
      [marker],
    );
    assert.equal(
      rows,
      [{ workspace: attacker.workspace, path }],
      `stored rows for ${JSON.stringify(path.slice(0, 60))}`,
    );
    assertStoredPathShape(rows[0].path, "stored row");
  };
  let i = 0;
  for (const c of cases) await exercisePath(attacker, c, tally, `m4rk${tag}n${i++}x`, stored);
  counts.paths += tally.inputs;
  counts.pathCalls += tally.calls;
  console.log(
    `  ${tally.inputs} hostile paths: ${tally.normalised} normalised to a file, ${tally.directories} a directory, ${tally.refused} refused; ${tally.calls} calls`,
  );
  assert.ok(tally.normalised >= 30 && tally.refused >= 60, JSON.stringify(tally));
  // Nothing else changed: the neighbours' rows are identical, the attacker's workspace is empty.
  assert.equal(await snapshot(others), before);
  assert.equal(
    (
      await admin.query(`SELECT count(*)::int AS n FROM ${TEST_SCHEMA}.files WHERE workspace = $1`, [
        attacker.workspace,
      ])
    ).rows[0].n,
    0,
  );
  // The change log saw every mutation: all in the attacker's workspace, at well-formed paths.
  const { rows: changes } = await admin.query(`SELECT DISTINCT path FROM ${TEST_SCHEMA}.changes WHERE workspace = $1`, [
    attacker.workspace,
  ]);
  for (const { path } of changes) assertStoredPathShape(path, "changed path");
  const expected = new Set(
    cases.flatMap((c) =>
      "file" in c.expect
        ? [c.expect.file]
        : "dir" in c.expect
          ? [c.expect.dir === "/" ? "/inside.txt" : `${c.expect.dir}/inside.txt`]
          : [],
    ),
  );
  assert.equal(
    changes.map((r) => r.path).filter((p) => !expected.has(p)),
    [],
  );
});

test("SQL metacharacters in workspace, path, pattern and glob are plain data", async () => {
  const base = uniqueName("sqlmeta");
  const spaces = SQL_META.map((m) => backend.withWorkspace(`${base}${m}`));
  const plain = backend.withWorkspace(base);
  await plain.write("/plain.txt", "plain line\n");
  for (const [i, b] of spaces.entries()) {
    const meta = SQL_META[i];
    const path = `/dir${meta.replace(/\\/g, "")}/f${i}${meta.replace(/[\\/]/g, "")}.txt`;
    const w = await b.write(path, `line with ${meta} inside\nother line\n`);
    assert.is(w.error, undefined, `${JSON.stringify(meta)}: ${w.error}`);
    counts.sqlInputs += 4;
    // each workspace sees its own file only
    assert.equal(
      (await b.glob("**")).files!.map((f) => f.path),
      [path.replace(/\/+/g, "/")],
      `glob in ${JSON.stringify(meta)}`,
    );
    const grep = await b.grep(meta);
    assert.equal(
      grep.matches!.map((m) => m.text),
      [`line with ${meta} inside`],
      `grep ${JSON.stringify(meta)}`,
    );
    const search = await b.search({ pattern: meta.toUpperCase(), ignoreCase: true });
    assert.equal(
      search.matches!.map((m) => m.text),
      [`line with ${meta} inside`],
      `search -i ${JSON.stringify(meta)}`,
    );
    // the metacharacter as a glob: micromatch semantics, never SQL LIKE
    const globbed = await b.glob(`**/*${meta.replace(/[\\/]/g, "")}*`);
    assert.ok(
      !globbed.error || /Invalid glob pattern/.test(globbed.error),
      `glob ${JSON.stringify(meta)}: ${globbed.error}`,
    );
    const grepGlob = await b.grep("line", "/", `*${meta.replace(/[\\/]/g, "")}*`);
    assert.ok(
      !grepGlob.error || /Invalid glob pattern/.test(grepGlob.error),
      `grep glob ${JSON.stringify(meta)}: ${grepGlob.error}`,
    );
  }
  // LIKE wildcards and escapes in a literal grep match only themselves
  assert.equal((await plain.grep("%")).matches, []);
  assert.equal((await plain.grep("_")).matches, []);
  assert.equal((await plain.grep("\\")).matches, []);
  assert.equal((await plain.grep("pl%n")).matches, []);
  assert.equal((await plain.grep("pl_in")).matches, []);
  assert.equal((await plain.glob("*%*")).files, []);
  assert.equal((await plain.glob("*_*")).files, []);
  assert.equal(
    (await plain.glob("**")).files!.map((f) => f.path),
    ["/plain.txt"],
  );
  counts.sqlInputs += 7;
  // workspaces compared exactly: "base" sees nothing of "base%", "base_", "base'"...
  assert.equal((await plain.grep("line with")).matches, []);
  assert.equal(
    (await plain.ls("/")).files!.map((f) => f.path),
    ["/plain.txt"],
  );
  // the table is still there and only these workspaces changed
  const { rows } = await admin.query(
    `SELECT workspace, count(*)::int AS n FROM ${TEST_SCHEMA}.files WHERE left(workspace, $2) = $1 GROUP BY workspace ORDER BY workspace`,
    [base, base.length],
  );
  assert.equal(
    rows.map((r) => r.n),
    new Array(SQL_META.length + 1).fill(1),
  );
  for (const b of [plain, ...spaces]) assert.is((await b.delete("/")).error, undefined);
});

test("a cancel that lands inside PostgreSQL's regex engine is a timeout, not an invalid pattern", () => {
  // What the server sends when statement_timeout interrupts regcomp/regexec (seen in CI once):
  // SQLSTATE 2201B with this message. A real invalid pattern keeps its own error.
  const cancelled = Object.assign(new Error("invalid regular expression: operation cancelled"), { code: "2201B" });
  const invalid = Object.assign(new Error("invalid regular expression: parentheses () not balanced"), {
    code: "2201B",
  });
  assert.is(isCancelled(cancelled), true);
  assert.is(
    isCancelled(Object.assign(new Error("canceling statement due to statement timeout"), { code: "57014" })),
    true,
  );
  assert.is(isCancelled(invalid), false);
});

test("a pathological regex is stopped by timeoutMs with an error result; the pool stays healthy", async () => {
  const b = backend.withWorkspace(uniqueName("redos"));
  // ~20 MB of near-matches: long runs of "a" that end in "!" ((a+)+$ must fail on each line).
  // (PostgreSQL's regex engine does not backtrack like JavaScript's, so the cost is the size.)
  const line = "a".repeat(2000) + "!";
  const body = Buffer.from(`${line}\n`.repeat(250));
  for (let i = 0; i < 40; i += 10) {
    const batch = Array.from({ length: 10 }, (_, j) => [`/big/f${i + j}.txt`, body] as [string, Uint8Array]);
    assert.ok((await b.uploadFiles(batch)).every((r) => r.error === null));
  }
  const pool = b.pool;
  // How long the bomb needs here without a limit (the faster of two runs: the first may read
  // from disk, or share the cores with another test file), then a limit well below that.
  let unbounded = Infinity;
  for (let run = 0; run < 2; run++) {
    const t = Date.now();
    assert.equal(await b.search({ pattern: "(a+)+$", regex: true, timeoutMs: 120_000 }), { matches: [] });
    unbounded = Math.min(unbounded, Date.now() - t);
  }
  const timeoutMs = Math.max(5, Math.min(200, Math.floor(unbounded / 4)));
  const bombs = ["(a+)+$", "(a|aa)+$", "(a*)*!b", "(.*a){12}$", "^(a+)+b", "(a|a?)+c", "([a-zA-Z]+)*\\d", "(?:a+a+)+z"];
  const started = Date.now();
  // more bombs at once than pool connections: each must end by its own timeout, none may hang
  const results = await Promise.all(bombs.map((pattern) => b.search({ pattern, regex: true, timeoutMs })));
  const elapsed = Date.now() - started;
  counts.regexInputs += bombs.length + 1;
  console.log(
    `  (a+)+$ over 20 MB: ${unbounded} ms unbounded; 8 bombs at once with timeoutMs ${timeoutMs}: ${elapsed} ms, ${results.filter((r) => r.error).length} timed out`,
  );
  const timedOut = new RegExp(`^Error: search timed out after ${timeoutMs} ms; narrow the path, glob or pattern$`);
  assertClearError(results[0].error, timedOut, "(a+)+$");
  for (const [i, r] of results.entries()) {
    if (r.error) assertClearError(r.error, timedOut, `search ${bombs[i]}`);
    else assert.ok(Array.isArray(r.matches), `search ${bombs[i]}`);
  }
  // 8 searches through 4 connections: two rounds of about timeoutMs each, plus slack for a slow machine
  assert.ok(elapsed < 2 * timeoutMs + 3_000, `bombs took ${elapsed} ms`);
  // the pool: within its bound, every connection back and idle, nothing waiting, no statement left running
  assert.ok(pool.totalCount >= 1 && pool.totalCount <= 4, `pool ${pool.totalCount}`);
  assert.is(pool.idleCount, pool.totalCount);
  assert.is(pool.waitingCount, 0);
  const after = await Promise.all(Array.from({ length: 12 }, (_, i) => b.read(`/big/f${i}.txt`, 0, 1)));
  assert.ok(
    after.every((r) => r.content === line),
    "reads after the bombs succeed",
  );
  assert.equal(
    (await b.search({ pattern: "a!$", regex: true, path: "/big/f1.txt", timeoutMs: 10_000 })).matches!.length,
    250,
  );
  // (This test's schema only: other runs may share the server.)
  const { rows } = await admin.query(
    `SELECT count(*)::int AS n FROM pg_stat_activity
     WHERE application_name = 'deepagents-backends' AND state = 'active'
       AND strpos(query, $1) > 0 AND query LIKE '%fs_search%'`,
    [`"${TEST_SCHEMA}".`],
  );
  assert.is(rows[0].n, 0, "no search still running server-side");
  // JavaScript constructs ARE would read differently are refused before reaching the server
  const refusedRegexes: Array<[string, RegExp]> = [
    ["(a)\\1", /back-references/],
    ["(?<name>a)", /named|not supported/],
    ["\\p{L}+", /Unicode property escapes/],
    ["a{1,1000}", /255|bound/],
    ["(unclosed", /Invalid regular expression/],
    ["a".repeat(5000) + "(", /Invalid regular expression/],
  ];
  for (const [pattern, why] of refusedRegexes) {
    const r = await b.search({ pattern, regex: true });
    assertClearError(r.error, /^Error: Invalid regular expression '/, `regex ${pattern.slice(0, 20)}`);
    assert.match(r.error!, why);
  }
  counts.regexInputs += refusedRegexes.length;
  await b.delete("/");
});

test("maxFileBytes: larger writes, uploads and edit results are refused clearly and nothing is stored", async () => {
  const b = await testBackend({ maxFileBytes: 1024, workspace: uniqueName("limit") });
  try {
    const tooBig = "x".repeat(1025);
    assertClearError(
      (await b.write("/big.txt", tooBig)).error,
      /^Error: File '\/big.txt' is too large \(1025 bytes; the limit is 1024 bytes\)$/,
      "write",
    );
    assert.ok((await b.write("/exact.txt", "x".repeat(1024))).error === undefined);
    // bytes, not characters: 512 "é" are 1024 bytes, 513 are 1026
    assert.is((await b.write("/e1.txt", "é".repeat(512))).error, undefined);
    assert.match((await b.write("/e2.txt", "é".repeat(513))).error!, /1026 bytes; the limit is 1024 bytes/);
    // a binary type is base64 on write: the decoded size counts
    assert.match((await b.write("/big.png", Buffer.alloc(1100).toString("base64"))).error!, /too large \(1100 bytes/);
    const up = await b.uploadFiles([
      ["/up-big.txt", Buffer.alloc(5000, 0x61)],
      ["/up-ok.txt", Buffer.from("ok")],
    ]);
    assert.equal(up, [
      { path: "/up-big.txt", error: "invalid_path" },
      { path: "/up-ok.txt", error: null },
    ]);
    await b.write("/grow.txt", "ab");
    assert.match(
      (await b.edit("/grow.txt", "ab", "y".repeat(2000))).error!,
      /too large \(2000 bytes; the limit is 1024 bytes\)/,
    );
    assert.is((await b.read("/grow.txt")).content, "ab");
    const stored = (await b.glob("**")).files!.map((f) => f.path).sort();
    assert.equal(stored, ["/e1.txt", "/exact.txt", "/grow.txt", "/up-ok.txt"]);
    const { rows } = await admin.query(`SELECT max(size)::int AS max FROM ${TEST_SCHEMA}.files WHERE workspace = $1`, [
      b.workspace,
    ]);
    assert.is(rows[0].max, 1024);
    counts.sizeInputs += 8;
    await b.delete("/");
  } finally {
    await b.close();
  }
});

test("invalid UTF-8 and NUL bytes: byte-exact as binary through upload, refused clearly on write/edit", async () => {
  const b = backend.withWorkspace(uniqueName("bytes"));
  const samples: Array<[string, number[]]> = [
    ["/nul.txt", [0x61, 0x00, 0x62, 0x0a]],
    ["/ff.txt", [0xff, 0xfe, 0xfd]],
    ["/truncated.md", [0x68, 0xc3]],
    ["/bad-continuation.json", [0xc3, 0x28, 0x7b, 0x7d]],
    ["/surrogate-utf8.txt", [0xed, 0xa0, 0x80]],
    ["/above-max.txt", [0xf4, 0x90, 0x80, 0x80]],
    ["/overlong-slash.txt", [0xc0, 0xaf, 0x2e, 0x2e]],
    ["/bom.txt", [0xef, 0xbb, 0xbf, 0x68, 0x69]],
    ["/latin1.csv", [0x63, 0x61, 0x66, 0xe9]],
    ["/all-bytes.txt", Array.from({ length: 256 }, (_, i) => i)],
    ["/empty.txt", []],
  ];
  const up = await b.uploadFiles(samples.map(([p, bytes]) => [p, Uint8Array.from(bytes)]));
  assert.ok(
    up.every((r) => r.error === null),
    JSON.stringify(up),
  );
  const down = await b.downloadFiles(samples.map(([p]) => p));
  for (const [i, d] of down.entries()) {
    assert.is(d.error, null);
    assert.equal([...d.content!], samples[i][1], `download ${samples[i][0]}`);
  }
  counts.byteInputs += samples.length;
  // stored as binary (bytes under a text name): read gives bytes, grep skips, edit refuses
  const nul = await b.read("/nul.txt");
  assert.ok(nul.content instanceof Uint8Array && nul.mimeType === "application/octet-stream");
  assert.equal(
    (await b.grep("a")).matches!.map((m) => m.path),
    [],
  );
  assert.equal(await b.edit("/ff.txt", "a", "b"), { error: "Error: Cannot convert binary FileData to string" });
  // the BOM file is valid UTF-8: text, byte-exact, BOM kept
  assert.is((await b.read("/bom.txt")).content, "\ufeffhi");
  // write/edit take text: NUL and unpaired surrogates are refused, never mangled
  await b.write("/t.txt", "hello\n");
  const malformed =
    /^Error: Content for '\/t.txt' is not valid text \(it contains a NUL character or an unpaired UTF-16 surrogate\)$/;
  for (const bad of ["a\u0000b", "\ud800", "x\udfffy", "\u0000"]) {
    assertClearError((await b.write("/t.txt", bad)).error, malformed, `write ${JSON.stringify(bad)}`);
    assertClearError((await b.edit("/t.txt", "hello", bad)).error, malformed, `edit new ${JSON.stringify(bad)}`);
    assertClearError((await b.edit("/t.txt", bad, "x")).error, malformed, `edit old ${JSON.stringify(bad)}`);
    counts.byteInputs += 3;
  }
  for (const notText of [Buffer.from("x"), 42, null, { toString: () => "x" }]) {
    assertClearError(
      (await b.write("/t.txt", notText as unknown as string)).error,
      malformed,
      `write ${typeof notText}`,
    );
    counts.byteInputs++;
  }
  assert.is((await b.read("/t.txt")).content, "hello\n");
  assert.equal((await b.grep("\u0000")).matches, []);
  // base64 for binary types: not base64 is refused, nothing stored
  assertClearError(
    (await b.write("/x.png", "not base64!")).error,
    /is a binary file type; content must be base64/,
    "png",
  );
  assert.match((await b.read("/x.png")).error!, /not found/);
  await b.delete("/");
});

test("glob bombs return quickly with a result or a clear error (glob and grep's glob filter)", async () => {
  const b = backend.withWorkspace(uniqueName("globbomb"));
  // names that near-match the star bombs
  await b.uploadFiles(
    Array.from(
      { length: 50 },
      (_, i) => [`/d${i % 5}/${"a".repeat(200)}${i}.txt`, Buffer.from("needle\n")] as [string, Uint8Array],
    ),
  );
  for (const { label, pattern } of globBombs()) {
    for (const run of [() => b.glob(pattern), () => b.grep("needle", "/", pattern)]) {
      const started = Date.now();
      const r = (await run()) as { error?: string; files?: unknown[]; matches?: unknown[] };
      const ms = Date.now() - started;
      assert.ok(ms < 3_000, `${label}: ${ms} ms`);
      if (r.error) assertClearError(r.error, /^Error: (Invalid glob pattern '.*': .+|glob '.*' took longer)/s, label);
      else assert.ok(Array.isArray(r.files ?? r.matches), label);
      counts.globInputs++;
    }
  }
  // the bounds are clear about what to change
  assert.match((await b.glob("a".repeat(4097))).error!, /pattern is longer than 4096 characters/);
  assert.match((await b.glob("+(".repeat(40) + "a" + ")".repeat(40))).error!, /nested more than 32 deep/);
  // and ordinary globs still work next to them
  assert.is((await b.glob("**/*.txt")).files!.length, 50);
  assert.is((await b.glob("{d0,d1}/a*")).files!.length, 20);
  await b.delete("/");
});

test.run();
