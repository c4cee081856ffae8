/**
 * move() and copy() on S3 (src/s3/relocate.ts): the shared cases (test/conformance/relocate.ts),
 * on s3rver in the default runs and on Ceph RGW in CI's S3 pass, where conditional writes are
 * enforced and each copy carries If-None-Match / If-Match for its target.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { errors } from "../src/protocol.js";
import { relocateCases } from "./conformance/relocate.js";
import { startTestS3 } from "./helpers/s3.js";

const s3 = await startTestS3();

relocateCases(`S3Backend (${s3.kind})`, () => s3.backend());

test("a moved directory leaves no object under the old prefix, and the copies keep their content type", async () => {
  const b = await s3.backend();
  await b.write("/d/a.md", "# a\n");
  await b.uploadFiles([["/d/x.bin", Buffer.from([0, 1, 2, 3])]]);
  assert.is((await b.move("/d", "/e")).files, 2);
  assert.equal(
    (await b.ls("/")).files?.map((f) => f.path),
    ["/e/"],
  );
  const stat = await b.stat("/e/a.md");
  assert.is(stat.data?.mimeType, (await b.stat("/e/a.md")).data?.mimeType);
  assert.match(stat.data!.mimeType, /^text\/markdown/);
  assert.is((await b.stat("/e/x.bin")).data?.isBinary, true);
});

test("an empty directory another tool made without its parents' markers: moved where a file is above it, refused", async () => {
  const b = await s3.backend();
  // s3fs and the consoles make a marker per directory; a tool that made only the deepest one:
  await b.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `test/${b.workspace}/src/a/b/`, Body: "" }));
  await b.write("/t/a", "a file");
  assert.equal(await b.move("/src", "/t"), { error: errors.parentIsFile("/t", "/t/a") });
  assert.equal(
    (await b.ls("/src/a")).files?.map((f) => f.path),
    ["/src/a/b/"],
  );
  assert.is((await b.readRaw("/t/a")).data?.content, "a file");
});

/**
 * A real network fault: an HTTP proxy in front of the endpoint that passes every request through
 * but drops the connection of each CopyObject whose URL contains `poison`.
 */
async function poisonedProxy(): Promise<{ url: string; copiesPassed: () => number; close: () => Promise<void> }> {
  const upstream = new URL(s3.endpoint);
  let copies = 0;
  const server = http.createServer((req, res) => {
    const isCopy = req.headers["x-amz-copy-source"] !== undefined;
    if (isCopy && req.url?.includes("poison")) return void req.socket.destroy();
    const forward = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        if (isCopy && answer.statusCode === 200) copies++;
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on("error", () => req.socket.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    copiesPassed: () => copies,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

test("a copy that fails half-way: no copy is sent after it, the ones made are undone, every source stays", async () => {
  const proxy = await poisonedProxy();
  try {
    const b = await s3.backend({ endpoint: proxy.url, maxRetries: 1, grepConcurrency: 4 });
    const names = [
      ...Array.from({ length: 20 }, (_, i) => `a${String(i).padStart(2, "0")}.txt`),
      "m-poison.txt",
      ...Array.from({ length: 20 }, (_, i) => `z${String(i).padStart(2, "0")}.txt`),
    ];
    const up = await b.uploadFiles(names.map((n): [string, Uint8Array] => [`/src/${n}`, Buffer.from(`body of ${n}`)]));
    assert.ok(up.every((r) => r.error === null));
    for (const op of ["move", "copy"] as const) {
      const before = proxy.copiesPassed();
      const r = await b[op]("/src", "/dst");
      assert.match(r.error ?? "", new RegExp(`^Error: storage failure during ${op}`), JSON.stringify(r));
      assert.ok(proxy.copiesPassed() > before, "some copies landed before the failure (the undo had work)");
      await new Promise((resolve) => setTimeout(resolve, 300)); // a copy still in flight would land by now
      assert.equal((await b.glob("**/*", "/dst")).files ?? [], [], `${op}: the copies made were deleted`);
      const left = ((await b.glob("**/*", "/src")).files ?? []).map((f) => f.path).sort();
      assert.equal(left, names.map((n) => `/src/${n}`).sort(), `${op}: every source is where it was`);
      assert.is((await b.readRaw("/src/a00.txt")).data?.content, "body of a00.txt");
    }
  } finally {
    await proxy.close();
  }
});

test.after(() => s3.close());
test.run();
