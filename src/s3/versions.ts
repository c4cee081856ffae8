/**
 * Object versions of a versioned bucket, read for file history (history.ts): whether the bucket
 * keeps versions, every version and delete marker under a prefix as one timeline per key, and
 * the bytes of one version.
 */
import {
  DeleteObjectsCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  ListObjectVersionsCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { historyErrors, InputError } from "../protocol.js";
import { httpStatus, isNotFound } from "./errors.js";
import { unquote } from "./lineage.js";

/** One entry of a key's timeline: a version (its bytes are kept) or a delete marker. */
export interface VersionEntry {
  versionId: string;
  /** null for a delete marker. */
  etag: string | null;
  size: number;
  at: Date;
  deleteMarker: boolean;
  isLatest: boolean;
  /** For a version: 1 for the oldest version kept, +1 for each later one; for a delete marker, the number of the version it deleted (0: none kept). */
  number: number;
}

/** The bucket's versioning as history needs it; an Error naming the fix when it is not on. */
export async function requireVersioning(client: S3Client, bucket: string): Promise<void> {
  let status: string | undefined;
  try {
    status = (await client.send(new GetBucketVersioningCommand({ Bucket: bucket }))).Status;
  } catch (e) {
    // 501 NotImplemented (MinIO gateways), 405 MethodNotAllowed (s3rver): no versioning there.
    if (httpStatus(e) === 501 || httpStatus(e) === 405 || (e as Error)?.name === "NotImplemented")
      throw new InputError(historyErrors.s3NoVersioningSupport(bucket));
    throw e;
  }
  // An InputError: the answer the agent and the developer get as it is, not as a storage failure.
  if (status !== "Enabled") throw new InputError(historyErrors.s3VersioningOff(bucket, status ?? "never enabled"));
}

/**
 * Every version and delete marker whose key starts with `prefix`, as timelines per key, oldest
 * first and numbered. S3 lists a key's versions newest first but returns delete markers in a
 * list of their own: they are merged by LastModified. Where a marker and a version share one
 * (AWS lists whole seconds) the version is taken as the older, unless it is the latest: a file
 * written, deleted and written again within one second is listed in that order, but one deleted
 * and written twice within a second may be listed with the deletion late (README, "File history
 * on S3").
 */
export async function listVersions(
  client: S3Client,
  bucket: string,
  prefix: string,
): Promise<Map<string, VersionEntry[]>> {
  const byKey = new Map<string, VersionEntry[]>();
  const add = (key: string, entry: Omit<VersionEntry, "number">) => {
    const list = byKey.get(key) ?? [];
    list.push({ ...entry, number: 0 });
    byKey.set(key, list);
  };
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  do {
    const page = await client.send(
      new ListObjectVersionsCommand({
        Bucket: bucket,
        Prefix: prefix,
        KeyMarker: keyMarker,
        VersionIdMarker: versionMarker,
      }),
    );
    for (const v of page.Versions ?? []) {
      if (!v.Key || v.Key.endsWith("/")) continue;
      add(v.Key, {
        versionId: v.VersionId ?? "null",
        etag: unquote(v.ETag),
        size: v.Size ?? 0,
        at: v.LastModified ?? new Date(0),
        deleteMarker: false,
        isLatest: v.IsLatest === true,
      });
    }
    for (const m of page.DeleteMarkers ?? []) {
      if (!m.Key || m.Key.endsWith("/")) continue; // (a directory marker's: directories have no history)
      add(m.Key, {
        versionId: m.VersionId ?? "null",
        etag: null,
        size: 0,
        at: m.LastModified ?? new Date(0),
        deleteMarker: true,
        isLatest: m.IsLatest === true,
      });
    }
    keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
    versionMarker = page.IsTruncated ? page.NextVersionIdMarker : undefined;
  } while (keyMarker !== undefined);
  for (const [key, entries] of byKey) byKey.set(key, timeline(entries));
  return byKey;
}

/** Oldest first: by time, the latest last; numbers for versions, and for markers the version they deleted. */
function timeline(newestFirst: VersionEntry[]): VersionEntry[] {
  // The newest-first lists (versions, then markers, each in S3's order) by time: the latest last,
  // on a tie versions before markers, and within each list S3's order reversed.
  const ordered = newestFirst
    .map((entry, i) => ({ entry, i }))
    .sort(
      (a, b) =>
        Number(a.entry.isLatest) - Number(b.entry.isLatest) ||
        a.entry.at.getTime() - b.entry.at.getTime() ||
        Number(a.entry.deleteMarker) - Number(b.entry.deleteMarker) ||
        b.i - a.i,
    )
    .map((x) => x.entry);
  let number = 0;
  let size = 0;
  for (const entry of ordered) {
    if (entry.deleteMarker) {
      entry.number = number;
      entry.size = size;
    } else {
      entry.number = ++number;
      size = entry.size;
    }
  }
  return ordered;
}

/** The bytes of one version; null when it is not kept (or is a delete marker). */
export async function getVersion(
  client: S3Client,
  bucket: string,
  key: string,
  versionId: string,
): Promise<Buffer | null> {
  try {
    const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
    return Buffer.from(await r.Body!.transformToByteArray());
  } catch (e) {
    if (isNotFound(e) || httpStatus(e) === 405) return null; // 405: the version is a delete marker
    throw e;
  }
}

/** Deletes these versions for good (not a delete marker: the versions themselves). */
export async function deleteVersions(
  client: S3Client,
  bucket: string,
  versions: Array<{ key: string; versionId: string }>,
): Promise<void> {
  for (let i = 0; i < versions.length; i += 1000) {
    const batch = versions.slice(i, i + 1000);
    const r = await client.send(
      new DeleteObjectsCommand({
        Bucket: bucket,
        Delete: { Objects: batch.map((v) => ({ Key: v.key, VersionId: v.versionId })), Quiet: true },
      }),
    );
    if (r.Errors?.length) throw new Error(`could not delete ${r.Errors[0].Key}: ${r.Errors[0].Code}`);
  }
}
