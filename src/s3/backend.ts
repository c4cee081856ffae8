/**
 * S3Backend: deepagents' BackendProtocolV2 on S3 and S3-compatible stores (MinIO, R2, Ceph RGW).
 * One object per file at `<prefix>/<workspace><path>`, raw bytes, Content-Type from the shared
 * MIME table, created time and line count in user metadata. Text semantics come from text.ts,
 * so answers equal PostgresBackend's; edits use If-Match so no concurrent edit is lost.
 */
import { createHash, randomUUID } from "node:crypto";
import type { Readable } from "node:stream";
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import type {
  BackendProtocolV2,
  DeleteResult,
  EditResult,
  FileDownloadResponse,
  FileInfo,
  FileUploadResponse,
  GlobResult,
  GrepMatch,
  GrepResult,
  LsResult,
  ReadRawResult,
  ReadResult,
  WriteResult,
} from "../protocol.js";
import {
  editFailure,
  errors,
  grepLimit,
  readPagination,
  textReadResult,
  type SearchOptions,
  type SearchResult,
  type StatResult,
} from "../protocol.js";
import {
  ancestorsOf,
  batchClashes,
  dirPrefix,
  fileErrorCode,
  normalizeFilePath,
  normalizePath,
  PathError,
  validateWorkspace,
} from "../paths.js";
import { compileGlob, matchesBasename, type CompiledGlob } from "../glob.js";
import { Deadline, MatchTimeoutError } from "../bounded.js";
import { compileLineTest, RegexError } from "../regex.js";
import {
  bodyForUpload,
  bodyForWrite,
  checkEditStrings,
  ContentError,
  isStorableText,
  searchBudgetMs,
  toBytes,
  type FileBody,
} from "../content.js";
import { inputFailure } from "../failures.js";
import { basename, getMimeType, isTextMimeType } from "../mime.js";
import { containsLiteral, lineCount, lineWindow, matchingLines, replaceText, type LineTest } from "../text.js";
import { mapLimit, orderedPipeline } from "../concurrency.js";
import { TextCache } from "./text-cache.js";
import { createS3Client, normalizePrefix, S3_DEFAULTS, type S3BackendConfig, type S3Capabilities } from "./config.js";

/** Optimistic concurrency: the ETag the caller last saw, or 0 for "only if it does not exist". */
export interface S3WriteOptions {
  ifVersion?: string | 0;
}

interface Listed {
  key: string;
  path: string;
  size: number;
  etag: string;
  modified: Date;
}

interface Fetched extends Lineage {
  bytes: Buffer;
  etag: string;
  modified: Date;
  createdAt: string | undefined;
}

/** Who an object is: its write id and the write ids it descends from (see #put). */
interface Lineage {
  writeId?: string;
  basedOn?: string;
}

interface Shared {
  readonly client: S3Client;
  readonly ownsClient: boolean;
  readonly config: S3BackendConfig;
  readonly cache: TextCache;
  capabilities?: S3Capabilities;
  initialized?: Promise<void>;
}

const META_CREATED = "created-at"; // S3 lower-cases user metadata keys
const META_LINES = "lines";
/** A fresh UUID per PUT: tells whether a PUT whose answer was lost landed (see #put). */
const META_WRITE_ID = "write-id";
/**
 * The write ids an object descends from, nearest first, comma-separated: the object it replaced,
 * that one's parent, and so on (LINEAGE_LENGTH of them). NO_OBJECT stands for "written where
 * there was no object"; an entry marked UNCONDITIONAL was replaced without a precondition (its
 * successor may have been based on an older object than the one it replaced).
 */
const META_BASED_ON = "based-on";
const LINEAGE_LENGTH = 16;
const NO_OBJECT = "-";
const UNCONDITIONAL = "~";
const DELETE_BATCH = 1000;
/** Text XML 1.0 can carry (its Char production): what a key must be to go in a DeleteObjects body. */
const XML_TEXT = /^[\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]*$/u;
/** S3's limit on an object key, in UTF-8 bytes. */
const MAX_KEY_BYTES = 1024;

const status = (e: unknown) => (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
const isNotFound = (e: unknown) => status(e) === 404 || ["NoSuchKey", "NotFound"].includes((e as Error)?.name);
/** 412, or AWS's 409 ConditionalRequestConflict for a condition racing another write. */
const isPreconditionFailed = (e: unknown) =>
  status(e) === 412 || status(e) === 409 || (e as Error)?.name === "PreconditionFailed";
/** 5xx after the SDK's own retries. */
const isServerError = (e: unknown) => (status(e) ?? 0) >= 500;
/** The SDK sent the request more than once: an earlier attempt may have landed. */
const wasRetried = (e: unknown) => ((e as { $metadata?: { attempts?: number } })?.$metadata?.attempts ?? 1) > 1;
/** How often a conditional PUT whose outcome was unclear, and that did not land, is sent again. */
const AMBIGUOUS_PUT_ATTEMPTS = 5;
/** How often DeleteObjects is sent again for the keys it reported as not deleted. */
const DELETE_ATTEMPTS = 5;
const unquote = (etag: string | undefined) => (etag ?? "").replace(/^(W\/)?"|"$/g, "");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A PUT whose answer was lost, and neither the object nor its lineage can tell whether it landed. */
class OutcomeUnknownError extends Error {
  constructor(readonly path: string) {
    super(`the outcome of the write of '${path}' is unknown`);
  }
}

/** The lineage of a new object based on `parent` (null: there was no object). */
function lineageOf(parent: Lineage | null, conditional: boolean): string {
  const mark = conditional ? "" : UNCONDITIONAL;
  if (parent === null) return mark + NO_OBJECT;
  // A foreign object (no write id) ends the chain: "?" matches no write id.
  const older = parent.writeId && parent.basedOn ? parent.basedOn.split(",") : [];
  return [mark + (parent.writeId ?? "?"), ...older].slice(0, LINEAGE_LENGTH).join(",");
}

export class S3Backend implements BackendProtocolV2 {
  readonly bucket: string;
  readonly prefix: string;
  readonly workspace: string;
  readonly #shared: Shared;
  /** Keys of this workspace start with `${root}/`. */
  readonly #root: string;

  constructor(config: S3BackendConfig);
  /** @internal withWorkspace() */
  constructor(config: S3BackendConfig, shared: Shared, workspace: string);
  constructor(config: S3BackendConfig, shared?: Shared, workspace?: string) {
    if (!config?.bucket) throw new Error("S3Backend needs a bucket");
    this.bucket = config.bucket;
    this.prefix = normalizePrefix(config.prefix);
    this.workspace = validateWorkspace(workspace ?? config.workspace ?? S3_DEFAULTS.workspace);
    // A "/" would make one workspace a sub-directory of another; "." and ".." are dot segments
    // that HTTP clients and S3-compatible servers may resolve (test/../x is stored as x).
    if (this.workspace.includes("/"))
      throw new Error(`Invalid workspace name ${JSON.stringify(this.workspace)}: '/' is not allowed on S3`);
    if (this.workspace === "." || this.workspace === "..") {
      throw new Error(
        `Invalid workspace name ${JSON.stringify(this.workspace)}: '.' and '..' are not allowed on S3 (they would resolve outside the prefix)`,
      );
    }
    this.#root = this.prefix ? `${this.prefix}/${this.workspace}` : this.workspace;
    this.#shared = shared ?? {
      client: config.client ?? createS3Client(config),
      ownsClient: !config.client,
      config,
      cache: new TextCache(config.cacheBytes ?? S3_DEFAULTS.cacheBytes),
      capabilities: config.capabilities,
    };
  }

  /** What the endpoint enforces; known after initialize() (or the first operation). */
  get capabilities(): S3Capabilities | undefined {
    return this.#shared.capabilities;
  }

  get client(): S3Client {
    return this.#shared.client;
  }

  withWorkspace(name: string): S3Backend {
    return new S3Backend(this.#shared.config, this.#shared, name);
  }

  /** Checks the bucket is reachable and probes once whether the endpoint enforces preconditions. */
  initialize(): Promise<void> {
    const shared = this.#shared;
    shared.initialized ??= this.#initialize().catch((e) => {
      shared.initialized = undefined;
      throw e;
    });
    return shared.initialized;
  }

  async #initialize(): Promise<void> {
    try {
      await this.#shared.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (e) {
      const code = status(e);
      const why =
        code === 404 ? "it does not exist" : code === 403 ? "access denied" : (e as Error).message || (e as Error).name;
      throw new Error(`S3 bucket "${this.bucket}" is not usable: ${why}`);
    }
    this.#shared.capabilities ??= await this.#probe();
  }

  /**
   * Create-only twice (the second must fail with 412), then If-Match with the quoted and the
   * unquoted ETag (one must pass) and with a wrong one (must fail). Uses one throwaway key.
   */
  async #probe(): Promise<S3Capabilities> {
    const key = `${this.prefix ? this.prefix + "/" : ""}.deepagents-backends-probe/${randomUUID()}`;
    const put = async (conditions: { IfMatch?: string; IfNoneMatch?: string }) => {
      try {
        const r = await this.#shared.client.send(
          new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: "probe", ...conditions }),
        );
        return unquote(r.ETag);
      } catch (e) {
        if (isPreconditionFailed(e) || isNotFound(e)) return null;
        throw e;
      }
    };
    try {
      const etag = await put({ IfNoneMatch: "*" });
      const createOnlyEnforced = (await put({ IfNoneMatch: "*" })) === null;
      let etagQuoting: S3Capabilities["etagQuoting"] = "quoted";
      if (etag && (await put({ IfMatch: `"${etag}"` })) === null && (await put({ IfMatch: etag })) !== null)
        etagQuoting = "unquoted";
      const wrongRejected = (await put({ IfMatch: etagQuoting === "quoted" ? '"0000"' : "0000" })) === null;
      return { conditionalWrites: createOnlyEnforced && wrongRejected, etagQuoting };
    } finally {
      await this.#shared.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })).catch(() => {});
    }
  }

  /** Destroys the S3 client if this backend created it. */
  async close(): Promise<void> {
    if (this.#shared.ownsClient) this.#shared.client.destroy();
  }

  // ---- object primitives -------------------------------------------------------------------

  /** The object key of a normalised path; refused when prefix + workspace + path exceed S3's limit. */
  #key(path: string): string {
    const key = this.#root + path;
    const bytes = Buffer.byteLength(key, "utf8");
    if (bytes > MAX_KEY_BYTES) {
      throw new PathError(
        path,
        `with the prefix and workspace its S3 key would be ${bytes} bytes (S3 allows ${MAX_KEY_BYTES})`,
      );
    }
    return key;
  }

  #path(key: string): string {
    return key.slice(this.#root.length);
  }

  #ifMatch(etag: string): string {
    return this.#shared.capabilities?.etagQuoting === "unquoted" ? etag : `"${etag}"`;
  }

  async #ready(): Promise<void> {
    await this.initialize();
  }

  /** Every object under `prefix` (all pages); with a delimiter, also the common prefixes. */
  async #list(prefix: string, delimiter?: string): Promise<{ objects: Listed[]; prefixes: string[] }> {
    const objects: Listed[] = [];
    const prefixes = new Set<string>(); // a set: a common prefix may span pages
    let token: string | undefined;
    do {
      const page = await this.#shared.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: prefix,
          Delimiter: delimiter,
          ContinuationToken: token,
        }),
      );
      for (const o of page.Contents ?? []) {
        if (!o.Key || o.Key.endsWith("/")) continue; // "directory marker" objects are not files
        objects.push({
          key: o.Key,
          path: this.#path(o.Key),
          size: o.Size ?? 0,
          etag: unquote(o.ETag),
          modified: o.LastModified ?? new Date(0),
        });
      }
      for (const p of page.CommonPrefixes ?? []) if (p.Prefix) prefixes.add(p.Prefix);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return { objects, prefixes: [...prefixes] };
  }

  async #head(
    key: string,
  ): Promise<(Listed & Lineage & { contentType: string; createdAt?: string; lines?: number }) | null> {
    try {
      const h = await this.#shared.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      const lines = h.Metadata?.[META_LINES];
      return {
        key,
        path: this.#path(key),
        size: h.ContentLength ?? 0,
        etag: unquote(h.ETag),
        modified: h.LastModified ?? new Date(0),
        contentType: (h.ContentType ?? getMimeType(key)).split(";")[0].trim(),
        createdAt: h.Metadata?.[META_CREATED],
        lines: lines === undefined ? undefined : Number(lines),
        writeId: h.Metadata?.[META_WRITE_ID],
        basedOn: h.Metadata?.[META_BASED_ON],
      };
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  /** The object's bytes, or null when missing; refuses objects above maxReadBytes unread. */
  async #get(key: string, displayPath: string): Promise<Fetched | null> {
    const limit = this.#shared.config.maxReadBytes ?? S3_DEFAULTS.maxReadBytes;
    const fetched = await this.#fetch(key, (length) => {
      if (length > limit) throw new ContentError(errors.tooLargeToRead(displayPath, length, limit));
    });
    if (!fetched) return null;
    const { response, bytes } = fetched;
    return {
      bytes,
      etag: unquote(response.ETag),
      modified: response.LastModified ?? new Date(),
      createdAt: response.Metadata?.[META_CREATED],
      writeId: response.Metadata?.[META_WRITE_ID],
      basedOn: response.Metadata?.[META_BASED_ON],
    };
  }

  /**
   * The object as the agent sees it, decided like an upload (content.ts) so foreign objects with
   * a generic Content-Type behave too: a text type by extension and valid UTF-8 without NUL is
   * text; anything else is bytes (application/octet-stream under a text extension).
   */
  static #view(path: string, object: Fetched): FileBody {
    return bodyForUpload(path, object.bytes, Number.POSITIVE_INFINITY);
  }

  /**
   * PutObject with optional conditions; null when a precondition failed. Returns the new ETag.
   * `parent` is the object the write is based on (null: none existed), `path` names it in errors.
   *
   * A conditional PUT can end without telling whether it landed: Ceph RGW answers 500 (ECANCELED)
   * when two conditional writes of one object race inside RADOS, and once the SDK has retried a
   * request, a 412 may be our own earlier attempt having landed. Every PUT carries a fresh write id
   * and the write ids it descends from (META_BASED_ON), so a HEAD settles it (#settle).
   * (Equal bytes would not do: two increments of a counter write the same bytes.)
   */
  async #put(
    key: string,
    path: string,
    body: FileBody,
    createdAt: string,
    parent: Lineage | null,
    conditions: { IfMatch?: string; IfNoneMatch?: string } = {},
  ): Promise<string | null> {
    const bytes = body.bytes ?? Buffer.from(body.text!, "utf8");
    const enforced = this.#shared.capabilities?.conditionalWrites ? conditions : {};
    const conditional = enforced.IfMatch !== undefined || enforced.IfNoneMatch !== undefined;
    const writeId = randomUUID();
    const metadata: Record<string, string> = {
      [META_CREATED]: createdAt,
      [META_WRITE_ID]: writeId,
      [META_BASED_ON]: lineageOf(parent, conditional),
    };
    if (body.text !== null) metadata[META_LINES] = String(lineCount(body.text));
    for (let attempt = 1; ; attempt++) {
      try {
        const r = await this.#shared.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: key,
            Body: bytes,
            ContentLength: bytes.length,
            ContentType: body.mimeType,
            Metadata: metadata,
            ...enforced,
          }),
        );
        this.#shared.cache.delete(key);
        return unquote(r.ETag);
      } catch (e) {
        const refused = isPreconditionFailed(e) || (conditions.IfMatch !== undefined && isNotFound(e));
        const ambiguous = conditional && (isServerError(e) || (refused && wasRetried(e)));
        if (!ambiguous) {
          if (refused) return null;
          throw e;
        }
        this.#shared.cache.delete(key);
        const current = await this.#head(key);
        const outcome = S3Backend.#settle(current, writeId, parent === null ? NO_OBJECT : parent.writeId, enforced);
        if (outcome === "landed") return current!.etag;
        // Ours landed and was replaced since: the ETag it had (S3's ETag of a single PUT is the MD5
        // of its bytes). As an ifVersion it is refused now, as any replaced version is.
        if (outcome === "replaced") return createHash("md5").update(bytes).digest("hex");
        if (outcome === "lost") return null;
        if (outcome === "unknown") throw new OutcomeUnknownError(path);
        if (attempt >= AMBIGUOUS_PUT_ATTEMPTS) throw e;
        await sleep(Math.random() * 10 * 2 ** attempt);
      }
    }
  }

  /**
   * Did our PUT (write id `writeId`, based on the object with write id `parentId`, NO_OBJECT for
   * none) land? Read from the object there now:
   * - "landed": it is ours;
   * - "replaced": it descends from ours (our id in its lineage: whoever wrote it had read ours);
   * - "retry": the condition still holds (nothing replaced the parent), so ours did not land;
   * - "lost": it descends from our parent through conditional writes only, and ours is not on that
   *   line: another writer replaced the parent, ours did not land (same as a 412);
   * - "unknown": neither (deleted and re-created, replaced more than LINEAGE_LENGTH times, written
   *   unconditionally or by another tool since): never guessed, since guessing "lost" would apply
   *   an edit twice and guessing "landed" would lose one.
   */
  static #settle(
    current: (Lineage & { etag: string }) | null,
    writeId: string,
    parentId: string | undefined,
    enforced: { IfMatch?: string; IfNoneMatch?: string },
  ): "landed" | "replaced" | "retry" | "lost" | "unknown" {
    if (current?.writeId === writeId) return "landed";
    const lineage = current?.basedOn?.split(",") ?? [];
    const ids = lineage.map((entry) => entry.replace(UNCONDITIONAL, ""));
    if (ids.includes(writeId)) return "replaced";
    if (enforced.IfNoneMatch ? current === null : current?.etag === unquote(enforced.IfMatch)) return "retry";
    const at = parentId === undefined ? -1 : ids.indexOf(parentId);
    if (at >= 0 && lineage.slice(0, at + 1).every((entry) => !entry.startsWith(UNCONDITIONAL))) return "lost";
    return "unknown";
  }

  #failure(operation: string, e: unknown): string {
    const expected = inputFailure(e);
    if (expected) return expected;
    if (e instanceof OutcomeUnknownError) return errors.outcomeUnknown(operation, e.path);
    const err = e as Error & { $metadata?: { httpStatusCode?: number } };
    const detail =
      err?.message && err.message !== "UnknownError"
        ? err.message
        : `${err?.name ?? "error"} (HTTP ${status(e) ?? "?"})`;
    return errors.storage(operation, detail);
  }

  // ---- protocol ----------------------------------------------------------------------------

  async ls(path: string): Promise<LsResult> {
    try {
      const dir = dirPrefix(normalizePath(path, { emptyIsRoot: true }).path);
      await this.#ready();
      const { objects, prefixes } = await this.#list(this.#key(dir), "/");
      const files: FileInfo[] = [
        ...objects.map((o) => ({ path: o.path, is_dir: false, size: o.size, modified_at: o.modified.toISOString() })),
        ...prefixes.map((p) => ({ path: this.#path(p), is_dir: true, size: 0, modified_at: "" })),
      ];
      files.sort((a, b) => a.path.localeCompare(b.path));
      return { files };
    } catch (e) {
      return { error: this.#failure("ls", e) };
    }
  }

  async read(filePath: string, offset: number = 0, limit: number = 500): Promise<ReadResult> {
    try {
      const path = normalizeFilePath(filePath);
      const window = readPagination(offset, limit);
      await this.#ready();
      const object = await this.#get(this.#key(path), filePath);
      if (!object) return { error: errors.readNotFound(filePath) };
      const view = S3Backend.#view(path, object);
      if (view.text === null) return { content: toBytes(object.bytes), mimeType: view.mimeType };
      return textReadResult(
        view.mimeType,
        lineCount(view.text),
        window.offset,
        window.limit,
        lineWindow(view.text, window.offset, window.limit),
      );
    } catch (e) {
      return { error: this.#failure("read", e) };
    }
  }

  async readRaw(filePath: string): Promise<ReadRawResult> {
    try {
      const path = normalizeFilePath(filePath);
      await this.#ready();
      const object = await this.#get(this.#key(path), filePath);
      if (!object) return { error: errors.readNotFound(filePath) };
      const view = S3Backend.#view(path, object);
      return {
        data: {
          content: view.text ?? toBytes(object.bytes),
          mimeType: view.mimeType,
          created_at: object.createdAt ?? object.modified.toISOString(),
          modified_at: object.modified.toISOString(),
        },
      };
    } catch (e) {
      return { error: this.#failure("readRaw", e) };
    }
  }

  /** Metadata without content; `version` is the ETag, `lines` null for objects we did not write. */
  async stat(filePath: string): Promise<StatResult<string>> {
    try {
      const path = normalizeFilePath(filePath);
      await this.#ready();
      const head = await this.#head(this.#key(path));
      if (!head) return { error: errors.readNotFound(filePath) };
      const mimeType = head.contentType;
      return {
        data: {
          path,
          mimeType,
          isBinary: !isTextMimeType(mimeType),
          size: head.size,
          lines: head.lines ?? null,
          version: head.etag,
          created_at: head.createdAt ?? head.modified.toISOString(),
          modified_at: head.modified.toISOString(),
        },
      };
    } catch (e) {
      return { error: this.#failure("stat", e) };
    }
  }

  async write(
    filePath: string,
    content: string,
    options: S3WriteOptions = {},
  ): Promise<WriteResult & { version?: string }> {
    try {
      const path = normalizeFilePath(filePath);
      const body = bodyForWrite(filePath, path, content, this.#maxFileBytes);
      const ifVersion = options.ifVersion;
      await this.#ready();
      const key = this.#key(path);
      // The object keeps created_at and is the parent of the new one; the version is checked when asked.
      const [existing, clash] = await Promise.all([this.#head(key), this.#clash(path)]);
      if (clash)
        return {
          error: clash === "directory" ? errors.isDirectory(filePath) : errors.parentIsFile(filePath, clash.file),
        };
      if (ifVersion !== undefined && (ifVersion === 0 ? existing !== null : existing?.etag !== ifVersion)) {
        return { error: errors.versionMismatch(filePath, ifVersion, existing?.etag ?? null) };
      }
      const conditions =
        ifVersion === undefined ? {} : ifVersion === 0 ? { IfNoneMatch: "*" } : { IfMatch: this.#ifMatch(ifVersion) };
      const etag = await this.#put(
        key,
        filePath,
        body,
        existing?.createdAt ?? new Date().toISOString(),
        existing,
        conditions,
      );
      if (etag === null)
        return { error: errors.versionMismatch(filePath, ifVersion!, (await this.#head(key))?.etag ?? null) };
      return { path: filePath, filesUpdate: null, version: etag };
    } catch (e) {
      return { error: this.#failure("write", e) };
    }
  }

  /**
   * GET (ETag) → replace → PUT If-Match; a lost race re-reads and re-applies, up to
   * maxEditAttempts, so concurrent edits of different strings all land.
   */
  async edit(
    filePath: string,
    oldString: string,
    newString: string,
    replaceAll: boolean = false,
    options: S3WriteOptions = {},
  ): Promise<EditResult & { version?: string }> {
    try {
      const path = normalizeFilePath(filePath);
      checkEditStrings(filePath, oldString, newString);
      await this.#ready();
      const key = this.#key(path);
      const attempts = this.#shared.config.maxEditAttempts ?? S3_DEFAULTS.maxEditAttempts;
      for (let attempt = 1; attempt <= attempts; attempt++) {
        const object = await this.#get(key, filePath);
        if (!object) return { error: errors.notFound(filePath) };
        if (options.ifVersion !== undefined && options.ifVersion !== object.etag) {
          return { error: errors.versionMismatch(filePath, options.ifVersion, object.etag) };
        }
        const view = S3Backend.#view(path, object);
        if (view.text === null) return { error: editFailure("binary", filePath, oldString) };
        const result = replaceText(view.text, oldString, newString, replaceAll === true);
        if (result.status !== "ok") {
          return {
            error: editFailure(result.status, filePath, oldString, "occurrences" in result ? result.occurrences : 0),
          };
        }
        const size = Buffer.byteLength(result.content, "utf8");
        if (size > this.#maxFileBytes) return { error: errors.tooLarge(filePath, size, this.#maxFileBytes) };
        const body: FileBody = { mimeType: view.mimeType, text: result.content, bytes: null, size };
        const etag = await this.#put(key, filePath, body, object.createdAt ?? object.modified.toISOString(), object, {
          IfMatch: this.#ifMatch(object.etag),
        });
        if (etag !== null) return { path: filePath, filesUpdate: null, occurrences: result.occurrences, version: etag };
        if (options.ifVersion !== undefined) {
          return { error: errors.versionMismatch(filePath, options.ifVersion, (await this.#head(key))?.etag ?? null) };
        }
        await sleep(Math.random() * Math.min(200, 5 * 2 ** Math.min(attempt, 6))); // jittered backoff
      }
      return { error: errors.editConflict(filePath, attempts) };
    } catch (e) {
      return { error: this.#failure("edit", e) };
    }
  }

  /** Recursive: the object and everything under `path/`, in DeleteObjects batches of 1000. */
  async delete(filePath: string): Promise<DeleteResult> {
    try {
      const { path } = normalizePath(filePath);
      await this.#ready();
      const [under, exact] = await Promise.all([
        this.#list(this.#key(dirPrefix(path))),
        path === "/" ? null : this.#head(this.#key(path)),
      ]);
      const all = [...(exact ? [exact.key] : []), ...under.objects.map((o) => o.key)];
      if (all.length === 0) return { error: errors.notFound(filePath) };
      // DeleteObjects' body is XML: a key with a character XML 1.0 cannot carry (U+FFFE, U+0001,
      // ... stored by another tool or an older version) would fail the whole batch with HTTP 400,
      // every time. Those go one by one with DeleteObject (the key travels in the URL).
      const keys = all.filter((k) => XML_TEXT.test(k));
      await mapLimit(
        all.filter((k) => !XML_TEXT.test(k)),
        this.#concurrency,
        async (Key) => {
          await this.#shared.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }));
          this.#shared.cache.delete(Key);
        },
      );
      for (let i = 0; i < keys.length; i += DELETE_BATCH) {
        let batch = keys.slice(i, i + DELETE_BATCH);
        // Per-key errors are sent again a few times: Ceph RGW fails the delete of a key that a
        // PUT is writing at that moment (UnknownError, its ECANCELED race).
        for (let attempt = 1; ; attempt++) {
          const r = await this.#shared.client.send(
            new DeleteObjectsCommand({
              Bucket: this.bucket,
              Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
            }),
          );
          for (const k of batch) this.#shared.cache.delete(k);
          if (!r.Errors?.length) break;
          if (attempt >= DELETE_ATTEMPTS) {
            throw new Error(
              `${r.Errors.length} of ${batch.length} objects could not be deleted (first: ${r.Errors[0].Key}: ${r.Errors[0].Code})`,
            );
          }
          const failed = new Set(r.Errors.map((e) => e.Key));
          batch = batch.filter((k) => failed.has(k));
          await sleep(Math.random() * 10 * 2 ** attempt);
        }
      }
      return { path: filePath, filesUpdate: null };
    } catch (e) {
      return { error: this.#failure("delete", e) };
    }
  }

  /** Candidates of grep/glob: exactly `path` when it names an object, else its subtree. */
  async #scope(
    path: string,
    trailingSlash: boolean,
    listPrefix: string,
  ): Promise<{ objects: Listed[]; exact: boolean; dir: string }> {
    const dir = dirPrefix(path);
    const [exact, under] = await Promise.all([
      path === "/" || trailingSlash ? null : this.#head(this.#key(path)),
      this.#list(this.#key(dir) + listPrefix),
    ]);
    if (exact) return { objects: [exact], exact: true, dir };
    return { objects: under.objects, exact: false, dir };
  }

  /** Literal search: list, then fetch texts (ETag cache first) in path order, `grepConcurrency` at a time. */
  async grep(
    pattern: string,
    path: string | null = "/",
    glob: string | null = null,
    maxCount: number | null = null,
  ): Promise<GrepResult> {
    if (typeof pattern !== "string") return { error: "Error: grep pattern must be a string" };
    // Stored text is valid UTF-8 without NUL: such a pattern cannot occur in it.
    return this.#search("grep", isStorableText(pattern) ? containsLiteral(pattern) : null, path, glob, maxCount);
  }

  /**
   * grep beyond the protocol: a regular expression of regex.ts's language (JavaScript's, `u`
   * flag) and/or case-insensitive matching,
   * evaluated here in the client as the objects stream in (S3 cannot search server-side).
   */
  async search(options: SearchOptions & { timeoutMs?: number }): Promise<SearchResult> {
    const { pattern, regex = false, ignoreCase = false } = options;
    if (typeof pattern !== "string") return { error: "Error: search pattern must be a string" };
    let test: LineTest | null;
    if (regex) {
      try {
        // regex.ts's language, with the same refusals as on PostgreSQL.
        test = compileLineTest(pattern, ignoreCase === true);
      } catch (e) {
        if (e instanceof RegexError) return { error: errors.invalidRegex(pattern, e.reason) };
        throw e;
      }
    } else if (ignoreCase) {
      const folded = pattern.toLowerCase();
      test = (line) => line.toLowerCase().includes(folded);
    } else {
      test = isStorableText(pattern) ? containsLiteral(pattern) : null;
    }
    return this.#search("search", test, options.path ?? "/", options.glob ?? null, options.maxCount ?? null, {
      timeoutMs: options.timeoutMs,
      boundTest: regex,
    });
  }

  /**
   * Glob filtering and (for regular expressions) line matching run under a deadline
   * (bounded.ts): a catastrophically backtracking pattern returns an error instead of blocking
   * the process. Literal tests are linear and run unbounded.
   */
  async #search(
    operation: string,
    test: LineTest | null,
    path: string | null,
    glob: string | null,
    maxCount: number | null,
    { timeoutMs, boundTest = false }: { timeoutMs?: number; boundTest?: boolean } = {},
  ): Promise<GrepResult> {
    let deadline: Deadline;
    try {
      deadline = new Deadline(searchBudgetMs(timeoutMs, this.#searchTimeoutMs));
    } catch (e) {
      return { error: inputFailure(e) ?? String(e) };
    }
    try {
      const scope = normalizePath(path ?? "/", { emptyIsRoot: true });
      const filter = glob ? S3Backend.#matcher(compileGlob(glob)) : null;
      const cap = grepLimit(maxCount);
      if (test === null) return { matches: [] };
      await this.#ready();
      const { objects, exact, dir } = await this.#scope(scope.path, scope.trailingSlash, "");
      const onBasename = exact || (glob !== null && matchesBasename(glob));
      const candidates = deadline.run(() =>
        objects.filter((o) => {
          if (!isTextMimeType(getMimeType(o.path))) return false;
          if (!filter) return true;
          return filter(onBasename ? basename(o.path) : o.path.slice(dir.length));
        }),
      );
      const matches: GrepMatch[] = [];
      await orderedPipeline(
        candidates,
        this.#concurrency,
        (o) => this.#cachedText(o),
        (text, o) => {
          if (text !== null) {
            const found = boundTest ? deadline.run(() => matchingLines(text, test)) : matchingLines(text, test);
            for (const m of found) matches.push({ path: o.path, ...m });
          }
          return cap === null || matches.length <= cap;
        },
      );
      if (cap !== null && matches.length > cap) return { matches: matches.slice(0, cap), truncated: true };
      return { matches };
    } catch (e) {
      if (e instanceof MatchTimeoutError) return { error: errors.searchTimeout(deadline.timeoutMs) };
      return { error: this.#failure(operation, e) };
    }
  }

  /**
   * micromatch's test for a compiled glob (dot: true, braces): the path equal to the pattern, or
   * its regular expression. Compiled once per call, not once per candidate.
   */
  static #matcher(compiled: CompiledGlob): (subject: string) => boolean {
    const re = new RegExp(compiled.regex);
    return (subject) => subject === compiled.pattern || re.test(subject);
  }

  async #cachedText(o: Listed): Promise<string | null> {
    const cached = this.#shared.cache.get(o.key, o.etag);
    if (cached !== undefined) return cached;
    const object = await this.#get(o.key, o.path);
    if (!object) return null; // deleted since the listing
    const { text } = S3Backend.#view(o.path, object);
    if (text !== null) this.#shared.cache.set(o.key, object.etag, text, object.bytes.length);
    return text;
  }

  /** Lists only the glob's literal leading directory; newest first. */
  async glob(pattern: string, path: string = "/"): Promise<GlobResult> {
    try {
      const absolute = typeof pattern === "string" && pattern.startsWith("/");
      const glob = absolute ? pattern.replace(/^\/+/, "") : pattern;
      const compiled = compileGlob(glob);
      const scope = absolute ? { path: "/", trailingSlash: true } : normalizePath(path, { emptyIsRoot: true });
      await this.#ready();
      const { objects, exact, dir } = await this.#scope(scope.path, scope.trailingSlash, compiled.base);
      const matches = S3Backend.#matcher(compiled);
      const deadline = new Deadline(this.#searchTimeoutMs);
      let found: Listed[];
      try {
        found = deadline.run(() => objects.filter((o) => matches(exact ? basename(o.path) : o.path.slice(dir.length))));
      } catch (e) {
        if (e instanceof MatchTimeoutError) return { error: errors.globTimeout(pattern, deadline.timeoutMs) };
        throw e;
      }
      const files: FileInfo[] = found
        .sort((a, b) => b.modified.getTime() - a.modified.getTime() || (a.path < b.path ? -1 : 1))
        .map((o) => ({ path: o.path, is_dir: false, size: o.size, modified_at: o.modified.toISOString() }));
      return { files };
    } catch (e) {
      return { error: this.#failure("glob", e) };
    }
  }

  /**
   * Byte-exact, per-file results in input order; a path given twice is written once (last wins).
   * An overwritten file keeps its created_at (a HEAD per file). A file below another file of the
   * store or of this batch is "invalid_path", one that names a directory "is_directory" (within
   * the batch, the later of the two in input order is the one refused).
   */
  async uploadFiles(files: Array<[string, Uint8Array]>): Promise<FileUploadResponse[]> {
    await this.#ready();
    const responses: FileUploadResponse[] = [];
    const batch = new Map<string, { body: FileBody; indices: number[] }>();
    for (const [input, bytes] of files) {
      try {
        const path = normalizeFilePath(input);
        this.#key(path); // a key S3 would refuse is this file's invalid_path, not the batch's failure
        const body = bodyForUpload(path, bytes, this.#maxFileBytes);
        responses.push({ path: input, error: null });
        batch.set(path, { body, indices: [...(batch.get(path)?.indices ?? []), responses.length - 1] });
      } catch (e) {
        responses.push({ path: input, error: fileErrorCode(e) });
      }
    }
    for (const [path, clash] of batchClashes(batch.keys())) {
      for (const i of batch.get(path)!.indices) responses[i].error = clash.code;
      batch.delete(path);
    }
    const now = new Date().toISOString();
    await mapLimit([...batch], this.#concurrency, async ([path, { body, indices }]) => {
      const key = this.#key(path);
      const [existing, clash] = await Promise.all([this.#head(key), this.#clash(path)]);
      if (clash) {
        for (const i of indices)
          responses[i] = { path: responses[i].path, error: clash === "directory" ? "is_directory" : "invalid_path" };
        return;
      }
      await this.#put(key, path, body, existing?.createdAt ?? now, existing);
    });
    return responses;
  }

  /**
   * A name is a file or a directory, never both: `path` may not lie below an existing file (a HEAD
   * of each ancestor) nor name a directory (a one-key listing of `path/`). Checked before the PUT,
   * not atomically with it: S3 has no condition over several keys (README).
   */
  async #clash(path: string): Promise<{ file: string } | "directory" | null> {
    const ancestors = ancestorsOf(path);
    const [heads, below] = await Promise.all([
      Promise.all(ancestors.map((a) => this.#head(this.#key(a)))),
      this.#shared.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.#key(path) + "/", MaxKeys: 1 }),
      ),
    ]);
    const file = ancestors.find((_, i) => heads[i] !== null);
    if (file !== undefined) return { file };
    return below.KeyCount || below.Contents?.length ? "directory" : null;
  }

  async downloadFiles(paths: string[]): Promise<FileDownloadResponse[]> {
    await this.#ready();
    return mapLimit(paths, this.#concurrency, async (input): Promise<FileDownloadResponse> => {
      let key: string;
      try {
        key = this.#key(normalizeFilePath(input));
      } catch (e) {
        return { path: input, content: null, error: fileErrorCode(e) };
      }
      const object = await this.#getAnySize(key);
      if (object) return { path: input, content: toBytes(object), error: null };
      const children = await this.#shared.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: key + "/", MaxKeys: 1 }),
      );
      return { path: input, content: null, error: children.KeyCount ? "is_directory" : "file_not_found" };
    });
  }

  /** Downloads are byte transfers, not reads for the model: no maxReadBytes limit. */
  async #getAnySize(key: string): Promise<Buffer | null> {
    return (await this.#fetch(key, () => {}))?.bytes ?? null;
  }

  /**
   * GetObject and its whole body; null when missing. `check` sees the length before the body is
   * read (and may throw to refuse it). The SDK retries the request, not a body cut off halfway
   * (a connection reset mid-transfer): that is retried here, once, from the start.
   */
  async #fetch(
    key: string,
    check: (length: number) => void,
  ): Promise<{ response: GetObjectCommandOutput; bytes: Buffer } | null> {
    for (let attempt = 1; ; attempt++) {
      let response: GetObjectCommandOutput;
      try {
        response = await this.#shared.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      } catch (e) {
        if (isNotFound(e)) return null;
        throw e;
      }
      try {
        check(response.ContentLength ?? 0);
      } catch (e) {
        (response.Body as Readable | undefined)?.destroy?.();
        throw e;
      }
      try {
        return { response, bytes: Buffer.from(await response.Body!.transformToByteArray()) };
      } catch (e) {
        if (attempt >= 2) throw e;
      }
    }
  }

  get #maxFileBytes(): number {
    return this.#shared.config.maxFileBytes ?? S3_DEFAULTS.maxFileBytes;
  }

  get #searchTimeoutMs(): number {
    return this.#shared.config.searchTimeoutMs ?? S3_DEFAULTS.searchTimeoutMs;
  }

  get #concurrency(): number {
    return this.#shared.config.grepConcurrency ?? S3_DEFAULTS.grepConcurrency;
  }
}
