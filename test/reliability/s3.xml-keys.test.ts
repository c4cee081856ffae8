/**
 * S3: no stored key is undeletable (issue 11, item 8). DeleteObjects sends its keys in an XML
 * body, and XML 1.0 cannot carry U+FFFE, U+FFFF or most C0 controls: a batch holding such a key
 * failed with HTTP 400 every time, so its parent and `/` could never be deleted. The path rules
 * refuse such names now, but a bucket may hold them already (another tool, an older version):
 * they are put here with the SDK directly.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import type { S3Backend } from "../../src/index.js";
import { startTestS3 } from "../helpers/s3.js";

const s3 = await startTestS3();
test.after(() => s3.close());

const ODD = ["/d/x\uFFFF.txt", "/d/y\uFFFE.md", "/d/z\u0001.txt", "/top\uFFFF"];

async function seed(b: S3Backend): Promise<string> {
  const root = `test/${b.workspace}`;
  for (const path of ODD)
    await b.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: root + path, Body: "odd" }));
  assert.is((await b.write("/d/plain.txt", "plain")).error, undefined);
  assert.is((await b.write("/other.txt", "other")).error, undefined);
  return root;
}

async function keys(b: S3Backend, root: string): Promise<string[]> {
  const r = await b.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: root + "/" }));
  return (r.Contents ?? []).map((o) => o.Key!.slice(root.length)).sort();
}

test("delete of a directory holding keys XML 1.0 cannot carry succeeds and removes them", async () => {
  const b = await s3.backend();
  const root = await seed(b);
  assert.equal(await b.delete("/d"), { path: "/d", filesUpdate: null });
  assert.equal(await keys(b, root), ["/other.txt", "/top\uFFFF"]);
});

test("delete('/') of a workspace holding such keys succeeds and leaves nothing", async () => {
  const b = await s3.backend();
  const root = await seed(b);
  assert.equal(await b.delete("/"), { path: "/", filesUpdate: null });
  assert.equal(await keys(b, root), []);
  assert.equal(await b.ls("/"), { files: [] });
});

test.run();
