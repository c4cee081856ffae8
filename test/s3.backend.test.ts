/**
 * S3Backend beyond the shared protocol: object layout, capabilities, conditional writes under
 * races (on a server that enforces them; otherwise reported as not run), pagination past 1,000
 * keys, the grep cache and early stop, size limits and workspace isolation.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { S3Backend } from "../src/index.js";
import { startTestS3 } from "./helpers/s3.js";

const s3 = await startTestS3();
const backend = await s3.backend();
const enforcing = backend.capabilities!.conditionalWrites;
const fresh = () => backend.withWorkspace(`w${Math.random().toString(36).slice(2, 10)}`);
/** Runs only where the endpoint enforces If-Match/If-None-Match; elsewhere it shows as skipped. */
const whenEnforcing = enforcing ? test : test.skip;
if (!enforcing)
  console.log(
    `NOTE: ${s3.kind} does not enforce conditional writes: the race tests did not run (set S3_ENDPOINT to Ceph RGW, MinIO or AWS).`,
  );

/** Counts the S3 commands a backend's client sends, by name (observation, not a mock). */
function countCommands(b: S3Backend): Record<string, number> {
  const counts: Record<string, number> = {};
  b.client.middlewareStack.add(
    (next, context) => async (args) => {
      counts[context.commandName!] = (counts[context.commandName!] ?? 0) + 1;
      return next(args);
    },
    { step: "initialize", name: `count-${Math.random()}` },
  );
  return counts;
}

test.after(() => s3.close());

test("capabilities are probed once: s3rver enforces nothing, Ceph/MinIO/AWS enforce", () => {
  const caps = backend.capabilities!;
  assert.type(caps.conditionalWrites, "boolean");
  assert.ok(["quoted", "unquoted"].includes(caps.etagQuoting));
  if (s3.kind === "s3rver") assert.is(caps.conditionalWrites, false);
});

test("layout: raw bytes at <prefix>/<workspace><path>, Content-Type, created-at metadata", async () => {
  const b = fresh();
  await b.write("/docs/readme.md", "# hi\r\n");
  const raw = await b.client.send(
    new GetObjectCommand({ Bucket: s3.bucket, Key: `test/${b.workspace}/docs/readme.md` }),
  );
  assert.is(Buffer.from(await raw.Body!.transformToByteArray()).toString(), "# hi\r\n");
  assert.is(raw.ContentType, "text/markdown");
  assert.ok(!Number.isNaN(Date.parse(raw.Metadata!["created-at"])));
  assert.is(raw.Metadata!.lines, "1");
  const listed = await b.ls("/docs");
  assert.equal(
    listed.files!.map((f) => f.path),
    ["/docs/readme.md"],
  ); // never the prefix or workspace
});

test("workspaces are exact: 'acme' never sees 'acme-corp'", async () => {
  const tag = Math.random().toString(36).slice(2, 8);
  const acme = backend.withWorkspace(`acme${tag}`);
  const corp = backend.withWorkspace(`acme${tag}-corp`);
  await corp.write("/secret.txt", "corp secret");
  await acme.write("/mine.txt", "acme data");
  assert.equal(
    (await acme.ls("/")).files!.map((f) => f.path),
    ["/mine.txt"],
  );
  assert.equal((await acme.grep("secret")).matches, []);
  assert.equal(
    (await acme.glob("**")).files!.map((f) => f.path),
    ["/mine.txt"],
  );
  await acme.delete("/");
  assert.is((await corp.read("/secret.txt")).content, "corp secret");
  assert.throws(() => backend.withWorkspace("a/b"), /'\/' is not allowed/);
});

test("stat and ifVersion are ETag based; 0 means create-only", async () => {
  const b = fresh();
  const created = await b.write("/v.txt", "one", { ifVersion: 0 });
  assert.type(created.version, "string");
  const stat = (await b.stat("/v.txt")).data!;
  assert.equal(
    { ...stat, created_at: "", modified_at: "" },
    {
      path: "/v.txt",
      mimeType: "text/plain",
      isBinary: false,
      size: 3,
      lines: 1,
      version: created.version!,
      created_at: "",
      modified_at: "",
    },
  );
  assert.match((await b.write("/v.txt", "two", { ifVersion: 0 })).error!, /Version conflict on '\/v.txt'/);
  assert.match(
    (await b.write("/v.txt", "two", { ifVersion: "not-the-etag" })).error!,
    /expected version not-the-etag, current version is/,
  );
  const second = await b.write("/v.txt", "two", { ifVersion: created.version });
  assert.is(second.error, undefined);
  assert.match(
    (await b.edit("/v.txt", "two", "three", false, { ifVersion: created.version })).error!,
    /Version conflict/,
  );
  assert.is((await b.edit("/v.txt", "two", "three", false, { ifVersion: second.version })).occurrences, 1);
  assert.is((await b.read("/v.txt")).content, "three");
});

whenEnforcing("32 concurrent edits of distinct strings in one object all land", async () => {
  const b = fresh();
  const tokens = Array.from({ length: 32 }, (_, i) => `<slot-${i}>`);
  await b.write("/race.txt", tokens.join("\n") + "\n");
  const results = await Promise.all(tokens.map((tok, i) => b.edit("/race.txt", tok, `done-${i}`)));
  assert.equal(
    results.filter((r) => r.error),
    [],
  );
  assert.is((await b.read("/race.txt")).content, tokens.map((_, i) => `done-${i}`).join("\n") + "\n");
});

whenEnforcing("racing create-only writes: exactly one winner", async () => {
  const b = fresh();
  const results = await Promise.all(
    Array.from({ length: 16 }, (_, i) => b.write("/once.txt", `writer ${i}`, { ifVersion: 0 })),
  );
  const winners = results.filter((r) => !r.error);
  assert.is(winners.length, 1);
  assert.is((await b.stat("/once.txt")).data!.version, winners[0].version);
});

test("a stream's time budget does not count the time its consumer holds a match", async () => {
  const b = fresh();
  for (let i = 0; i < 4; i++) assert.is((await b.write(`/t/f${i}.txt`, `hit ${i}\nmiss`)).error, undefined);
  const options = { pattern: "hit \\d", regex: true, timeoutMs: 1_000 };
  const seen = [];
  for await (const m of b.searchStream(options)) {
    seen.push(m.path);
    await new Promise((r) => setTimeout(r, 400)); // 1.6 s in all, over the 1 s budget
  }
  assert.equal(seen, ["/t/f0.txt", "/t/f1.txt", "/t/f2.txt", "/t/f3.txt"]);
});

test("searchTimeoutMs 0 is no limit, as PostgreSQL's statementTimeoutMs 0 (it was a budget already spent)", async () => {
  const b = (await s3.backend({ searchTimeoutMs: 0 })).withWorkspace(`w${Math.random().toString(36).slice(2, 10)}`);
  try {
    assert.is((await b.write("/t/a.txt", "hit one\nmiss")).error, undefined);
    assert.equal((await b.search({ pattern: "hit \\w+", regex: true })).matches, [
      { path: "/t/a.txt", line: 1, text: "hit one" },
    ]);
    const streamed = [];
    for await (const m of b.grepStream("hit")) streamed.push(m.path);
    assert.equal(streamed, ["/t/a.txt"]);
    assert.equal(
      (await b.glob("**/*.txt")).files?.map((f) => f.path),
      ["/t/a.txt"],
    );
  } finally {
    await b.close();
  }
});

test("pagination: more than 1,000 keys in ls, glob, grep and recursive delete", async () => {
  const b = fresh();
  const files: Array<[string, Uint8Array]> = Array.from({ length: 1105 }, (_, i) => [
    `/many/f${String(i).padStart(4, "0")}.txt`,
    Buffer.from(`n${i}\n`),
  ]);
  files.push(["/many/sub/deep.txt", Buffer.from("deep\n")]);
  const up = await b.uploadFiles(files);
  assert.is(up.filter((r) => r.error).length, 0);
  const ls = await b.ls("/many");
  assert.is(ls.files!.length, 1106);
  assert.ok(ls.files!.some((f) => f.path === "/many/sub/" && f.is_dir));
  assert.is((await b.glob("**/*.txt", "/many")).files!.length, 1106);
  assert.equal((await b.grep("n1104")).matches, [{ path: "/many/f1104.txt", line: 1, text: "n1104" }]);
  const counts = countCommands(b);
  assert.equal(await b.delete("/many"), { path: "/many", filesUpdate: null });
  assert.is(counts.DeleteObjectsCommand, 2); // batches of 1,000
  assert.equal((await b.ls("/")).files, []);
});

test("grep: a second grep over unchanged objects downloads nothing; a changed one is fetched again", async () => {
  const b = await s3.backend();
  await b.uploadFiles(
    Array.from(
      { length: 20 },
      (_, i) => [`/c/f${i}.txt`, Buffer.from(`line ${i}\nneedle ${i}\n`)] as [string, Uint8Array],
    ),
  );
  const counts = countCommands(b);
  assert.is((await b.grep("needle")).matches!.length, 20);
  assert.is(counts.GetObjectCommand, 20);
  assert.is((await b.grep("line")).matches!.length, 20);
  assert.is(counts.GetObjectCommand, 20); // all from the ETag cache
  await b.write("/c/f3.txt", "needle changed\n");
  assert.equal((await b.grep("changed")).matches, [{ path: "/c/f3.txt", line: 1, text: "needle changed" }]);
  assert.is(counts.GetObjectCommand, 21);
});

test("grep: stops fetching once maxCount is reached, in path order", async () => {
  const b = await s3.backend({ grepConcurrency: 2, cacheBytes: 0 });
  await b.uploadFiles(
    Array.from(
      { length: 30 },
      (_, i) => [`/s/f${String(i).padStart(2, "0")}.txt`, Buffer.from("hit\nhit\n")] as [string, Uint8Array],
    ),
  );
  const counts = countCommands(b);
  const r = await b.grep("hit", "/s", null, 3);
  assert.equal(
    r.matches!.map((m) => `${m.path}:${m.line}`),
    ["/s/f00.txt:1", "/s/f00.txt:2", "/s/f01.txt:1"],
  );
  assert.is(r.truncated, true);
  assert.ok(counts.GetObjectCommand <= 4, `fetched ${counts.GetObjectCommand} of 30 objects`);
});

test("search(): regex and case-insensitive matching, client-side, with path, glob and maxCount", async () => {
  const b = fresh();
  await b.uploadFiles([
    ["/src/a.ts", Buffer.from("const fooBar = 1;\nFOOBAR();\nfoo_bar\n")],
    ["/src/b.md", Buffer.from("foobar in docs\n")],
    ["/other/c.ts", Buffer.from("fooBar elsewhere\n")],
  ]);
  assert.equal(
    (await b.search({ pattern: "foo[A-Z]\\w+", regex: true })).matches!.map((m) => `${m.path}:${m.line}`),
    ["/other/c.ts:1", "/src/a.ts:1"],
  );
  assert.equal(
    (await b.search({ pattern: "foobar", ignoreCase: true, path: "/src" })).matches!.map((m) => `${m.path}:${m.line}`),
    ["/src/a.ts:1", "/src/a.ts:2", "/src/b.md:1"],
  );
  assert.equal(await b.search({ pattern: "^foo", regex: true, ignoreCase: true, glob: "*.ts", maxCount: 2 }), {
    matches: [
      { path: "/other/c.ts", line: 1, text: "fooBar elsewhere" },
      { path: "/src/a.ts", line: 2, text: "FOOBAR();" },
    ],
    truncated: true,
  });
  assert.match(
    (await b.search({ pattern: "(unclosed", regex: true })).error!,
    /^Error: Invalid regular expression '\(unclosed': /,
  );
  for (const bad of [Number.NaN, 0, -5, Number.POSITIVE_INFINITY, "100" as never]) {
    assert.match(
      (await b.search({ pattern: "foo", timeoutMs: bad })).error!,
      /^Error: timeoutMs must be a number of milliseconds from 1 to 2147483647/,
    );
  }
});

test("read refuses objects above maxReadBytes; download still returns them byte-exact", async () => {
  const b = await s3.backend({ maxReadBytes: 100 });
  const big = Buffer.alloc(1000, "a");
  await b.uploadFiles([["/big.txt", big]]);
  assert.equal(await b.read("/big.txt"), {
    error: "Error: File '/big.txt' is too large to read (1000 bytes; the limit is 100 bytes)",
  });
  assert.ok(Buffer.from((await b.downloadFiles(["/big.txt"]))[0].content!).equals(big));
});

test("foreign objects: a generic Content-Type does not make text unreadable; invalid UTF-8 is bytes", async () => {
  const b = fresh();
  const key = (p: string) => `test/${b.workspace}${p}`;
  await b.client.send(
    new PutObjectCommand({
      Bucket: s3.bucket,
      Key: key("/notes.txt"),
      Body: "from another tool\n",
      ContentType: "binary/octet-stream",
    }),
  );
  await b.client.send(
    new PutObjectCommand({ Bucket: s3.bucket, Key: key("/latin1.txt"), Body: Buffer.from([0x63, 0xe9]) }),
  );
  assert.is((await b.read("/notes.txt")).content, "from another tool\n");
  assert.equal((await b.grep("another")).matches, [{ path: "/notes.txt", line: 1, text: "from another tool" }]);
  const latin = await b.read("/latin1.txt");
  assert.is(latin.mimeType, "application/octet-stream");
  assert.ok(latin.content instanceof Uint8Array);
});

test("initialize: a missing bucket or a dead endpoint is one clear error", async () => {
  const missing = new S3Backend({
    bucket: "no-such-bucket-here",
    endpoint: s3.endpoint,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    region: s3.region,
    maxRetries: 0,
  });
  try {
    await missing.initialize();
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /S3 bucket "no-such-bucket-here" is not usable/);
  }
  const dead = new S3Backend({
    bucket: "x",
    endpoint: "http://127.0.0.1:1",
    accessKeyId: "a",
    secretAccessKey: "b",
    maxRetries: 0,
    connectTimeoutMs: 500,
  });
  const r = await dead.read("/a.txt");
  assert.match(r.error!, /storage failure during read|not usable/);
  await Promise.all([missing.close(), dead.close()]);
});

test("a client of the user's own is used and not destroyed", async () => {
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  const b = new S3Backend({ bucket: s3.bucket, prefix: "test", workspace: "own-client", client });
  await b.write("/x.txt", "x");
  await b.close();
  const listed = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: "test/own-client/" }));
  assert.is(listed.KeyCount, 1);
  await new S3Backend({ bucket: s3.bucket, prefix: "test", workspace: "own-client", client }).delete("/");
  client.destroy();
});

test("a GET body cut off halfway (connection reset mid-transfer) is fetched again, once", async () => {
  const b = fresh();
  const text = "0123456789abcdef\n".repeat(8192); // 136 KiB
  await b.write("/cut-me.txt", text);
  // A real HTTP proxy in front of the S3 server: it forwards everything, but sends only half the
  // body of the first GET of /cut-me.txt and then resets the connection.
  let gets = 0;
  const upstream = new URL(s3.endpoint);
  const proxy = http.createServer((req, res) => {
    const forward = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        const cut = req.method === "GET" && req.url!.includes("cut-me.txt") && ++gets === 1;
        res.writeHead(up.statusCode!, up.headers);
        if (!cut) return void up.pipe(res);
        let sent = 0;
        const half = Number(up.headers["content-length"]) / 2;
        up.on("data", (chunk: Buffer) => {
          if (sent >= half) return;
          res.write(chunk.subarray(0, Math.max(0, half - sent)));
          sent += chunk.length;
          if (sent >= half) {
            up.destroy();
            res.socket!.destroy();
          }
        });
      },
    );
    req.pipe(forward);
  });
  await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
  const via = new S3Backend({
    bucket: s3.bucket,
    endpoint: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    region: s3.region,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    forcePathStyle: true,
    prefix: b.prefix,
    workspace: b.workspace,
    capabilities: backend.capabilities,
  });
  try {
    const r = await via.read("/cut-me.txt", 0, 100_000);
    assert.is(r.error, undefined);
    assert.is(r.content, (await b.read("/cut-me.txt", 0, 100_000)).content, "the same as read without the proxy");
    assert.is(r.content!.length, text.length);
    assert.is(gets, 2, "the cut GET and one retry");
  } finally {
    await via.close();
    await new Promise((r) => proxy.close(r));
  }
});

test("a prefix with '.' or '..' segments is refused at construction", () => {
  for (const prefix of ["..", "a/../b", "./x", "x/."]) {
    assert.throws(
      () => new S3Backend({ bucket: s3.bucket, endpoint: s3.endpoint, prefix, workspace: "w" }),
      /Invalid S3 prefix .*'\.' and '\.\.' segments are not allowed/,
    );
  }
  assert.is(
    new S3Backend({ bucket: s3.bucket, endpoint: s3.endpoint, prefix: "/a//b/", workspace: "w" }).prefix,
    "a/b",
  );
});

test("an ifVersion that is neither an ETag nor 0 is refused and writes nothing; after close() operations fail", async () => {
  const b = await s3.backend();
  for (const bad of [5, "", null as unknown as string, { etag: "x" } as unknown as string]) {
    if (bad === null) continue; // null means "not given"
    const w = await b.write("/v.txt", "x", { ifVersion: bad as string });
    assert.match(w.error ?? "", /^Error: ifVersion must be an ETag \(a non-empty string\) or 0 \(got /, String(bad));
    const e = await b.edit("/v.txt", "x", "y", false, { ifVersion: bad as string });
    assert.match(e.error ?? "", /^Error: ifVersion must be an ETag/, String(bad));
  }
  assert.ok((await b.read("/v.txt")).error, "nothing was written");
  const closed = await s3.backend();
  await closed.close();
  assert.match((await closed.ls("/")).error ?? "", /^Error: storage failure during ls: backend is closed$/);
});

test.run();
