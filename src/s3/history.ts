/**
 * File history and checkpoints on S3, from the bucket's object versions (versioning must be
 * enabled; otherwise every call answers one error naming the fix). A file's versions are its
 * object's versions, numbered from the oldest kept; a deletion is its delete marker. A checkpoint
 * is a manifest object (path → version id and ETag of every file), created once with
 * If-None-Match under `<prefix>/.deepagents-backends-checkpoints/<workspace>/<id>`. rewind and
 * diff compare manifests with the live versions; a rewind writes each path back as an ordinary
 * write (a new version: the past is never rewritten). Unlike PostgreSQL, S3 has no transaction
 * over several keys: a checkpoint lists the latest version of each key one page at a time, and a
 * rewind changes one path at a time (README, "File history on S3"). A fork is a server-side copy
 * of every object (or of every version a checkpoint names) under the new workspace's prefix.
 */
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { bodyForUpload, type FileBody } from "../content.js";
import { readResult, type WriteOutcome, writeResult } from "../core/backend.js";
import { DEFAULTS } from "../core/defaults.js";
import {
  type Checkpoint,
  type DiffOptions,
  type FileVersion,
  type ForkOptions,
  type ForkResult,
  forkHistoryOption,
  type HistoryResult,
  optionalLabel,
  type PathChange,
  positiveId,
  type RewindChange,
  type RewindOptions,
  type RewindResult,
  scopeOf,
  unifiedPatch,
} from "../core/history.js";
import { mapLimit } from "../concurrency.js";
import { getMimeType, isTextMimeType } from "../mime.js";
import { compareBytewise, dirPrefix, inScope, normalizeFilePath } from "../paths.js";
import { errors, historyErrors, InputError, type ReadResult, readPagination, type WriteResult } from "../protocol.js";
import { isNotFound, isPreconditionFailed, isSdkError } from "./errors.js";
import { copySource, fileWindowOf, type ObjectShared, type ObjectStore } from "./objects.js";
import { deleteVersions, getVersion, listVersions, requireVersioning, type VersionEntry } from "./versions.js";

/** What the backend lends this module. */
export interface S3HistoryContext {
  readonly workspace: string;
  readonly objects: ObjectStore;
  /** Key prefix of this workspace's checkpoint manifests, ending in "/". */
  readonly checkpointRoot: string;
  readonly maxFileBytes: number;
  /** The protocol's message for a failure. */
  failure(operation: string, e: unknown): string;
  /** write()'s check of `ifVersion`. */
  checkVersion(ifVersion: unknown): string | 0 | null;
  /** write() after validation: the file/directory rule, the precondition, the PUT. */
  writeFile(path: string, display: string, body: FileBody, ifVersion: string | 0 | null): Promise<WriteOutcome<string>>;
}

/** A checkpoint: what each file was (version id, ETag, size) when it was taken. */
interface Manifest {
  format: 1;
  id: number;
  label: string | null;
  tag: string | null;
  createdAt: string;
  files: Record<string, [versionId: string, etag: string, size: number]>;
}

const META_LABEL = "label";
const META_TAG = "tag";
const META_CREATED = "created-at";

/** Buckets whose versioning was found on (a bucket's versioning cannot be removed, only suspended). */
const versioned = new WeakMap<ObjectShared, Promise<void>>();

function ensureVersioning(ctx: S3HistoryContext): Promise<void> {
  const shared = ctx.objects.shared;
  let known = versioned.get(shared);
  if (!known) {
    known = requireVersioning(shared.client, shared.bucket);
    versioned.set(shared, known);
    known.catch(() => versioned.delete(shared)); // asked again next time: it may have been enabled since
  }
  return known;
}

/**
 * The workspace-level calls (checkpoints, rewind, diff, fork) throw, as PostgreSQL's do: bad input
 * and history's own protocol lines ("Error: ...") as they are; anything else — what the SDK threw
 * (with or without its metadata: a credential provider fails before the SDK's retry step), a
 * path S3 cannot hold, a body cut off — as one storage-failure line that names the call.
 */
function ownError(e: unknown): boolean {
  return e instanceof InputError || (e instanceof Error && !isSdkError(e) && e.message.startsWith("Error: "));
}

async function answering<T>(ctx: S3HistoryContext, operation: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    throw ownError(e) ? e : new Error(ctx.failure(operation, e));
  }
}

/** The timeline of one file, oldest first. */
async function timelineOf(ctx: S3HistoryContext, path: string): Promise<VersionEntry[]> {
  const key = ctx.objects.key(path);
  const { client, bucket } = ctx.objects.shared;
  return (await listVersions(client, bucket, key)).get(key) ?? [];
}

/** Every file's timeline, by path. */
async function workspaceTimelines(ctx: S3HistoryContext): Promise<Map<string, VersionEntry[]>> {
  const { client, bucket } = ctx.objects.shared;
  const byKey = await listVersions(client, bucket, `${ctx.objects.root}/`);
  return new Map([...byKey].map(([key, entries]) => [ctx.objects.path(key), entries]));
}

/** The live version of each file (its latest entry, unless that is a delete marker). */
function liveFiles(timelines: Map<string, VersionEntry[]>): Map<string, VersionEntry> {
  const live = new Map<string, VersionEntry>();
  for (const [path, entries] of timelines) {
    const latest = entries.at(-1);
    if (latest && !latest.deleteMarker) live.set(path, latest);
  }
  return live;
}

/** The version a history number (or an S3 version id) names, if kept. */
const versionIn = (entries: VersionEntry[], version: number | string) =>
  entries.find(
    (e) => !e.deleteMarker && (typeof version === "string" ? e.versionId === version : e.number === version),
  );

const versionNumber = (timelines: Map<string, VersionEntry[]>, path: string, versionId: string) =>
  timelines.get(path)?.find((e) => e.versionId === versionId)?.number ?? 0;

/** A version given as a number (history's) or an S3 version id. */
function versionRef(version: unknown): number | string {
  return typeof version === "string" && version !== "" ? version : positiveId(version, "version");
}

export async function fileHistory(ctx: S3HistoryContext, filePath: string): Promise<HistoryResult> {
  try {
    const path = normalizeFilePath(filePath);
    await ensureVersioning(ctx);
    const entries = await timelineOf(ctx, path);
    if (entries.length === 0) return { error: historyErrors.noHistory(filePath) };
    const versions: FileVersion[] = entries.map((e, i) => ({
      version: e.number,
      op: e.deleteMarker ? "delete" : i === 0 || entries[i - 1].deleteMarker ? "create" : "update",
      changeId: null,
      size: e.size,
      // The type a write gives the path; a version's own Content-Type would cost a HEAD each.
      mimeType: e.deleteMarker ? null : getMimeType(path),
      at: e.at.toISOString(),
      tag: null,
      versionId: e.versionId,
    }));
    return { versions };
  } catch (e) {
    return { error: ctx.failure("history", e) };
  }
}

/** The bytes of version `version` of `path`, or null when it is not kept. */
async function versionBytes(ctx: S3HistoryContext, path: string, version: number | string) {
  const entry = versionIn(await timelineOf(ctx, path), version);
  if (!entry) return null;
  const { client, bucket } = ctx.objects.shared;
  if (entry.size > ctx.objects.shared.maxReadBytes) return { entry, bytes: null };
  return { entry, bytes: await getVersion(client, bucket, ctx.objects.key(path), entry.versionId) };
}

export async function readVersion(
  ctx: S3HistoryContext,
  filePath: string,
  version: number | string,
  offset = 0,
  limit: number = DEFAULTS.readLimit,
): Promise<ReadResult> {
  try {
    const path = normalizeFilePath(filePath);
    const v = versionRef(version);
    const window = readPagination(offset, limit);
    await ensureVersioning(ctx);
    const found = await versionBytes(ctx, path, v);
    if (found && found.bytes === null)
      return { error: errors.tooLargeToRead(filePath, found.entry.size, ctx.objects.shared.maxReadBytes) };
    if (!found?.bytes) return { error: historyErrors.noVersion(filePath, v) };
    return readResult(fileWindowOf(path, found.bytes, window), window);
  } catch (e) {
    return { error: ctx.failure("readVersion", e) };
  }
}

export async function restore(
  ctx: S3HistoryContext,
  filePath: string,
  version: number | string,
  options: { ifVersion?: string | 0 } = {},
): Promise<WriteResult & { version?: string }> {
  try {
    const path = normalizeFilePath(filePath);
    const v = versionRef(version);
    const ifVersion = ctx.checkVersion(options.ifVersion);
    await ensureVersioning(ctx);
    const entry = versionIn(await timelineOf(ctx, path), v);
    const { client, bucket } = ctx.objects.shared;
    const bytes = entry ? await getVersion(client, bucket, ctx.objects.key(path), entry.versionId) : null;
    if (!bytes) return { error: historyErrors.noVersion(filePath, v) };
    const body = bodyForUpload(path, bytes, ctx.maxFileBytes);
    return writeResult(filePath, ifVersion, await ctx.writeFile(path, filePath, body, ifVersion));
  } catch (e) {
    return { error: ctx.failure("restore", e) };
  }
}

// --- checkpoints ------------------------------------------------------------------------------

const manifestKey = (ctx: S3HistoryContext, id: number) => `${ctx.checkpointRoot}${id}`;

function checkpointOf(m: Pick<Manifest, "id" | "label" | "tag" | "createdAt">): Checkpoint {
  return { id: m.id, changeId: null, label: m.label, tag: m.tag, createdAt: m.createdAt };
}

async function takeCheckpoint(
  ctx: S3HistoryContext,
  options: { label?: string; tag?: string } = {},
): Promise<Checkpoint> {
  const label = optionalLabel(options.label, "label");
  const tag = optionalLabel(options.tag, "tag");
  await ensureVersioning(ctx);
  const files: Manifest["files"] = {};
  for (const [path, v] of liveFiles(await workspaceTimelines(ctx))) files[path] = [v.versionId, v.etag!, v.size];
  const createdAt = new Date().toISOString();
  const { client, bucket } = ctx.objects.shared;
  // Ids are milliseconds since the epoch; If-None-Match makes each one once (a taken id moves on,
  // a few times: an endpoint refusing every create would otherwise loop for ever).
  const first = Date.now();
  for (let id = first; ; id++) {
    if (id - first >= 10) throw new Error(historyErrors.s3CheckpointRefused(first, id - 1));
    const manifest: Manifest = { format: 1, id, label, tag, createdAt, files };
    try {
      await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: manifestKey(ctx, id),
          Body: JSON.stringify(manifest),
          ContentType: "application/json",
          IfNoneMatch: "*",
          Metadata: {
            [META_LABEL]: encodeURIComponent(label ?? ""),
            [META_TAG]: encodeURIComponent(tag ?? ""),
            [META_CREATED]: createdAt,
          },
        }),
      );
      return checkpointOf(manifest);
    } catch (e) {
      if (!isPreconditionFailed(e)) throw e;
    }
  }
}

async function listCheckpoints(ctx: S3HistoryContext): Promise<Checkpoint[]> {
  await ensureVersioning(ctx);
  const { client, bucket, concurrency } = ctx.objects.shared;
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: ctx.checkpointRoot, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? [])
      if (o.Key && /^\d+$/.test(o.Key.slice(ctx.checkpointRoot.length))) keys.push(o.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  const list = await mapLimit(keys, concurrency, async (key) => {
    try {
      const h = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      const text = (name: string) => decodeURIComponent(h.Metadata?.[name] ?? "") || null;
      return checkpointOf({
        id: Number(key.slice(ctx.checkpointRoot.length)),
        label: text(META_LABEL),
        tag: text(META_TAG),
        createdAt: h.Metadata?.[META_CREATED] ?? (h.LastModified ?? new Date(0)).toISOString(),
      });
    } catch (e) {
      if (isNotFound(e)) return null; // deleted while listing
      throw e;
    }
  });
  return list.filter((c): c is Checkpoint => c !== null).sort((a, b) => a.id - b.id);
}

async function loadManifest(ctx: S3HistoryContext, id: number): Promise<Manifest> {
  const { client, bucket } = ctx.objects.shared;
  try {
    const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: manifestKey(ctx, id) }));
    return JSON.parse(await r.Body!.transformToString("utf8")) as Manifest;
  } catch (e) {
    if (isNotFound(e)) throw new InputError(historyErrors.noCheckpoint(id, ctx.workspace));
    throw e;
  }
}

/** Deletes the manifest with every version of it (a delete marker alone would keep it in the bucket). */
async function removeCheckpoint(ctx: S3HistoryContext, id: number): Promise<boolean> {
  const checked = positiveId(id, "checkpoint");
  await ensureVersioning(ctx);
  const { client, bucket } = ctx.objects.shared;
  const key = manifestKey(ctx, checked);
  const entries = (await listVersions(client, bucket, key)).get(key) ?? [];
  if (!entries.some((e) => e.isLatest && !e.deleteMarker)) return false;
  await deleteVersions(
    client,
    bucket,
    entries.map((e) => ({ key, versionId: e.versionId })),
  );
  return true;
}

// --- rewind and diff --------------------------------------------------------------------------

type Side = { versionId: string; etag: string; size: number } | undefined;

/** The paths whose content differs between two states, in scope, in byte order. */
function changedPaths(a: Map<string, Side>, b: Map<string, Side>, scope: string[] | null): string[] {
  return [...new Set([...a.keys(), ...b.keys()])]
    .filter((p) => inScope(p, scope) && a.get(p)?.etag !== b.get(p)?.etag)
    .sort(compareBytewise);
}

const manifestSides = (m: Manifest) =>
  new Map<string, Side>(
    Object.entries(m.files).map(([path, [versionId, etag, size]]) => [path, { versionId, etag, size }]),
  );

const liveSides = (live: Map<string, VersionEntry>) =>
  new Map<string, Side>(
    [...live].map(([path, v]) => [path, { versionId: v.versionId, etag: v.etag ?? "", size: v.size }]),
  );

const opOf = (before: Side, after: Side): RewindChange["op"] =>
  before === undefined ? "created" : after === undefined ? "deleted" : "updated";

async function rewindTo(ctx: S3HistoryContext, id: number, options: RewindOptions = {}): Promise<RewindResult> {
  const checked = positiveId(id, "checkpoint");
  const scope = scopeOf(options.paths);
  const dryRun = options.dryRun === true;
  await ensureVersioning(ctx);
  const target = manifestSides(await loadManifest(ctx, checked));
  const timelines = await workspaceTimelines(ctx);
  const now = liveSides(liveFiles(timelines));
  const side = (path: string, s: Side) =>
    s ? { version: versionNumber(timelines, path, s.versionId), size: s.size } : null;
  const changes: RewindChange[] = changedPaths(now, target, scope).map((path) => ({
    path,
    op: opOf(now.get(path), target.get(path)),
    before: side(path, now.get(path)),
    after: side(path, target.get(path)),
    written: null,
  }));
  if (dryRun || changes.length === 0) return { changes, dryRun, undo: null };

  // Every version to write back must still be kept (a lifecycle rule may have expired it): checked
  // before anything changes, since S3 cannot undo the paths already done.
  for (const c of changes) {
    const from = target.get(c.path);
    if (from && !timelines.get(c.path)?.some((e) => e.versionId === from.versionId))
      throw new InputError(historyErrors.noVersion(c.path, from.versionId));
  }
  // A path to write back that is a directory now, and stays one after the deletions (a directory
  // made by mkdir since, or files the rewind's scope leaves): refused before anything changes.
  const { client, bucket, concurrency } = ctx.objects.shared;
  const deleted = new Set(changes.filter((c) => c.op === "deleted").map((c) => c.path));
  const blocked = await mapLimit(
    changes.filter((c) => c.op !== "deleted"),
    concurrency,
    async (c) => {
      const under = await ctx.objects.list(ctx.objects.key(dirPrefix(c.path)));
      return under.markers.length > 0 || under.objects.some((o) => !deleted.has(o.path)) ? c.path : null;
    },
  );
  const directory = blocked.find((path) => path !== null);
  if (directory) throw new InputError(historyErrors.rewindOntoDirectory(directory));
  const undo = (await takeCheckpoint(ctx, { label: `before rewind to checkpoint ${checked}` })).id;
  // Deletions first: they can only free names the files written back need (the checkpoint's
  // files never clashed with each other).
  await ctx.objects.deleteKeys(changes.filter((c) => c.op === "deleted").map((c) => ctx.objects.key(c.path)));
  await mapLimit(
    changes.filter((c) => c.op !== "deleted"),
    concurrency,
    async (c) => {
      const from = target.get(c.path)!;
      const bytes = await getVersion(client, bucket, ctx.objects.key(c.path), from.versionId);
      if (!bytes) throw new Error(historyErrors.noVersion(c.path, c.after!.version));
      const outcome = await ctx.writeFile(c.path, c.path, bodyForUpload(c.path, bytes, Number.POSITIVE_INFINITY), null);
      const refused = writeResult(c.path, null, outcome);
      if (refused.error) throw new Error(refused.error);
    },
  );
  return { changes, dryRun, undo };
}

async function diffBetween(
  ctx: S3HistoryContext,
  from: number,
  to: number | null,
  options: DiffOptions = {},
): Promise<PathChange[]> {
  const fromId = positiveId(from, "from");
  const toId = to === null || to === undefined ? null : positiveId(to, "to");
  const scope = scopeOf(options.paths);
  await ensureVersioning(ctx);
  const before = manifestSides(await loadManifest(ctx, fromId));
  const timelines = await workspaceTimelines(ctx);
  const after = toId === null ? liveSides(liveFiles(timelines)) : manifestSides(await loadManifest(ctx, toId));
  const { client, bucket, concurrency } = ctx.objects.shared;
  const side = (path: string, s: Side) =>
    s ? { version: versionNumber(timelines, path, s.versionId), size: s.size } : null;
  const text = async (path: string, s: Side): Promise<string | null | undefined> => {
    if (!s) return undefined; // no file on this side
    // Not fetched: a binary type, or more than read() would read (reported as changed, not diffed).
    if (!isTextMimeType(getMimeType(path)) || s.size > ctx.objects.shared.maxReadBytes) return null;
    const bytes = await getVersion(client, bucket, ctx.objects.key(path), s.versionId);
    return bytes === null ? null : bodyForUpload(path, bytes, Number.POSITIVE_INFINITY).text;
  };
  return mapLimit(changedPaths(before, after, scope), concurrency, async (path): Promise<PathChange> => {
    const change: PathChange = {
      path,
      op: opOf(before.get(path), after.get(path)),
      before: side(path, before.get(path)),
      after: side(path, after.get(path)),
      // Without the bytes: by the path's type (a text extension holding bytes is told apart with unified).
      binary: !isTextMimeType(getMimeType(path)),
    };
    if (!options.unified) return change;
    const [a, b] = await Promise.all([text(path, before.get(path)), text(path, after.get(path))]);
    change.binary = a === null || b === null;
    if (!change.binary) change.patch = unifiedPatch(path, a ?? "", b ?? "", options.context);
    return change;
  });
}

// --- fork -------------------------------------------------------------------------------------

/**
 * Every file of this workspace (now, or the versions a checkpoint names) copied server-side into
 * `target`, which must have none. Not atomic: S3 has no transaction over keys, so a fork that
 * fails half-way leaves the files copied so far in the target; without a checkpoint, a file
 * written during the fork is copied as it was or as it became. With `history`, each file's
 * versions and deletions are replayed into the target in order (see forkHistory).
 */
export async function fork(
  ctx: S3HistoryContext,
  target: S3HistoryContext,
  options: ForkOptions = {},
): Promise<ForkResult> {
  const at = options.at === undefined ? null : positiveId(options.at, "checkpoint");
  const history = forkHistoryOption(options.history);
  if (target.workspace === ctx.workspace) throw new InputError(historyErrors.forkIntoItself(ctx.workspace));
  if (history && at !== null) throw new InputError(historyErrors.s3ForkHistoryAt);
  return answering(ctx, "fork", async () => {
    if (await target.objects.hasChildren(target.objects.root))
      throw new InputError(historyErrors.forkTargetHasFiles(target.workspace));
    if (history) return await forkHistory(ctx, target);
    let sources: Array<{ path: string; size: number; versionId?: string }>;
    if (at === null) {
      // (Directory markers too: a fork of the present has its empty directories.)
      const listing = await ctx.objects.list(`${ctx.objects.root}/`);
      sources = [...listing.objects, ...listing.markers];
    } else {
      await ensureVersioning(ctx);
      sources = Object.entries((await loadManifest(ctx, at)).files).map(([path, [versionId, , size]]) => ({
        path,
        size,
        versionId,
      }));
    }
    // Every key first: one too long for S3 under the target's prefix refuses the fork before any copy.
    const copies = sources.map((s) => ({ from: ctx.objects.key(s.path), to: target.objects.key(s.path), ...s }));
    const { client, bucket, concurrency } = ctx.objects.shared;
    await mapLimit(copies, concurrency, (c) =>
      client.send(
        new CopyObjectCommand({ Bucket: bucket, Key: c.to, CopySource: copySource(bucket, c.from, c.versionId) }),
      ),
    );
    const bytes = sources.reduce((n, s) => n + s.size, 0);
    const files = sources.filter((s) => !s.path.endsWith("/")).length;
    return { workspace: target.workspace, files, bytes, at, versions: 0 };
  });
}

/**
 * fork({ history: true }): each file's timeline replayed into the target, oldest first — every
 * version kept copied server-side, every delete marker a delete — so the target's versions are
 * the source's, numbered alike (with new version ids), and the live ones are the files. Files in
 * parallel, each one's timeline in order. The target must have no versions of its own (a prefix
 * that had files once keeps their history: copies would mix with it). Not atomic, like fork.
 */
async function forkHistory(ctx: S3HistoryContext, target: S3HistoryContext): Promise<ForkResult> {
  await ensureVersioning(ctx);
  if ((await workspaceTimelines(target)).size > 0)
    throw new InputError(historyErrors.forkTargetHasHistory(target.workspace));
  const timelines = [...(await workspaceTimelines(ctx))].map(([path, entries]) => ({
    path,
    entries,
    from: ctx.objects.key(path),
    to: target.objects.key(path),
  }));
  const { client, bucket, concurrency } = ctx.objects.shared;
  let versions = 0;
  await mapLimit(timelines, concurrency, async (t) => {
    let copied = false;
    for (const entry of t.entries) {
      if (!entry.deleteMarker) {
        await client.send(
          new CopyObjectCommand({ Bucket: bucket, Key: t.to, CopySource: copySource(bucket, t.from, entry.versionId) }),
        );
        copied = true;
        versions++;
      } else if (copied) {
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: t.to }));
      }
    }
  });
  // The empty directories as they are now (directories have no history), as a fork of the present.
  const markers = (await ctx.objects.list(`${ctx.objects.root}/`)).markers;
  await mapLimit(markers, concurrency, (m) => target.objects.putMarker(m.path.slice(0, -1)));
  const live = [...liveFiles(new Map(timelines.map((t) => [t.path, t.entries]))).values()];
  const bytes = live.reduce((n, v) => n + v.size, 0);
  return { workspace: target.workspace, files: live.length, bytes, at: null, versions };
}

// --- the workspace-level calls, as the backend exports them ------------------------------------

export const checkpoint = (ctx: S3HistoryContext, options: { label?: string; tag?: string } = {}) =>
  answering(ctx, "checkpoint", () => takeCheckpoint(ctx, options));
export const checkpoints = (ctx: S3HistoryContext) => answering(ctx, "checkpoints", () => listCheckpoints(ctx));
export const deleteCheckpoint = (ctx: S3HistoryContext, id: number) =>
  answering(ctx, "deleteCheckpoint", () => removeCheckpoint(ctx, id));
export const rewind = (ctx: S3HistoryContext, id: number, options: RewindOptions = {}) =>
  answering(ctx, "rewind", () => rewindTo(ctx, id, options));
export const diff = (ctx: S3HistoryContext, from: number, to: number | null, options: DiffOptions = {}) =>
  answering(ctx, "diff", () => diffBetween(ctx, from, to, options));
