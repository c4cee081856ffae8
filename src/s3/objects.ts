/**
 * The objects of one workspace: a file at `path` is the object `<prefix>/<workspace><path>`.
 * List, HEAD, GET, conditional PUT (settled without guessing when its answer is lost), batched
 * delete and the capability probe; the protocol methods (backend.ts) and search (search.ts) are
 * built from these.
 */
import { createHash, randomUUID } from "node:crypto";
import type { Readable } from "node:stream";
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { mapLimit } from "../concurrency.js";
import { bodyForUpload, ContentError, type FileBody } from "../content.js";
import { getMimeType } from "../mime.js";
import { ancestorsOf, PathError } from "../paths.js";
import { errors } from "../protocol.js";
import { lineCount, lineWindow } from "../text.js";
import type { FileWindow } from "../core/backend.js";
import type { S3Capabilities } from "./config.js";
import { isNotFound, isPreconditionFailed, isServerError, OutcomeUnknownError, wasRetried } from "./errors.js";
import {
  type Lineage,
  lineageOf,
  META_BASED_ON,
  META_CREATED,
  META_LINES,
  META_WRITE_ID,
  NO_OBJECT,
  settle,
  unquote,
} from "./lineage.js";
import type { TextCache } from "./text-cache.js";

/** The content type of a directory marker (as s3fs and the AWS console write them). */
const DIRECTORY_CONTENT_TYPE = "application/x-directory";

export interface Listed {
  key: string;
  path: string;
  size: number;
  etag: string;
  modified: Date;
}

export interface Head extends Listed, Lineage {
  contentType: string;
  createdAt?: string;
  lines?: number;
}

export interface Fetched extends Lineage {
  bytes: Buffer;
  etag: string;
  modified: Date;
  createdAt: string | undefined;
}

export type Conditions = { IfMatch?: string; IfNoneMatch?: string };

/** What every workspace view of one backend shares. */
export interface ObjectShared {
  readonly client: S3Client;
  readonly bucket: string;
  readonly cache: TextCache;
  readonly maxReadBytes: number;
  readonly concurrency: number;
  capabilities?: S3Capabilities;
}

/**
 * CopyObject's source: bucket and URL-encoded key (each segment encoded, the slashes kept: S3
 * decodes either form, s3rver only this one), and the version when one is named.
 */
export const copySource = (bucket: string, key: string, versionId?: string) =>
  `${bucket}/${key.split("/").map(encodeURIComponent).join("/")}${versionId ? `?versionId=${encodeURIComponent(versionId)}` : ""}`;

const DELETE_BATCH = 1000;
/** How often DeleteObjects is sent again for the keys it reported as not deleted. */
const DELETE_ATTEMPTS = 5;
/** How often a conditional PUT whose outcome was unclear, and that did not land, is sent again. */
const AMBIGUOUS_PUT_ATTEMPTS = 5;
/** Text XML 1.0 can carry (its Char production): what a key must be to go in a DeleteObjects body. */
const XML_TEXT = /^[\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]*$/u;
/** S3's limit on an object key, in UTF-8 bytes. */
const MAX_KEY_BYTES = 1024;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The object as the agent sees it, decided like an upload (content.ts) so foreign objects with
 * a generic Content-Type behave too: a text type by extension and valid UTF-8 without NUL is
 * text; anything else is bytes (application/octet-stream under a text extension).
 */
export function viewOf(path: string, object: { bytes: Buffer }): FileBody {
  return bodyForUpload(path, object.bytes, Number.POSITIVE_INFINITY);
}

/** read()'s window of an object's bytes (text: the lines asked for; binary: the bytes). */
export function fileWindowOf(path: string, bytes: Buffer, window: { offset: number; limit: number }): FileWindow {
  const view = viewOf(path, { bytes });
  if (view.text === null) return { mimeType: view.mimeType, bytes };
  return {
    mimeType: view.mimeType,
    totalLines: lineCount(view.text),
    window: lineWindow(view.text, window.offset, window.limit),
  };
}

export class ObjectStore {
  /** `root` is the key prefix of the workspace: keys start with `${root}/`. */
  constructor(
    readonly shared: ObjectShared,
    readonly root: string,
  ) {}

  get #client(): S3Client {
    return this.shared.client;
  }

  get #bucket(): string {
    return this.shared.bucket;
  }

  /** The object key of a normalised path; refused when prefix + workspace + path exceed S3's limit. */
  key(path: string): string {
    const key = this.root + path;
    const bytes = Buffer.byteLength(key, "utf8");
    if (bytes > MAX_KEY_BYTES) {
      throw new PathError(
        path,
        `with the prefix and workspace its S3 key would be ${bytes} bytes (S3 allows ${MAX_KEY_BYTES})`,
      );
    }
    return key;
  }

  path(key: string): string {
    return key.slice(this.root.length);
  }

  /** An If-Match value as this endpoint wants it (Ceph RGW 16 compares unquoted ETags). */
  ifMatch(etag: string): string {
    return this.shared.capabilities?.etagQuoting === "unquoted" ? etag : `"${etag}"`;
  }

  /**
   * Every object under `prefix` (all pages); with a delimiter, also the common prefixes. Directory
   * markers (keys ending in "/", which mkdir makes) are not files: they come apart, as `markers`.
   */
  async list(
    prefix: string,
    delimiter?: string,
  ): Promise<{ objects: Listed[]; prefixes: string[]; markers: Listed[] }> {
    const objects: Listed[] = [];
    const markers: Listed[] = [];
    const prefixes = new Set<string>(); // a set: a common prefix may span pages
    let token: string | undefined;
    do {
      const page = await this.#client.send(
        new ListObjectsV2Command({
          Bucket: this.#bucket,
          Prefix: prefix,
          Delimiter: delimiter,
          ContinuationToken: token,
        }),
      );
      for (const o of page.Contents ?? []) {
        if (!o.Key) continue;
        const modified = o.LastModified ?? new Date(0);
        const listed = { key: o.Key, path: this.path(o.Key), size: o.Size ?? 0, etag: unquote(o.ETag), modified };
        (o.Key.endsWith("/") ? markers : objects).push(listed);
      }
      for (const p of page.CommonPrefixes ?? []) if (p.Prefix) prefixes.add(p.Prefix);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return { objects, prefixes: [...prefixes], markers };
  }

  /**
   * A directory that exists while empty: the marker object `<key of path>/`, empty, as the S3 consoles and
   * s3fs make one (a listing with a delimiter shows it as a common prefix). A PUT without
   * condition: writing it twice leaves one.
   */
  async putMarker(path: string): Promise<void> {
    await this.#client.send(
      new PutObjectCommand({
        Bucket: this.#bucket,
        Key: this.key(`${path}/`),
        Body: Buffer.alloc(0),
        ContentLength: 0,
        ContentType: DIRECTORY_CONTENT_TYPE,
      }),
    );
  }

  /** Whether any object lies under `key/`, a directory marker included (one-key listing). */
  async hasChildren(key: string): Promise<boolean> {
    const page = await this.#client.send(
      new ListObjectsV2Command({ Bucket: this.#bucket, Prefix: `${key}/`, MaxKeys: 1 }),
    );
    return Boolean(page.KeyCount || page.Contents?.length);
  }

  async head(key: string): Promise<Head | null> {
    try {
      const h = await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: key }));
      const lines = h.Metadata?.[META_LINES];
      return {
        key,
        path: this.path(key),
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
  async get(key: string, displayPath: string): Promise<Fetched | null> {
    const limit = this.shared.maxReadBytes;
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

  /** Downloads are byte transfers, not reads for the model: no maxReadBytes limit. */
  async getAnySize(key: string): Promise<Buffer | null> {
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
        response = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: key }));
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

  /**
   * PutObject with optional conditions; null when a precondition failed. Returns the new ETag.
   * `parent` is the object the write is based on (null: none existed), `path` names it in errors.
   *
   * A conditional PUT can end without telling whether it landed: Ceph RGW answers 500 (ECANCELED)
   * when two conditional writes of one object race inside RADOS, and once the SDK has retried a
   * request, a 412 may be our own earlier attempt having landed. The write id and lineage every
   * PUT carries let a HEAD settle it (lineage.ts).
   */
  async put(
    key: string,
    path: string,
    body: FileBody,
    createdAt: string,
    parent: Lineage | null,
    conditions: Conditions = {},
  ): Promise<string | null> {
    const bytes = body.bytes ?? Buffer.from(body.text!, "utf8");
    const enforced = this.shared.capabilities?.conditionalWrites ? conditions : {};
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
        const r = await this.#client.send(
          new PutObjectCommand({
            Bucket: this.#bucket,
            Key: key,
            Body: bytes,
            ContentLength: bytes.length,
            ContentType: body.mimeType,
            Metadata: metadata,
            ...enforced,
          }),
        );
        this.shared.cache.delete(key);
        return unquote(r.ETag);
      } catch (e) {
        const refused = isPreconditionFailed(e) || (conditions.IfMatch !== undefined && isNotFound(e));
        const ambiguous = conditional && (isServerError(e) || (refused && wasRetried(e)));
        if (!ambiguous) {
          if (refused) return null;
          throw e;
        }
        this.shared.cache.delete(key);
        const current = await this.head(key);
        const outcome = settle(current, writeId, parent === null ? NO_OBJECT : parent.writeId, enforced);
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
   * Deletes the keys, in DeleteObjects batches of 1000. DeleteObjects' body is XML: a key with a
   * character XML 1.0 cannot carry (U+FFFE, U+0001, ... stored by another tool or an older
   * version) would fail the whole batch with HTTP 400, every time. Those go one by one with
   * DeleteObject (the key travels in the URL).
   */
  async deleteKeys(all: string[]): Promise<void> {
    const keys = all.filter((k) => XML_TEXT.test(k));
    await mapLimit(
      all.filter((k) => !XML_TEXT.test(k)),
      this.shared.concurrency,
      async (Key) => {
        await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key }));
        this.shared.cache.delete(Key);
      },
    );
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      let batch = keys.slice(i, i + DELETE_BATCH);
      // Per-key errors are sent again a few times: Ceph RGW fails the delete of a key that a
      // PUT is writing at that moment (UnknownError, its ECANCELED race).
      for (let attempt = 1; ; attempt++) {
        const r = await this.#client.send(
          new DeleteObjectsCommand({
            Bucket: this.#bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
        );
        for (const k of batch) this.shared.cache.delete(k);
        if (!r.Errors?.length) break;
        if (attempt >= DELETE_ATTEMPTS) {
          const first = r.Errors[0];
          throw new Error(
            `${r.Errors.length} of ${batch.length} objects could not be deleted (first: ${first.Key}: ${first.Code})`,
          );
        }
        const failed = new Set(r.Errors.map((e) => e.Key));
        batch = batch.filter((k) => failed.has(k));
        await sleep(Math.random() * 10 * 2 ** attempt);
      }
    }
  }

  /**
   * A name is a file or a directory, never both: `path` may not lie below an existing file (a HEAD
   * of each ancestor) nor name a directory (a one-key listing of `path/`). Checked before the PUT,
   * not atomically with it: S3 has no condition over several keys (README).
   */
  async clash(path: string): Promise<{ file: string } | "directory" | null> {
    const ancestors = ancestorsOf(path);
    const [heads, below] = await Promise.all([
      Promise.all(ancestors.map((a) => this.head(this.key(a)))),
      this.hasChildren(this.key(path)),
    ]);
    const file = ancestors.find((_, i) => heads[i] !== null);
    if (file !== undefined) return { file };
    return below ? "directory" : null;
  }
}
