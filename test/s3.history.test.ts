/**
 * File history on S3 (issue 13): the history conformance suite on a bucket with versioning, where
 * the endpoint implements it (Ceph RGW in CI: `npm test -- s3` with S3_ENDPOINT); and on a bucket
 * without it, or an endpoint without versioning (s3rver), one error naming the fix for every call.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetBucketVersioningCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { S3Backend } from "../src/index.js";
import { historyConformance, rejects, type Versioned } from "./conformance/history.js";
import { uniqueName } from "./helpers/db.js";
import { startTestS3 } from "./helpers/s3.js";

// This file's bucket stays without versioning; a second one on the same endpoint gets it.
const plain = await startTestS3();
const client = new S3Client({
  endpoint: plain.endpoint,
  region: plain.region,
  forcePathStyle: true,
  credentials: { accessKeyId: plain.accessKeyId, secretAccessKey: plain.secretAccessKey },
});
const versionedBucket = `${plain.bucket}-v`;
await client.send(new CreateBucketCommand({ Bucket: versionedBucket }));
const backends: S3Backend[] = [];
async function versionedBackend(): Promise<S3Backend> {
  const b = new S3Backend({
    bucket: versionedBucket,
    endpoint: plain.endpoint,
    region: plain.region,
    accessKeyId: plain.accessKeyId,
    secretAccessKey: plain.secretAccessKey,
    prefix: "test",
    workspace: uniqueName("ws"),
  });
  await b.initialize();
  backends.push(b);
  return b;
}

/** Empties the versioned bucket (every version and delete marker) and removes it. */
async function purge(): Promise<void> {
  for (const b of backends) await b.close();
  for (; hasVersioning; ) {
    const page = await client.send(new ListObjectVersionsCommand({ Bucket: versionedBucket }));
    const all = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].map((v) => ({
      Key: v.Key!,
      VersionId: v.VersionId,
    }));
    if (all.length === 0) break;
    await client.send(new DeleteObjectsCommand({ Bucket: versionedBucket, Delete: { Objects: all, Quiet: true } }));
  }
  await client.send(new DeleteBucketCommand({ Bucket: versionedBucket }));
}

/** Turns versioning on for the bucket; false when the endpoint does not implement it. */
async function enableVersioning(bucket: string): Promise<boolean> {
  // s3rver takes this request for a CreateBucket (and answers BucketAlreadyExists): ask after.
  await client
    .send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: "Enabled" } }))
    .catch(() => {});
  try {
    return (await client.send(new GetBucketVersioningCommand({ Bucket: bucket }))).Status === "Enabled";
  } catch (e) {
    if (["NotImplemented", "MethodNotAllowed"].includes((e as Error).name)) return false;
    throw e;
  }
}

const hasVersioning = await enableVersioning(versionedBucket);

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

if (!hasVersioning)
  test.skip(`history conformance (${plain.kind} has no bucket versioning: the suite runs on Ceph RGW)`, () => {});

test.after(async () => {
  if (!hasVersioning) await purge();
  await plain.close();
});
test.run();

if (hasVersioning) {
  historyConformance(`S3Backend (${plain.kind}, bucket versioning on)`, {
    fresh: async () => (await versionedBackend()) as unknown as Versioned,
    close: async () => {
      await purge();
      client.destroy();
    },
    changeIds: false,
  });
}
