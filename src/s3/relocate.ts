/**
 * move() and copy() on S3: server-side copies (CopyObject), then, for a move, the sources
 * deleted. Every copy is made before any delete, so a file is never in neither place; S3 has no
 * transaction over keys, so a move is not atomic: a reader may see a file in both places while
 * it runs, and a failure half-way is undone as far as it can be: no copy is sent after the first
 * failure, those in flight are waited for, then each copy made to a new path is deleted while it
 * is still ours (its ETag, read just before: a file written there in between could go too, the
 * same window as a source's below); a file replaced with `overwrite` is not brought back.
 *
 * Each copy names its source by the ETag listed (CopySourceIfMatch: a source rewritten meanwhile
 * is refused, not copied half-new) and, where the endpoint enforces conditional writes, the
 * target as found (If-None-Match for a new path, If-Match for one replaced with `overwrite`).
 * Whether it enforces them is probed on PUT (probe.ts), not on CopyObject: an endpoint that
 * honours them on PUT only would let a copy replace a file written at its target meanwhile.
 * Before a source is deleted its ETag is read again: one rewritten since its copy stays (the
 * move fails, saying so), so no write is lost but for one landing between that read and the
 * delete (S3's DeleteObject takes no condition on every endpoint).
 */
import { CopyObjectCommand } from "@aws-sdk/client-s3";
import { mapLimit } from "../concurrency.js";
import type { RelocateOutcome, RelocateRequest } from "../core/requests.js";
import { ancestorsOf, dirPrefix, MAX_PATH_BYTES } from "../paths.js";
import { isPreconditionFailed } from "./errors.js";
import { unquote } from "./lineage.js";
import { copySource, type Listed, type ObjectStore } from "./objects.js";

/** A source file and where it goes. */
interface Transfer {
  from: Listed;
  to: string;
  toKey: string;
  /** The ETag of the file it replaces (overwrite), or null for a new path. */
  replaces: string | null;
}

export class RelocateConflictError extends Error {}

export async function relocate(objects: ObjectStore, request: RelocateRequest): Promise<RelocateOutcome> {
  const { from, to, overwrite } = request;
  const [exact, under, toHead, targets, above] = await Promise.all([
    objects.head(objects.key(from)),
    objects.list(objects.key(dirPrefix(from))),
    objects.head(objects.key(to)),
    objects.list(objects.key(dirPrefix(to))),
    Promise.all(ancestorsOf(to).map(async (dir) => ((await objects.head(objects.key(dir))) ? dir : null))),
  ]);
  const sources: Listed[] = exact ? [exact] : under.objects;
  // Directories made by mkdir in the source (its own marker too): made again under the target.
  const markers = exact ? [] : under.markers.map((m) => m.path.slice(0, -1));
  if (sources.length === 0 && markers.length === 0) return { status: "not_found" };
  const fileAbove = above.find((dir) => dir !== null);
  if (fileAbove) return { status: "parent_is_file", path: fileAbove };
  if (exact && (targets.objects.length > 0 || targets.markers.length > 0)) return { status: "is_directory", path: to };
  if (!exact && toHead) return { status: "parent_is_file", path: to };

  // What is under the target now: its files, and the directories they and its markers make.
  const existing = new Map(targets.objects.map((o) => [o.path, o.etag]));
  if (toHead) existing.set(to, toHead.etag);
  const targetMarkers = new Set(targets.markers.map((m) => m.path.slice(0, -1)));
  const existingDirs = new Set([
    ...targets.objects.flatMap((o) => ancestorsOf(o.path)),
    ...[...targetMarkers].flatMap((dir) => [...ancestorsOf(dir), dir]),
  ]);
  const newMarkers: string[] = [];
  for (const marker of markers) {
    const dir = to + marker.slice(from.length);
    if (Buffer.byteLength(dir, "utf8") > MAX_PATH_BYTES) return { status: "too_long", path: dir };
    // A file of the target where the directory, or one above it (below `to`), would go.
    const file = [...ancestorsOf(dir), dir].find((d) => d.length >= to.length && existing.has(d));
    if (file) return { status: "parent_is_file", path: file };
    if (!targetMarkers.has(dir)) newMarkers.push(dir);
  }
  const transfers: Transfer[] = [];
  for (const source of sources.sort((a, b) => (a.path < b.path ? -1 : 1))) {
    const path = to + source.path.slice(from.length);
    if (Buffer.byteLength(path, "utf8") > MAX_PATH_BYTES) return { status: "too_long", path };
    if (existingDirs.has(path)) return { status: "is_directory", path };
    const fileDir = ancestorsOf(path).find((dir) => dir.length > to.length && existing.has(dir));
    if (fileDir) return { status: "parent_is_file", path: fileDir };
    const replaces = existing.get(path) ?? null;
    if (replaces !== null && !overwrite) return { status: "target_exists", path };
    transfers.push({ from: source, to: path, toKey: objects.key(path), replaces });
  }

  const { client, bucket, concurrency, capabilities } = objects.shared;
  const enforced = capabilities?.conditionalWrites === true;
  const copied: Array<Transfer & { etag: string | undefined }> = [];
  // The first failure stops the copies not yet sent; those in flight are waited for (settled)
  // before anything is undone, so no copy lands after the call has answered.
  let failure: unknown = null;
  await mapLimit(transfers, concurrency, async (t) => {
    if (failure !== null) return;
    try {
      let etag: string | undefined;
      try {
        const r = await client.send(
          new CopyObjectCommand({
            Bucket: bucket,
            Key: t.toKey,
            CopySource: copySource(bucket, t.from.key),
            CopySourceIfMatch: objects.ifMatch(t.from.etag),
            ...(enforced
              ? t.replaces === null
                ? { IfNoneMatch: "*" }
                : { IfMatch: objects.ifMatch(t.replaces) }
              : {}),
          }),
        );
        etag = r.CopyObjectResult?.ETag === undefined ? undefined : unquote(r.CopyObjectResult.ETag);
      } catch (e) {
        if (!isPreconditionFailed(e)) throw e;
        const now = await objects.head(t.toKey);
        // Our own copy, landed on an attempt whose answer was lost (the SDK's retry then met its
        // condition): the source's bytes are there (a copy keeps the ETag of a one-part object).
        if (now !== null && now.etag === t.from.etag) etag = now.etag;
        else if ((now?.etag ?? null) !== t.replaces) throw new RelocateConflictError(t.to);
        else throw new Error(`'${t.from.path}' changed while it was being copied; nothing was deleted`);
      } finally {
        objects.shared.cache.delete(t.toKey);
      }
      copied.push({ ...t, etag });
    } catch (e) {
      failure ??= e;
    }
  });
  // The directories made by mkdir, once every file is there.
  if (failure === null) {
    await Promise.all(newMarkers.map((dir) => objects.putMarker(dir))).catch((e) => {
      failure = e;
    });
  }
  if (failure !== null) {
    // Undo (the markers made, too): the copies made to new paths, each only while it is still our copy (a file a writer
    // put there since stays; a file replaced with `overwrite` cannot be brought back).
    // (Settled, not Promise.all: a failed check skips that copy's undo, never the others', and the
    // answer stays the failure that stopped the move.)
    const ours = copied.filter((t) => t.replaces === null);
    const now = await Promise.allSettled(ours.map((t) => objects.head(t.toKey)));
    const stillOurs = ours.filter((t, i) => {
      const head = now[i];
      return t.etag !== undefined && head.status === "fulfilled" && head.value?.etag === t.etag;
    });
    const made = newMarkers.map((dir) => objects.key(`${dir}/`));
    await objects.deleteKeys([...stillOurs.map((t) => t.toKey), ...made]).catch(() => {});
    if (failure instanceof RelocateConflictError) return { status: "target_exists", path: failure.message };
    throw failure;
  }
  if (request.operation === "move") {
    const now = await Promise.all(transfers.map((t) => objects.head(t.from.key)));
    const unchanged = transfers.filter((t, i) => now[i]?.etag === t.from.etag);
    await objects.deleteKeys([...unchanged.map((t) => t.from.key), ...under.markers.map((m) => m.key)]);
    const changed = transfers.find((t, i) => now[i] !== null && now[i]?.etag !== t.from.etag);
    if (changed) {
      throw new Error(
        `'${changed.from.path}' was rewritten during the move: its earlier content was moved to '${changed.to}' and the rewritten file left in place`,
      );
    }
  }
  return { status: "ok", files: transfers.length };
}
