/**
 * File history on S3 (issue 13): the history conformance suite on a bucket with versioning, where
 * the endpoint implements it (Ceph RGW in CI: `npm test -- s3` with S3_ENDPOINT); and on a bucket
 * without it, or an endpoint without versioning (s3rver), one error naming the fix for every call.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { S3Backend } from "../src/index.js";
import { historyConformance, rejects, type Versioned } from "./conformance/history.js";
import { startTestS3, versionedBucket } from "./helpers/s3.js";

// This file's bucket stays without versioning; a second one on the same endpoint gets it.
const plain = await startTestS3();
const versioned = await versionedBucket(plain);

test("without bucket versioning every history call answers one error naming the fix, and changes nothing", async () => {
  const b = await plain.backend();
  await b.write("/a.txt", "a\n");
  // s3rver answers GetBucketVersioning without a status, as a bucket that never had it does.
  const fix = new RegExp(
    `^Error: file history on S3 needs versioning on bucket '${plain.bucket}' \\(it is never enabled\\): enable it, e\\.g\\. aws s3api put-bucket-versioning --bucket ${plain.bucket} --versioning-configuration Status=Enabled$`,
  );
  assert.match((await b.history("/a.txt")).error ?? "", fix);
  assert.match((await b.readVersion("/a.txt", 1)).error ?? "", fix);
  assert.match((await b.restore("/a.txt", 1)).error ?? "", fix);
  await rejects(() => b.checkpoint(), fix);
  await rejects(() => b.checkpoints(), fix);
  await rejects(() => b.rewind(1), fix);
  await rejects(() => b.diff(1), fix);
  await rejects(() => b.deleteCheckpoint(1), fix);
  assert.is((await b.readRaw("/a.txt")).data?.content, "a\n");
});

test("names starting with .deepagents-backends are reserved for the backend's own objects", () => {
  for (const workspace of [".deepagents-backends-checkpoints", ".deepagents-backends-probe", ".deepagents-backends"]) {
    assert.throws(
      () => new S3Backend({ bucket: plain.bucket, workspace }),
      /names starting with '\.deepagents-backends' are reserved on S3/,
    );
  }
});

if (versioned)
  test("the capability probe leaves no object version or delete marker behind on a versioned bucket", async () => {
    await versioned.backend(); // initialize() probes with a throwaway key
    assert.is(await versioned.versionsUnder("test/.deepagents-backends-probe/"), 0);
  });

if (!versioned)
  test.skip(`history conformance (${plain.kind} has no bucket versioning: the suite runs on Ceph RGW)`, () => {});

test.after(() => plain.close());
test.run();

if (versioned) {
  historyConformance(`S3Backend (${plain.kind}, bucket versioning on)`, {
    fresh: async () => (await versioned.backend()) as unknown as Versioned,
    close: () => versioned.close(),
    changeIds: false,
  });
}
