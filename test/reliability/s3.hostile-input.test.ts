/**
 * Hostile input against S3Backend (issue 7, part 3), on s3rver or S3_ENDPOINT (CI: Ceph RGW).
 * The same hostile paths as on PostgreSQL; after each accepted write and at the end the whole
 * bucket is listed: every key is the attacker's own `<prefix>/<workspace><path>` or a key that
 * existed before, and the neighbours' bytes are unchanged. Client-side matching (regex search,
 * glob) is bounded by a deadline, so a catastrophic pattern is an error, not a frozen process.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { startTestS3 } from "../helpers/s3.js";
import { uniqueName } from "../helpers/db.js";
import {
  assertClearError,
  assertStoredPathShape,
  exercisePath,
  globBombs,
  hostilePaths,
  SQL_META,
  type Tally,
} from "./hostile-cases.js";

const s3 = await startTestS3();
const backend = await s3.backend();
const tag = uniqueName("hostile");
const counts = {
  paths: 0,
  pathCalls: 0,
  workspaceNames: 0,
  sqlInputs: 0,
  regexInputs: 0,
  sizeInputs: 0,
  byteInputs: 0,
  globInputs: 0,
};

test.after(async () => {
  const total = Object.entries(counts)
    .filter(([k]) => k !== "pathCalls")
    .reduce((n, [, v]) => n + v, 0);
  console.log(
    `hostile input (S3, ${s3.kind}): ${total} inputs tried — ${counts.paths} paths (${counts.pathCalls} protocol calls), ` +
      `${counts.workspaceNames} workspace names, ${counts.sqlInputs} metacharacter inputs, ${counts.regexInputs} regexes, ` +
      `${counts.sizeInputs} size-limit cases, ${counts.byteInputs} byte/text-encoding cases, ${counts.globInputs} glob bombs; ` +
      "every stored key stayed under its prefix/workspace",
  );
  await s3.close();
});

/** Every key of the bucket (all pages), sorted. */
async function bucketKeys(): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await backend.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, ContinuationToken: token }));
    for (const o of page.Contents ?? []) keys.push(o.Key!);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
}

async function objectBytes(key: string): Promise<Buffer> {
  const r = await backend.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

/**
 * Neighbour workspaces (metacharacters in their names) and a second prefix, each with files; the
 * bucket's keys and bytes afterwards, and a cleanup for the second prefix (the helper removes
 * only "test/").
 */
async function neighbours(): Promise<{ snapshot: Map<string, Buffer>; cleanup: () => Promise<unknown> }> {
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
    `${tag} x`,
    `${tag}..`,
  ];
  const otherPrefix = await s3.backend({ prefix: "other-prefix", workspace: tag });
  for (const n of [...names.map((name) => backend.withWorkspace(name)), otherPrefix]) {
    await n.write("/secret.txt", `secret of ${n.prefix}/${n.workspace}\n`);
    await n.write("/etc/passwd", `root:x:0:0 of ${n.workspace}\n`);
    await n.write("/a/c.txt", `neighbour c of ${n.workspace}\n`);
  }
  const snapshot = new Map<string, Buffer>();
  for (const key of await bucketKeys()) snapshot.set(key, await objectBytes(key));
  return { snapshot, cleanup: () => otherPrefix.delete("/") };
}

test("S3 workspace names that could leave the prefix are refused up front", () => {
  for (const name of ["..", ".", "a/b", "/x", "x/", "../x", "", "a\u0000b", "a\nb"]) {
    assert.throws(() => backend.withWorkspace(name), /Invalid workspace name/, JSON.stringify(name));
    counts.workspaceNames++;
  }
});

test("≥ 100 hostile paths through every operation: no key outside <prefix>/<workspace>/", async () => {
  const { snapshot: before, cleanup } = await neighbours();
  // a short workspace name: the 1005-byte hostile path must still fit S3's 1024-byte key
  const attacker = await s3.backend({ workspace: `x${tag.slice(-6)}` });
  const root = `${attacker.prefix}/${attacker.workspace}`;
  const tally: Tally = { inputs: 0, normalised: 0, directories: 0, refused: 0, calls: 0 };
  const cases = hostilePaths();
  assert.ok(cases.length >= 100, `${cases.length} cases`);
  const stored = async (path: string) => {
    const keys = await bucketKeys();
    const mine = keys.filter((k) => !before.has(k));
    assert.equal(mine, [root + path], `keys after storing ${JSON.stringify(path.slice(0, 60))}`);
    assertStoredPathShape(mine[0].slice(root.length), "stored key");
    assert.equal(keys.filter((k) => before.has(k)).length, before.size, "neighbour keys all still there");
  };
  let i = 0;
  for (const c of cases) await exercisePath(attacker, c, tally, `m4rk${tag}n${i++}x`, stored);
  counts.paths += tally.inputs;
  counts.pathCalls += tally.calls;
  console.log(
    `  ${tally.inputs} hostile paths: ${tally.normalised} normalised to a file, ${tally.directories} a directory, ${tally.refused} refused; ${tally.calls} calls`,
  );
  assert.ok(tally.normalised >= 30 && tally.refused >= 60, JSON.stringify(tally));
  // The whole bucket afterwards: exactly the neighbours' keys, byte for byte; the attacker's tree is empty.
  const after = await bucketKeys();
  assert.equal(after, [...before.keys()].sort());
  for (const [key, bytes] of before) assert.ok((await objectBytes(key)).equals(bytes), `neighbour ${key} changed`);
  for (const key of after) assert.ok(key.startsWith("test/") || key.startsWith("other-prefix/"), key);
  await cleanup();
});

test("SQL and URL metacharacters in workspace, path, pattern and glob are plain data", async () => {
  const base = uniqueName("meta");
  const metas = [...SQL_META.filter((m) => !m.includes("/")), "?", "#", "&", "=", "+", " ", "%2F", "%00"];
  const spaces = metas.map((m) => backend.withWorkspace(`${base}${m}`));
  const plain = backend.withWorkspace(base);
  await plain.write("/plain.txt", "plain line\n");
  for (const [i, b] of spaces.entries()) {
    const meta = metas[i];
    const clean = meta.replace(/\\/g, "").trim() || "sp";
    const path = `/dir${clean}/f${i}${clean}.txt`;
    const w = await b.write(path, `<${meta}>\nother\n`);
    assert.is(w.error, undefined, `${JSON.stringify(meta)}: ${w.error}`);
    counts.sqlInputs += 4;
    assert.equal(
      (await b.glob("**")).files!.map((f) => f.path),
      [path],
      `glob in ${JSON.stringify(meta)}`,
    );
    assert.equal(
      (await b.grep(meta)).matches!.map((m) => m.text),
      [`<${meta}>`],
      `grep ${JSON.stringify(meta)}`,
    );
    assert.equal(
      (await b.ls(`/dir${clean}`)).files!.map((f) => f.path),
      [path],
      `ls ${JSON.stringify(meta)}`,
    );
    const globbed = await b.glob(`**/*${clean}*`);
    assert.ok(
      !globbed.error || /Invalid glob pattern/.test(globbed.error),
      `glob ${JSON.stringify(meta)}: ${globbed.error}`,
    );
  }
  assert.equal((await plain.grep("%")).matches, []);
  assert.equal((await plain.grep("<")).matches, []);
  assert.equal(
    (await plain.ls("/")).files!.map((f) => f.path),
    ["/plain.txt"],
  );
  counts.sqlInputs += 3;
  // one key per workspace, each under test/<workspace>/
  const keys = (await bucketKeys()).filter((k) => k.startsWith(`test/${base}`));
  assert.is(keys.length, metas.length + 1);
  for (const b of [plain, ...spaces]) {
    assert.ok(
      keys.some((k) => k.startsWith(`test/${b.workspace}/`)),
      b.workspace,
    );
    assert.is((await b.delete("/")).error, undefined);
  }
});

test("a catastrophic regex in search() is stopped by timeoutMs; the backend keeps working", async () => {
  const b = backend.withWorkspace(uniqueName("redos"));
  await b.write("/a.txt", `${"a".repeat(40)}!\nplain\n`);
  const bombs = ["(a+)+$", "(a|aa)+$", "(a*)*b", "^(a|a?)+$", "(.*a){20}$", "([a-z]+)*\\d"];
  for (const pattern of bombs) {
    const started = Date.now();
    const r = await b.search({ pattern, regex: true, timeoutMs: 300 });
    const ms = Date.now() - started;
    assert.ok(ms < 3_000, `${pattern}: ${ms} ms`);
    if (r.error)
      assertClearError(r.error, /^Error: search timed out after 300 ms; narrow the path, glob or pattern$/, pattern);
    else assert.ok(Array.isArray(r.matches), pattern);
    counts.regexInputs++;
  }
  // the canonical one cannot finish in JavaScript: it must be the timeout
  assert.match((await b.search({ pattern: "(a+)+$", regex: true, timeoutMs: 200 })).error!, /timed out after 200 ms/);
  // the same backend object answers normally afterwards
  assert.equal((await b.search({ pattern: "^pl.in$", regex: true })).matches, [
    { path: "/a.txt", line: 2, text: "plain" },
  ]);
  assert.is((await b.read("/a.txt")).content, `${"a".repeat(40)}!\nplain\n`);
  assertClearError(
    (await b.search({ pattern: "(unclosed", regex: true })).error,
    /^Error: Invalid regular expression '\(unclosed': /,
    "syntax",
  );
  counts.regexInputs += 3;
  await b.delete("/");
});

test("maxFileBytes: larger writes, uploads and edit results are refused clearly and nothing is stored", async () => {
  const b = await s3.backend({ maxFileBytes: 1024 });
  const root = `${b.prefix}/${b.workspace}`;
  assertClearError(
    (await b.write("/big.txt", "x".repeat(1025))).error,
    /^Error: File '\/big.txt' is too large \(1025 bytes; the limit is 1024 bytes\)$/,
    "write",
  );
  assert.is((await b.write("/exact.txt", "x".repeat(1024))).error, undefined);
  assert.match((await b.write("/e2.txt", "é".repeat(513))).error!, /1026 bytes; the limit is 1024 bytes/);
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
  const keys = (await bucketKeys()).filter((k) => k.startsWith(`${root}/`)).map((k) => k.slice(root.length));
  assert.equal(keys, ["/exact.txt", "/grow.txt", "/up-ok.txt"]);
  counts.sizeInputs += 6;
  await b.delete("/");
});

test("invalid UTF-8 and NUL bytes: byte-exact through upload, refused clearly on write/edit", async () => {
  const b = backend.withWorkspace(uniqueName("bytes"));
  const samples: Array<[string, number[]]> = [
    ["/nul.txt", [0x61, 0x00, 0x62, 0x0a]],
    ["/ff.txt", [0xff, 0xfe, 0xfd]],
    ["/truncated.md", [0x68, 0xc3]],
    ["/surrogate-utf8.txt", [0xed, 0xa0, 0x80]],
    ["/above-max.txt", [0xf4, 0x90, 0x80, 0x80]],
    ["/overlong-slash.txt", [0xc0, 0xaf, 0x2e, 0x2e]],
    ["/bom.txt", [0xef, 0xbb, 0xbf, 0x68, 0x69]],
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
  const nul = await b.read("/nul.txt");
  assert.ok(nul.content instanceof Uint8Array && nul.mimeType === "application/octet-stream");
  assert.equal((await b.grep("a")).matches, []);
  assert.equal(await b.edit("/ff.txt", "a", "b"), { error: "Error: Cannot convert binary FileData to string" });
  assert.is((await b.read("/bom.txt")).content, "\ufeffhi");
  await b.write("/t.txt", "hello\n");
  const malformed =
    /^Error: Content for '\/t.txt' is not valid text \(it contains a NUL character or an unpaired UTF-16 surrogate\)$/;
  for (const bad of ["a\u0000b", "\ud800", "x\udfffy"]) {
    assertClearError((await b.write("/t.txt", bad)).error, malformed, `write ${JSON.stringify(bad)}`);
    assertClearError((await b.edit("/t.txt", "hello", bad)).error, malformed, `edit new ${JSON.stringify(bad)}`);
    assertClearError((await b.edit("/t.txt", bad, "x")).error, malformed, `edit old ${JSON.stringify(bad)}`);
    counts.byteInputs += 3;
  }
  assert.is((await b.read("/t.txt")).content, "hello\n");
  await b.delete("/");
});

test("glob bombs return quickly with a result or a clear error (glob and grep's glob filter)", async () => {
  const b = await s3.backend({ searchTimeoutMs: 1_000 });
  await b.uploadFiles(
    Array.from(
      { length: 50 },
      (_, i) => [`/d${i % 5}/${"a".repeat(200)}${i}.txt`, Buffer.from("needle\n")] as [string, Uint8Array],
    ),
  );
  const slow: string[] = [];
  for (const { label, pattern } of globBombs()) {
    for (const run of [() => b.glob(pattern), () => b.grep("needle", "/", pattern)]) {
      const started = Date.now();
      const r = (await run()) as { error?: string; files?: unknown[]; matches?: unknown[] };
      const ms = Date.now() - started;
      assert.ok(ms < 4_000, `${label}: ${ms} ms`);
      if (r.error) {
        assertClearError(
          r.error,
          /^Error: (Invalid glob pattern '.*': .+|glob '.*' took longer than 1000 ms to match; .+|search timed out after 1000 ms; .+)$/s,
          label,
        );
        if (/took longer|timed out/.test(r.error)) slow.push(label);
      } else assert.ok(Array.isArray(r.files ?? r.matches), label);
      counts.globInputs++;
    }
  }
  // JavaScript's backtracking makes the star bomb on 200-character names unbounded without the deadline
  assert.ok(slow.includes("stars against long names"), `stopped by the deadline: ${slow.join(", ")}`);
  assert.is((await b.glob("**/*.txt")).files!.length, 50);
  assert.is((await b.glob("{d0,d1}/a*")).files!.length, 20);
  await b.delete("/");
});

test("the S3 key limit: prefix + workspace + path over 1024 bytes is refused as an invalid path", async () => {
  const b = await s3.backend({ workspace: "w".repeat(100) });
  const path = ("/" + "a".repeat(200)).repeat(5); // 1005 bytes: a valid path, too long as a key here
  assertClearError(
    (await b.write(path, "x")).error,
    /^Error: Invalid path '.*': .*S3 key would be \d+ bytes/s,
    "write",
  );
  assert.equal(await b.uploadFiles([[path, Buffer.from("x")]]), [{ path, error: "invalid_path" }]);
  assert.equal(
    (await bucketKeys()).filter((k) => k.startsWith(`test/${b.workspace}/`)),
    [],
  );
  counts.sizeInputs += 2;
});

test.run();
