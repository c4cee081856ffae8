/**
 * S3: a file and a directory never share a name (issue 11, item 11). The shared cases
 * (test/conformance/file-directory.ts), plus what only S3 can show: the check is a HEAD of each
 * ancestor and a one-key listing before the PUT, so a clash already in the bucket (written by
 * another tool or an older version) is still reported, never made worse.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { errors } from "../src/protocol.js";
import { directoryCases } from "./conformance/directories.js";
import { fileDirectoryCases } from "./conformance/file-directory.js";
import { startTestS3 } from "./helpers/s3.js";

const s3 = await startTestS3();

fileDirectoryCases(`S3Backend (${s3.kind})`, () => s3.backend());
directoryCases(`S3Backend (${s3.kind})`, () => s3.backend());

test("a file and a directory of one name already in the bucket: writes to either side are refused", async () => {
  const b = await s3.backend();
  const root = `test/${b.workspace}`;
  for (const key of ["/x", "/x/y.txt"])
    await b.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: root + key, Body: "old" }));
  assert.equal(await b.write("/x", "new"), { error: errors.isDirectory("/x") });
  assert.equal(await b.write("/x", "new", { ifVersion: 0 }), { error: errors.isDirectory("/x") });
  assert.equal(await b.write("/x/z.txt", "new"), { error: errors.parentIsFile("/x/z.txt", "/x") });
  assert.equal(await b.uploadFiles([["/x/y.txt", Buffer.from("new")]]), [{ path: "/x/y.txt", error: "invalid_path" }]);
  assert.is((await b.readRaw("/x/y.txt")).data!.content, "old");
  // edit changes a file that exists; it does not create a name, so it is not refused
  assert.is((await b.edit("/x", "old", "edited")).error, undefined);
});

test("fork of the present carries empty directories (their marker objects); files counts files only", async () => {
  const b = await s3.backend();
  await b.mkdir("/empty/inner", { parents: true });
  await b.write("/kept/a.txt", "a");
  const target = `${b.workspace}-fork`;
  assert.is((await b.fork(target)).files, 1);
  const fork = b.withWorkspace(target);
  assert.equal(
    (await fork.ls("/")).files?.map((f) => f.path),
    ["/empty/", "/kept/"],
  );
  assert.equal(
    (await fork.ls("/empty")).files?.map((f) => f.path),
    ["/empty/inner/"],
  );
  assert.equal(
    (await fork.glob("**/*")).files?.map((f) => f.path),
    ["/kept/a.txt"],
  );
});

test.after(() => s3.close());
test.run();
