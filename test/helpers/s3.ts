/**
 * Test S3 server: S3_ENDPOINT (+ AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_REGION) when set,
 * e.g. MinIO or Ceph RGW; otherwise s3rver started in this process (it needs Node's
 * --openssl-legacy-provider for ListObjectsV2 continuation tokens; test/run.ts passes it).
 * Every test file gets a bucket of its own, emptied and removed at the end.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import S3rver from "s3rver";
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketVersioningCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { S3Backend, type S3BackendConfig } from "../../src/index.js";
import { freePort } from "../../src/postgres/embedded/index.js";
import { uniqueName } from "./db.js";

export interface TestS3 {
  kind: "endpoint" | "s3rver";
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  bucket: string;
  /** A backend on this file's bucket, in a fresh workspace. */
  backend(config?: Partial<S3BackendConfig>): Promise<S3Backend>;
  close(): Promise<void>;
}

/**
 * s3rver 3.7 drops common prefixes whose objects all sit deeper than one level (it prunes those
 * directories before seeing their keys), so `ls /` misses `/dir/` when only `/dir/sub/x` exists.
 * Real S3, MinIO and Ceph do not. Fix its store in this process: list without the delimiter
 * (no pruning) and fold keys into common prefixes here, as S3 does.
 */
function fixS3rverCommonPrefixes(): void {
  const FilesystemStore = createRequire(import.meta.url)("s3rver/lib/stores/filesystem.js");
  const original = FilesystemStore.prototype.listObjects;
  if (original.fixed) return;
  const fixed = async function (
    this: unknown,
    bucket: string,
    options: { delimiter?: string; prefix?: string; maxKeys?: number; startAfter?: string },
  ) {
    const { delimiter, prefix = "", maxKeys = Infinity } = options;
    if (!delimiter) return original.call(this, bucket, options);
    const all = await original.call(this, bucket, { ...options, delimiter: "", maxKeys: Infinity });
    const commonPrefixes = new Set<string>();
    const objects = [];
    for (const object of all.objects as Array<{ key: string }>) {
      const idx = object.key.slice(prefix.length).indexOf(delimiter);
      if (idx === -1) objects.push(object);
      else commonPrefixes.add(object.key.slice(0, prefix.length + idx + 1));
    }
    return {
      objects: objects.slice(0, maxKeys),
      commonPrefixes: [...commonPrefixes].sort(),
      isTruncated: objects.length > maxKeys,
    };
  };
  FilesystemStore.prototype.listObjects = Object.assign(fixed, { fixed: true });
}

export async function startTestS3(): Promise<TestS3> {
  let endpoint = process.env.S3_ENDPOINT;
  let accessKeyId = process.env.AWS_ACCESS_KEY_ID ?? "";
  let secretAccessKey = process.env.AWS_SECRET_ACCESS_KEY ?? "";
  const region = process.env.AWS_REGION ?? "us-east-1";
  let stopServer = async () => {};
  const kind = endpoint ? "endpoint" : "s3rver";
  if (!endpoint) {
    fixS3rverCommonPrefixes();
    const directory = await mkdtemp(path.join(tmpdir(), "s3rver-"));
    const port = await freePort();
    const server = new S3rver({ port, address: "127.0.0.1", silent: true, directory });
    await server.run();
    endpoint = `http://127.0.0.1:${port}`;
    accessKeyId = "S3RVER";
    secretAccessKey = "S3RVER";
    stopServer = async () => {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    };
  }
  const base = { endpoint, accessKeyId, secretAccessKey, region, forcePathStyle: true };
  const bucket = uniqueName("test").replace(/_/g, "-");
  const admin = new S3Client({ ...base, credentials: { accessKeyId, secretAccessKey } });
  await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  const backends: S3Backend[] = [];
  return {
    kind,
    endpoint,
    accessKeyId,
    secretAccessKey,
    region,
    bucket,
    async backend(config = {}) {
      const b = new S3Backend({ ...base, bucket, prefix: "test", workspace: uniqueName("ws"), ...config });
      await b.initialize();
      backends.push(b);
      return b;
    },
    async close() {
      // Every object of the bucket lives under "test/" (checkpoint manifests too) or the probe's prefix.
      for (const root of ["test/", ".deepagents-backends-probe/"]) {
        for (let pages = 0; pages < 1000; pages++) {
          const page = await admin.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: root })).catch(() => null);
          const keys = (page?.Contents ?? []).map((o) => ({ Key: o.Key! }));
          if (keys.length === 0) break;
          // A key XML 1.0 cannot carry fails the whole batch: those go one by one (in the URL).
          await admin
            .send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }))
            .catch(() =>
              Promise.all(
                keys.map((k) => admin.send(new DeleteObjectCommand({ Bucket: bucket, ...k })).catch(() => {})),
              ),
            );
        }
      }
      await admin.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {});
      for (const b of backends) await b.close();
      admin.destroy();
      await stopServer();
    },
  };
}

export interface VersionedS3 {
  bucket: string;
  /** A backend on the versioned bucket, in a fresh workspace. */
  backend(): Promise<S3Backend>;
  /** The object versions and delete markers whose keys start with `prefix`. */
  versionsUnder(prefix: string): Promise<number>;
  /** Empties the bucket (every version and delete marker), removes it, closes the backends. */
  close(): Promise<void>;
}

/**
 * A second bucket on the same endpoint with versioning enabled (file history on S3), or null when
 * the endpoint does not implement versioning (s3rver): then nothing is left behind.
 */
export async function versionedBucket(s3: TestS3): Promise<VersionedS3 | null> {
  const base = { endpoint: s3.endpoint, region: s3.region, forcePathStyle: true };
  const client = new S3Client({
    ...base,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  const bucket = `${s3.bucket}-v`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  // s3rver takes this request for a CreateBucket (and answers BucketAlreadyExists): ask after.
  await client
    .send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: "Enabled" } }))
    .catch(() => {});
  const enabled = await client.send(new GetBucketVersioningCommand({ Bucket: bucket })).then(
    (r) => r.Status === "Enabled",
    (e: Error) => {
      if (["NotImplemented", "MethodNotAllowed"].includes(e.name)) return false;
      throw e;
    },
  );
  if (!enabled) {
    await client.send(new DeleteBucketCommand({ Bucket: bucket }));
    client.destroy();
    return null;
  }
  const backends: S3Backend[] = [];
  return {
    bucket,
    async backend() {
      const b = new S3Backend({
        ...base,
        bucket,
        accessKeyId: s3.accessKeyId,
        secretAccessKey: s3.secretAccessKey,
        prefix: "test",
        workspace: uniqueName("ws"),
      });
      await b.initialize();
      backends.push(b);
      return b;
    },
    async versionsUnder(prefix) {
      const page = await client.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix }));
      return (page.Versions?.length ?? 0) + (page.DeleteMarkers?.length ?? 0);
    },
    async close() {
      for (const b of backends) await b.close();
      for (;;) {
        const page = await client.send(new ListObjectVersionsCommand({ Bucket: bucket }));
        const all = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].map((v) => ({
          Key: v.Key!,
          VersionId: v.VersionId,
        }));
        if (all.length === 0) break;
        await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: all, Quiet: true } }));
      }
      await client.send(new DeleteBucketCommand({ Bucket: bucket }));
      client.destroy();
    },
  };
}
