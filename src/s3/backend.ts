/**
 * S3Backend: deepagents' BackendProtocolV2 on S3 and S3-compatible stores (MinIO, R2, Ceph RGW).
 * One object per file at `<prefix>/<workspace><path>`, raw bytes, Content-Type from the shared
 * MIME table, created time and line count in user metadata. BackendCore validates and shapes;
 * this file maps each request onto objects (objects.ts) and client-side search (search.ts). Text
 * semantics come from text.ts, so answers equal PostgresBackend's; edits use If-Match so no
 * concurrent edit is lost.
 */
import { HeadBucketCommand, type S3Client } from "@aws-sdk/client-s3";
import { type FileBody, toBytes } from "../content.js";
import {
  BackendCore,
  type CoreState,
  type EditOutcome,
  type EditRequest,
  type FileError,
  type FileWindow,
  type LineQuery,
  type MkdirOutcome,
  type RelocateOutcome,
  type RelocateRequest,
  type WriteOutcome,
} from "../core/backend.js";
import { DEFAULTS } from "../core/defaults.js";
import type { BackendFeatures, VersionOptions } from "../core/interface.js";
import { jitteredBackoff, mapLimit } from "../concurrency.js";
import type { CompiledGlob } from "../glob.js";
import { isTextMimeType } from "../mime.js";
import type { NormalizedPath } from "../paths.js";
import {
  errors,
  type FileData,
  type FileInfo,
  type FileStat,
  type GrepMatch,
  InputError,
  type ReadResult,
  setupErrors,
  type WriteResult,
} from "../protocol.js";
import { ancestorsOf, dirPrefix } from "../paths.js";
import { replaceText } from "../text.js";
import { createS3Client, normalizePrefix, type S3BackendConfig, type S3Capabilities } from "./config.js";
import { bucketProblem, s3Failure } from "./errors.js";
import { fileWindowOf, type ObjectShared, ObjectStore, viewOf } from "./objects.js";
import { probeCapabilities } from "./probe.js";
import { relocate } from "./relocate.js";
import { compileS3Matcher, findLines, globFiles, type S3Matcher, streamLines } from "./search.js";
import { TextCache } from "./text-cache.js";
import * as history from "./history.js";
import type { S3HistoryContext } from "./history.js";
import {
  type Checkpoint,
  type DiffOptions,
  type ForkOptions,
  type ForkResult,
  forkTarget,
  type HistoryResult,
  type PathChange,
  type RewindOptions,
  type RewindResult,
  type VersionedWorkspace,
} from "../core/history.js";

/** Optimistic concurrency: the ETag the caller last saw, or 0 for "only if it does not exist". */
export type S3WriteOptions = VersionOptions<string>;

interface Shared extends CoreState, ObjectShared {
  readonly ownsClient: boolean;
  readonly config: S3BackendConfig;
  readonly prefix: string;
}

/** The start of the names of the backend's own objects beside the workspaces (checkpoints, probe). */
const RESERVED = ".deepagents-backends";

/** A workspace name that is a key segment and cannot climb out of the prefix. */
function checkS3Workspace(name: string): void {
  // A "/" would make one workspace a sub-directory of another; "." and ".." are dot segments
  // that HTTP clients and S3-compatible servers may resolve (test/../x is stored as x).
  if (name.includes("/")) throw new Error(setupErrors.invalidWorkspace(name, "'/' is not allowed on S3"));
  if (name === "." || name === "..") {
    throw new Error(
      setupErrors.invalidWorkspace(name, "'.' and '..' are not allowed on S3 (they would resolve outside the prefix)"),
    );
  }
  // Checkpoint manifests and the capability probe live beside the workspaces, under these names.
  if (name.startsWith(RESERVED)) {
    throw new Error(setupErrors.invalidWorkspace(name, `names starting with '${RESERVED}' are reserved on S3`));
  }
}

export class S3Backend extends BackendCore<string, Shared, S3Matcher> implements VersionedWorkspace {
  readonly bucket: string;
  readonly prefix: string;
  readonly #objects: ObjectStore;
  readonly #history: S3HistoryContext;

  constructor(config: S3BackendConfig);
  /** @internal withWorkspace() */
  constructor(config: S3BackendConfig, shared: Shared, workspace: string);
  constructor(config: S3BackendConfig, shared?: Shared, workspace?: string) {
    if (!config?.bucket) throw new Error(setupErrors.s3NeedsBucket());
    const prefix = normalizePrefix(config.prefix);
    super(
      shared ?? {
        client: config.client ?? createS3Client(config),
        ownsClient: !config.client,
        config,
        prefix,
        bucket: config.bucket,
        cache: new TextCache(config.cacheBytes ?? DEFAULTS.s3.cacheBytes),
        maxReadBytes: config.maxReadBytes ?? DEFAULTS.s3.maxReadBytes,
        concurrency: config.grepConcurrency ?? DEFAULTS.s3.concurrency,
        capabilities: config.capabilities,
        closed: false,
      },
      shared ? workspace : (config.workspace ?? DEFAULTS.workspace),
    );
    checkS3Workspace(this.workspace);
    this.bucket = config.bucket;
    this.prefix = prefix;
    this.#objects = new ObjectStore(this.state, prefix ? `${prefix}/${this.workspace}` : this.workspace);
    this.#history = {
      workspace: this.workspace,
      objects: this.#objects,
      checkpointRoot: `${prefix ? `${prefix}/` : ""}${RESERVED}-checkpoints/${this.workspace}/`,
      maxFileBytes: this.maxFileBytes,
      failure: (operation, e) => this.failure(operation, e),
      checkVersion: (ifVersion) => this.checkVersion(ifVersion),
      writeFile: (path, display, body, ifVersion) => this.writeFile(path, display, body, ifVersion),
    };
  }

  get features(): BackendFeatures {
    return {
      kind: "s3",
      versions: "etag",
      watch: false,
      serverSideSearch: false,
      atomicEdits: this.state.capabilities?.conditionalWrites,
    };
  }

  /** What the endpoint enforces; known after initialize() (or the first operation). */
  get capabilities(): S3Capabilities | undefined {
    return this.state.capabilities;
  }

  get client(): S3Client {
    return this.state.client;
  }

  withWorkspace(name: string): S3Backend {
    return new S3Backend(this.state.config, this.state, name);
  }

  /** Checks the bucket is reachable and probes once whether the endpoint enforces preconditions. */
  initialize(): Promise<void> {
    return this.initializeOnce(async () => {
      const { client, bucket, prefix } = this.state;
      try {
        await client.send(new HeadBucketCommand({ Bucket: bucket }));
      } catch (e) {
        throw new Error(setupErrors.bucketUnusable(bucket, bucketProblem(e)));
      }
      this.state.capabilities ??= await probeCapabilities(client, bucket, prefix);
    });
  }

  /** Destroys the S3 client if this backend created it. */
  protected async release(): Promise<void> {
    if (this.state.ownsClient) this.state.client.destroy();
  }

  protected get maxFileBytes(): number {
    return this.state.config.maxFileBytes ?? DEFAULTS.maxFileBytes;
  }

  protected get timeoutMs(): number {
    return this.state.config.searchTimeoutMs ?? DEFAULTS.timeoutMs;
  }

  protected checkVersion(ifVersion: unknown): string | 0 | null {
    if (ifVersion === undefined || ifVersion === null) return null;
    if (ifVersion === 0 || (typeof ifVersion === "string" && ifVersion !== "")) return ifVersion;
    throw new InputError(errors.invalidIfVersion(ifVersion, "an ETag (a non-empty string) or 0"));
  }

  protected storageFailure(operation: string, e: unknown): string {
    return s3Failure(operation, e);
  }

  protected override checkStorablePath(path: string): void {
    this.#objects.key(path); // a key S3 would refuse is this file's invalid_path
  }

  protected async listDirectory(dir: string): Promise<FileInfo[]> {
    const objects = this.#objects;
    const { objects: files, prefixes } = await objects.list(objects.key(dir), "/");
    return [
      ...files.map((o) => ({ path: o.path, is_dir: false, size: o.size, modified_at: o.modified.toISOString() })),
      ...prefixes.map((p) => ({ path: objects.path(p), is_dir: true, size: 0, modified_at: "" })),
    ];
  }

  protected async readWindow(
    path: string,
    display: string,
    window: { offset: number; limit: number },
  ): Promise<FileWindow | null> {
    const object = await this.#objects.get(this.#objects.key(path), display);
    return object ? fileWindowOf(path, object.bytes, window) : null;
  }

  protected async readData(path: string, display: string): Promise<FileData | null> {
    const object = await this.#objects.get(this.#objects.key(path), display);
    if (!object) return null;
    const view = viewOf(path, object);
    return {
      content: view.text ?? toBytes(object.bytes),
      mimeType: view.mimeType,
      created_at: object.createdAt ?? object.modified.toISOString(),
      modified_at: object.modified.toISOString(),
    };
  }

  /**
   * `version` is the ETag; `lines` null for objects we did not write. No object: a one-key listing
   * tells whether a directory is there.
   */
  protected async statFile(path: string): Promise<FileStat<string> | "directory" | null> {
    const key = this.#objects.key(path);
    const head = await this.#objects.head(key);
    if (!head) return (await this.#objects.hasChildren(key)) ? "directory" : null;
    return {
      path,
      mimeType: head.contentType,
      isBinary: !isTextMimeType(head.contentType),
      size: head.size,
      lines: head.lines ?? null,
      version: head.etag,
      created_at: head.createdAt ?? head.modified.toISOString(),
      modified_at: head.modified.toISOString(),
    };
  }

  protected async writeFile(
    path: string,
    display: string,
    body: FileBody,
    ifVersion: string | 0 | null,
  ): Promise<WriteOutcome<string>> {
    const objects = this.#objects;
    const key = objects.key(path);
    // The object keeps created_at and is the parent of the new one; the version is checked when asked.
    const [existing, clash] = await Promise.all([objects.head(key), objects.clash(path)]);
    if (clash === "directory") return { status: "is_directory" };
    if (clash) return { status: "parent_is_file", file: clash.file };
    if (ifVersion !== null && (ifVersion === 0 ? existing !== null : existing?.etag !== ifVersion)) {
      return { status: "version_mismatch", current: existing?.etag ?? null };
    }
    const conditions =
      ifVersion === null ? {} : ifVersion === 0 ? { IfNoneMatch: "*" } : { IfMatch: objects.ifMatch(ifVersion) };
    const createdAt = existing?.createdAt ?? new Date().toISOString();
    const etag = await objects.put(key, display, body, createdAt, existing, conditions);
    if (etag === null) return { status: "version_mismatch", current: (await objects.head(key))?.etag ?? null };
    return { status: "ok", version: etag };
  }

  /**
   * GET (ETag) → replace → PUT If-Match; a lost race re-reads and re-applies, up to
   * maxEditAttempts, so concurrent edits of different strings all land.
   */
  protected async editFile(
    path: string,
    display: string,
    edit: EditRequest,
    ifVersion: string | 0 | null,
  ): Promise<EditOutcome<string>> {
    const objects = this.#objects;
    const key = objects.key(path);
    const attempts = this.state.config.maxEditAttempts ?? DEFAULTS.s3.maxEditAttempts;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const object = await objects.get(key, display);
      if (!object) return { status: "not_found" };
      if (ifVersion !== null && ifVersion !== object.etag) return { status: "version_mismatch", current: object.etag };
      const view = viewOf(path, object);
      if (view.text === null) return { status: "binary" };
      const result = replaceText(view.text, edit.oldString, edit.newString, edit.replaceAll);
      if (result.status !== "ok")
        return { status: result.status, occurrences: "occurrences" in result ? result.occurrences : 0 };
      const size = Buffer.byteLength(result.content, "utf8");
      if (size > this.maxFileBytes) return { status: "too_large", size };
      const body: FileBody = { mimeType: view.mimeType, text: result.content, bytes: null, size };
      const createdAt = object.createdAt ?? object.modified.toISOString();
      const etag = await objects.put(key, display, body, createdAt, object, { IfMatch: objects.ifMatch(object.etag) });
      if (etag !== null) return { status: "ok", occurrences: result.occurrences, version: etag };
      if (ifVersion !== null) return { status: "version_mismatch", current: (await objects.head(key))?.etag ?? null };
      await jitteredBackoff(attempt);
    }
    return { status: "conflict", attempts };
  }

  /** The object and everything under `path/`, directory markers included. */
  protected async deleteTree(path: string): Promise<boolean> {
    const objects = this.#objects;
    const [under, exact] = await Promise.all([
      objects.list(objects.key(dirPrefix(path))),
      path === "/" ? null : objects.head(objects.key(path)),
    ]);
    const keys = [
      ...(exact ? [exact.key] : []),
      ...under.objects.map((o) => o.key),
      ...under.markers.map((o) => o.key),
    ];
    if (keys.length === 0) return false;
    await objects.deleteKeys(keys);
    return true;
  }

  /**
   * A marker object per directory, the ancestors' too (mkdir -p's: they stay when it goes). The
   * checks and the PUTs are not one atomic step: S3 has no condition over several keys, so a file
   * written at the path meanwhile can share its name with the directory (as for files, README).
   */
  protected async makeDirectory(path: string, parents: boolean): Promise<MkdirOutcome> {
    const objects = this.#objects;
    const [self, clash] = await Promise.all([objects.head(objects.key(path)), objects.clash(path)]);
    if (clash !== null && clash !== "directory") return { status: "parent_is_file", path: clash.file };
    if (self) return { status: "is_file" };
    if (clash === "directory" && !parents) return { status: "exists" };
    if (clash === null && !parents) {
      const parent = ancestorsOf(path).at(-1);
      if (parent !== undefined && !(await objects.hasChildren(objects.key(parent))))
        return { status: "parent_missing", path: parent };
    }
    const dirs = [...ancestorsOf(path), path];
    const marked = await Promise.all(dirs.map((dir) => objects.head(objects.key(`${dir}/`))));
    await Promise.all(dirs.filter((_, i) => marked[i] === null).map((dir) => objects.putMarker(dir)));
    return { status: clash === "directory" ? "exists" : "created" };
  }

  /** Copies, then (a move) deletes: never in neither place, not atomic (relocate.ts). */
  protected relocateTree(request: RelocateRequest): Promise<RelocateOutcome> {
    return relocate(this.#objects, request);
  }

  protected compileMatcher(pattern: string, regex: boolean, ignoreCase: boolean): S3Matcher {
    return compileS3Matcher(pattern, regex, ignoreCase);
  }

  protected findLines(query: LineQuery<S3Matcher>): Promise<GrepMatch[]> {
    return findLines(this.#objects, query);
  }

  protected streamLines(query: LineQuery<S3Matcher>): AsyncGenerator<GrepMatch[]> {
    return streamLines(this.#objects, query);
  }

  protected globFiles(glob: CompiledGlob, scope: NormalizedPath): Promise<FileInfo[]> {
    return globFiles(this.#objects, glob, scope, this.timeoutMs);
  }

  /**
   * One PUT per file, `grepConcurrency` at a time. An overwritten file keeps its created_at (a
   * HEAD per file). A file below another file of the store is "invalid_path", one that names a
   * directory "is_directory".
   */
  protected async uploadBatch(batch: Map<string, FileBody>): Promise<Map<string, FileError>> {
    const objects = this.#objects;
    const refused = new Map<string, FileError>();
    const now = new Date().toISOString();
    await mapLimit([...batch], this.state.concurrency, async ([path, body]) => {
      const key = objects.key(path);
      const [existing, clash] = await Promise.all([objects.head(key), objects.clash(path)]);
      if (clash) refused.set(path, clash === "directory" ? "is_directory" : "invalid_path");
      else await objects.put(key, path, body, existing?.createdAt ?? now, existing);
    });
    return refused;
  }

  protected downloadBatch(paths: string[]): Promise<Array<Buffer | "is_directory" | "file_not_found">> {
    const objects = this.#objects;
    return mapLimit(paths, this.state.concurrency, async (path) => {
      const key = objects.key(path);
      const bytes = await objects.getAnySize(key);
      if (bytes) return bytes;
      return (await objects.hasChildren(key)) ? "is_directory" : "file_not_found";
    });
  }

  // --- file history and checkpoints, from the bucket's object versions (history.ts) -----------

  /** The object versions of a path, oldest first (versioning must be on). */
  history(path: string): Promise<HistoryResult> {
    return this.ready().then(() => history.fileHistory(this.#history, path));
  }
  /** One version (a history number, or an S3 version id), with read()'s window. */
  readVersion(path: string, version: number | string, offset?: number, limit?: number): Promise<ReadResult> {
    return this.ready().then(() => history.readVersion(this.#history, path, version, offset, limit));
  }
  restore(
    path: string,
    version: number | string,
    options?: S3WriteOptions,
  ): Promise<WriteResult & { version?: string }> {
    return this.ready().then(() => history.restore(this.#history, path, version, options));
  }
  /** A manifest of every file's current version (one listing of the workspace's versions). */
  async checkpoint(options?: { label?: string; tag?: string }): Promise<Checkpoint> {
    await this.ready();
    return history.checkpoint(this.#history, options);
  }
  async checkpoints(): Promise<Checkpoint[]> {
    await this.ready();
    return history.checkpoints(this.#history);
  }
  async deleteCheckpoint(id: number): Promise<boolean> {
    await this.ready();
    return history.deleteCheckpoint(this.#history, id);
  }
  /** Each changed path written back (deletions first); not atomic across paths on S3. */
  async rewind(checkpoint: number, options?: RewindOptions): Promise<RewindResult> {
    await this.ready();
    return history.rewind(this.#history, checkpoint, options);
  }
  async diff(from: number, to?: number | null, options?: DiffOptions): Promise<PathChange[]> {
    await this.ready();
    return history.diff(this.#history, from, to ?? null, options);
  }
  /** Server-side copies of every object (or of a checkpoint's versions); not atomic across files on S3. */
  async fork(workspace: string, options?: ForkOptions): Promise<ForkResult> {
    await this.ready();
    return history.fork(this.#history, forkTarget(workspace, (name) => this.withWorkspace(name)).#history, options);
  }
}
