/**
 * Test S3 server: S3_ENDPOINT (+ AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_REGION) when set,
 * e.g. MinIO or Ceph RGW; otherwise s3rver started in this process (it needs Node's
 * --openssl-legacy-provider for ListObjectsV2 continuation tokens; test/run.ts passes it).
 * Every test file gets a bucket of its own, emptied and removed at the end.
 */
import { createHash, randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
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

/**
 * s3rver 3.7 answers a PUT before the object's bytes reach its file (it resolves when the data
 * was handed to the write stream, not when the stream finished), and writes over the old file in
 * place. A listing or GET right after the PUT, on a loaded machine, then sees a short or empty
 * object: CI's differential test once saw `glob` report the size of a file written one step
 * before as smaller than it was. S3 stores an object whole before it answers; so does this fix:
 * the bytes go to a temporary file, flushed, then renamed over the object.
 */
function fixS3rverDurablePut(): void {
  const FilesystemStore = createRequire(import.meta.url)("s3rver/lib/stores/filesystem.js");
  const original = FilesystemStore.prototype.putObject;
  if (original.fixed) return;
  const fixed = async function (
    this: {
      getResourcePath(bucket: string, key: string, resource: string): string;
      putMetadata(bucket: string, key: string, metadata: unknown, md5: string): Promise<void>;
    },
    object: { bucket: string; key: string; metadata: unknown; content: Buffer | Readable },
  ) {
    const objectPath = this.getResourcePath(object.bucket, object.key, "object");
    await mkdir(path.dirname(objectPath), { recursive: true });
    // A short name beside the object (a key's own file name may be near the 255-byte limit),
    // not ending in s3rver's object suffix, so a listing never takes it for an object.
    const temporary = path.join(path.dirname(objectPath), `.partial-${randomBytes(6).toString("hex")}`);
    const md5 = createHash("md5");
    let size = 0;
    const source = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : object.content;
    const count = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        md5.update(chunk);
        size += chunk.length;
        callback(null, chunk);
      },
    });
    try {
      await pipeline(source, count, createWriteStream(temporary));
      await rename(temporary, objectPath);
    } catch (e) {
      await rm(temporary, { force: true });
      throw e;
    }
    const digest = md5.digest("hex");
    await this.putMetadata(object.bucket, object.key, object.metadata, digest);
    return { size, md5: digest };
  };
  FilesystemStore.prototype.putObject = Object.assign(fixed, { fixed: true });
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
    fixS3rverDurablePut();
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
