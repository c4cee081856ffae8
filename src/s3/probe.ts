/**
 * What an S3 endpoint enforces, probed once per backend: MinIO, R2, Ceph RGW and AWS enforce
 * If-None-Match / If-Match on PUT; s3rver and some gateways ignore them (edits are then not
 * atomic, and the race tests say so). Ceph RGW 16 compares If-Match against the unquoted ETag.
 */
import { randomUUID } from "node:crypto";
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import type { S3Capabilities } from "./config.js";
import { isNotFound, isPreconditionFailed, wasRetried } from "./errors.js";
import type { Conditions } from "./objects.js";
import { unquote } from "./lineage.js";

/**
 * Create-only twice (the second must fail with 412), then If-Match with the quoted and the
 * unquoted ETag (one must pass) and with a wrong one (must fail). Uses one throwaway key, removed
 * after: on a bucket with versioning, each version it made by its id (a plain delete would leave
 * them behind a delete marker).
 */
export async function probeCapabilities(client: S3Client, bucket: string, prefix: string): Promise<S3Capabilities> {
  const key = `${prefix ? `${prefix}/` : ""}.deepagents-backends-probe/${randomUUID()}`;
  const versions: string[] = [];
  // A PUT sent more than once may have made a version whose id it never saw: then a plain delete
  // too, so that version cannot become the key's current object again.
  let unseen = false;
  const put = async (conditions: Conditions) => {
    try {
      const r = await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: "probe", ...conditions }));
      if (r.VersionId) versions.push(r.VersionId);
      if (wasRetried(r)) unseen = true;
      return unquote(r.ETag);
    } catch (e) {
      if (wasRetried(e)) unseen = true;
      if (isPreconditionFailed(e) || isNotFound(e)) return null;
      throw e;
    }
  };
  try {
    const etag = await put({ IfNoneMatch: "*" });
    const createOnlyEnforced = (await put({ IfNoneMatch: "*" })) === null;
    let etagQuoting: S3Capabilities["etagQuoting"] = "quoted";
    if (etag && (await put({ IfMatch: `"${etag}"` })) === null && (await put({ IfMatch: etag })) !== null) {
      etagQuoting = "unquoted";
    }
    const wrongRejected = (await put({ IfMatch: etagQuoting === "quoted" ? '"0000"' : "0000" })) === null;
    return { conditionalWrites: createOnlyEnforced && wrongRejected, etagQuoting };
  } finally {
    // (Without s3:DeleteObjectVersion a version stays: then at least a plain delete hides the key.)
    let left = versions.length === 0 || unseen;
    for (const VersionId of versions) {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, VersionId })).catch(() => {
        left = true;
      });
    }
    if (left) await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })).catch(() => {});
  }
}
