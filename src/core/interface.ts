/**
 * What every backend of this package offers: deepagents' BackendProtocolV2 with its optional
 * methods present, and the extensions beyond it (stat, ifVersion, search, watch where the store
 * can, features). The CLI and the test suites program against this, never against a union of
 * classes, so a new backend (GCS, Azure Blob, ...) plugs in by implementing it — in practice by
 * extending BackendCore (./backend.ts), which does everything that is not storage.
 */
import type {
  BackendProtocolV2,
  DeleteResult,
  EditResult,
  FileDownloadResponse,
  FileUploadResponse,
  GrepMatch,
  MkdirOptions,
  MkdirResult,
  RelocateOptions,
  RelocateResult,
  SearchOptions,
  SearchResult,
  StatResult,
  WriteResult,
} from "../protocol.js";
import type { Subscription, WatchOptions } from "./changes.js";

/** A file version: a counter on PostgreSQL (never reused for a path), the ETag on S3. */
export type Version = number | string;

/** Optimistic concurrency for write/edit: the version the caller last saw (0 = must not exist). */
export interface VersionOptions<V extends Version> {
  ifVersion?: V | 0;
}

/** What a backend can do, known without a round trip (S3's `atomicEdits` after initialize()). */
export interface BackendFeatures {
  /** "postgres", "s3", ... */
  readonly kind: string;
  /** How versions are written: a per-path counter, or the store's entity tag. */
  readonly versions: "counter" | "etag";
  /** watch() exists: a durable change feed with wake-ups. */
  readonly watch: boolean;
  /** grep/search/glob run in the store, not by fetching every file into this process. */
  readonly serverSideSearch: boolean;
  /**
   * Concurrent edits of one file never lose an update. Undefined until known (S3 probes whether
   * the endpoint enforces conditional writes on first use).
   */
  readonly atomicEdits: boolean | undefined;
}

export interface DeepAgentsBackend<V extends Version = Version>
  extends BackendProtocolV2,
    Required<Pick<BackendProtocolV2, "delete" | "uploadFiles" | "downloadFiles">> {
  /** The workspace (namespace of files) this instance reads and writes. */
  readonly workspace: string;
  readonly features: BackendFeatures;
  /** Checks the store (and, on PostgreSQL, the schema); operations call it on first use. */
  initialize(): Promise<void>;
  /** Releases what this backend created (a pool, a client); idempotent. */
  close(): Promise<void>;
  /** A view of another workspace over the same connections and settings. */
  withWorkspace(name: string): DeepAgentsBackend<V>;
  /** Metadata of one file without its content; a directory answers an error with `isDirectory`. */
  stat(path: string): Promise<StatResult<V>>;
  /** Makes a directory that exists while empty; `parents` makes missing parents (mkdir -p). */
  mkdir(path: string, options?: MkdirOptions): Promise<MkdirResult>;
  write(path: string, content: string, options?: VersionOptions<V>): Promise<WriteResult & { version?: V }>;
  edit(
    path: string,
    oldString: string,
    newString: string,
    replaceAll?: boolean,
    options?: VersionOptions<V>,
  ): Promise<EditResult & { version?: V }>;
  delete(path: string): Promise<DeleteResult>;
  /** Moves (renames) a file or a whole directory; `overwrite` replaces files in the way. */
  move(from: string, to: string, options?: RelocateOptions): Promise<RelocateResult>;
  /** Copies a file or a whole directory; `overwrite` replaces files in the way. */
  copy(from: string, to: string, options?: RelocateOptions): Promise<RelocateResult>;
  uploadFiles(files: Array<[string, Uint8Array]>): Promise<FileUploadResponse[]>;
  downloadFiles(paths: string[]): Promise<FileDownloadResponse[]>;
  /** grep beyond the protocol: a regular expression (the language of src/regex/) and/or ignoring case. */
  search(options: SearchOptions): Promise<SearchResult>;
  /**
   * grep() as an async iterator: the same matches in the same order as they are found, in bounded
   * memory; leaving the loop early stops the search in the store. Throws SearchStreamError.
   */
  grepStream(
    pattern: string,
    path?: string | null,
    glob?: string | null,
    maxCount?: number | null,
  ): AsyncGenerator<GrepMatch>;
  /** search() as an async iterator, like grepStream(). */
  searchStream(options: SearchOptions): AsyncGenerator<GrepMatch>;
  /** The workspace's change feed, where the store has one (`features.watch`). */
  watch?(options?: WatchOptions): Promise<Subscription>;
}
