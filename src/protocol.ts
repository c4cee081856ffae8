/**
 * The contract with deepagents (BackendProtocolV2, as deepagents 1.14 behaves): result types and
 * every string a backend returns to the agent. One place, so Postgres and S3 say the same thing.
 * See docs/PROTOCOL.md for the rules behind each string.
 */
import type { ReadResult } from "deepagents";
import { displayInput } from "./paths.js";

export type {
  BackendProtocolV2,
  DeleteResult,
  EditResult,
  FileData,
  FileDownloadResponse,
  FileInfo,
  FileOperationError,
  FileUploadResponse,
  GlobResult,
  GrepMatch,
  GrepResult,
  LsResult,
  ReadRawResult,
  ReadResult,
  WriteResult,
} from "deepagents";

/** Returned as the content of an empty text file (deviation shared with FilesystemBackend). */
export const EMPTY_FILE_CONTENT = "System reminder: File exists but has empty contents";

export const errors = {
  /** read / readRaw of a missing file. */
  readNotFound: (path: string) => `File '${path}' not found`,
  /** edit / delete of a missing file. */
  notFound: (path: string) => `Error: File '${path}' not found`,
  offsetPastEnd: (offset: number, totalLines: number) =>
    `Line offset ${offset} exceeds file length (${totalLines} lines)`,
  emptyOldString: () => "Error: oldString cannot be empty when file has content",
  stringNotFound: (oldString: string) => `Error: String not found in file: '${oldString}'`,
  multipleOccurrences: (oldString: string, count: number) =>
    `Error: String '${oldString}' has multiple occurrences (appears ${count} times) in file. ` +
    "Use replace_all=True to replace all instances, or provide a more specific string with surrounding context.",
  /** StoreBackend's words for an edit of a binary file. */
  editBinary: () => "Error: Cannot convert binary FileData to string",
  /** `current` 0 or null: the file does not exist. Versions are numbers (Postgres) or ETags (S3). */
  versionMismatch: (path: string, expected: number | string, current: number | string | null) =>
    current === 0 || current === null
      ? `Error: Version conflict on '${path}': expected version ${expected}, but the file does not exist`
      : `Error: Version conflict on '${path}': expected version ${expected}, current version is ${current}`,
  editConflict: (path: string, attempts: number) =>
    `Error: Could not edit '${path}': it kept changing under concurrent writers (${attempts} attempts); read it again and retry`,
  /**
   * S3: the answer to a write was lost and the object changed since in a way that cannot tell
   * whether the write landed (it may have, and been replaced). Never guessed: retrying blindly
   * could apply an edit twice.
   */
  outcomeUnknown: (operation: string, path: string) =>
    `Error: The ${operation} of '${path}' may or may not have been applied: the storage's answer was lost and the file has been replaced since; read it to check before retrying`,
  tooLargeToRead: (path: string, size: number, limit: number) =>
    `Error: File '${path}' is too large to read (${size} bytes; the limit is ${limit} bytes)`,
  invalidPath: (path: string, why: string) => `Error: Invalid path '${path}': ${why}`,
  isDirectory: (path: string) => `Error: '${path}' is a directory`,
  /**
   * A file and a directory never share a name: writing `path` would put it below `file`, an
   * existing file (as a filesystem answers ENOTDIR).
   */
  parentIsFile: (path: string, file: string) => `Error: Cannot create '${path}': '${file}' is a file, not a directory`,
  /** move/copy: the target is the source, inside it, above it, or the root. */
  relocateOntoItself: (operation: "move" | "copy", from: string, to: string) =>
    `Error: Cannot ${operation} '${from}' to '${to}': a path cannot be ${operation === "move" ? "moved" : "copied"} onto itself, into itself or onto a directory that holds it, and the root cannot be either end`,
  /** move/copy without overwrite: a file is where the move would write. */
  targetExists: (path: string) => `Error: '${path}' already exists (pass overwrite: true to replace it)`,
  /** move/copy: a new path would be longer than the path limit. */
  pathTooLong: (path: string, limit: number) => `Error: Invalid path '${path}': path is longer than ${limit} bytes`,
  /** mkdir: the directory is there already (without `parents`, as mkdir answers EEXIST). */
  directoryExists: (path: string) => `Error: Cannot create directory '${path}': it already exists`,
  /** mkdir: a file has the name. */
  fileExists: (path: string) => `Error: Cannot create directory '${path}': a file with that name exists`,
  /** mkdir without `parents`: the directory above is missing. */
  parentMissing: (path: string, parent: string) =>
    `Error: Cannot create directory '${path}': '${parent}' does not exist (pass parents: true to create it)`,
  invalidParents: (value: unknown) => `Error: parents must be true or false (got ${displayInput(String(value))})`,
  invalidOverwrite: (value: unknown) => `Error: overwrite must be true or false (got ${displayInput(String(value))})`,
  tooLarge: (path: string, size: number, limit: number) =>
    `Error: File '${path}' is too large (${size} bytes; the limit is ${limit} bytes)`,
  invalidBase64: (path: string) =>
    `Error: '${path}' is a binary file type; content must be base64 (optionally a data: URL)`,
  malformedText: (path: string) =>
    `Error: Content for '${path}' is not valid text (it contains a NUL character or an unpaired UTF-16 surrogate)`,
  invalidGlob: (pattern: string, why: string) => `Error: Invalid glob pattern '${pattern}': ${why}`,
  invalidRegex: (pattern: string, why: string) =>
    `Error: Invalid regular expression '${displayInput(pattern)}': ${why}`,
  searchTimeout: (ms: number) => `Error: search timed out after ${ms} ms; narrow the path, glob or pattern`,
  invalidTimeout: (value: unknown) =>
    `Error: timeoutMs must be a number of milliseconds from 1 to 2147483647 (got ${displayInput(String(value))})`,
  invalidMaxCount: (value: unknown) =>
    `Error: maxCount must be a number of matches or null (got ${typeof value === "string" ? JSON.stringify(displayInput(value)) : displayInput(String(value))})`,
  globTimeout: (pattern: string, ms: number) =>
    `Error: glob '${displayInput(pattern)}' took longer than ${ms} ms to match; use fewer wildcards or a narrower path`,
  patternNotString: (operation: string) => `Error: ${operation} pattern must be a string`,
  uploadNotBytes: (path: string) => `Error: upload content for '${path}' must be a Uint8Array`,
  invalidIfVersion: (value: unknown, expected: string) =>
    `Error: ifVersion must be ${expected} (got ${displayInput(String(value))})`,
  storage: (operation: string, message: string) => `Error: storage failure during ${operation}: ${message}`,
  permissionDenied: (operation: string, workspace: string, message: string) =>
    `Error: permission denied during ${operation} in workspace '${workspace}': ${message}`,
} as const;

/**
 * Errors thrown to the developer (by a constructor or initialize(), never returned to the agent):
 * a backend that cannot start says why and what to do, in one line.
 */
export const setupErrors = {
  closed: () => "backend is closed",
  invalidSchema: (name: string) =>
    `Invalid schema name ${JSON.stringify(name)}: use lower-case letters, digits and _ (max 63, not starting with a digit)`,
  invalidRole: (role: unknown) => `Invalid role name ${JSON.stringify(role)}: a PostgreSQL role name of 1-63 bytes`,
  invalidDirection: (direction: unknown) => `Invalid direction ${JSON.stringify(direction)}: use "up" or "down"`,
  invalidSince: (since: unknown) => `watch: since must be a non-negative integer (got ${since})`,
  resyncRequired: (detail: string) => `Resync required: ${detail}`,
  invalidSslMode: (mode: unknown) => `Invalid sslmode ${JSON.stringify(mode)}`,
  invalidPoolSize: (value: unknown) => `maxPoolSize must be at least 1 (got ${value})`,
  invalidStreamSplit: (field: string, value: unknown) =>
    `streamSplit.${field} must be a whole number of bytes, 0 or more (got ${JSON.stringify(value)})`,
  invalidS3Prefix: (prefix: unknown) =>
    `Invalid S3 prefix ${JSON.stringify(prefix)}: '.' and '..' segments are not allowed`,
  invalidWorkspace: (name: unknown, why: string) => `Invalid workspace name ${JSON.stringify(name)}: ${why}`,
  s3NeedsBucket: () => "S3Backend needs a bucket",
  bucketUnusable: (bucket: string, why: string) => `S3 bucket "${bucket}" is not usable: ${why}`,
  serverTooOld: (version: number) => `deepagents-backends needs PostgreSQL 14 or newer (server is ${version})`,
  notUtf8: (encoding: string) => `deepagents-backends needs a UTF8 database (server_encoding is ${encoding})`,
  schemaOutdated: (schema: string, missing: string[]) =>
    `Schema "${schema}" is not up to date (missing migrations: ${missing.join(", ")}); ` +
    "run `deepagents-backends migrate` or migrate() first",
  rlsCannotRead: (schema: string, message: string) =>
    `rowLevelSecurity: this role cannot read schema "${schema}" (${message}); grant it a workspace first (grantWorkspace() as the schema owner)`,
  rlsNotActive: (role: string, schema: string) =>
    `rowLevelSecurity is on, but row-level security does not apply to role "${role}" on "${schema}".files ` +
    "(it owns the table, is a superuser or has BYPASSRLS): connect as a role restricted with grantWorkspace()",
  workspaceNotGranted: (workspace: string, role: string, schema: string) =>
    `Workspace ${JSON.stringify(workspace)} is not granted to role "${role}": grantWorkspace(pool, "${schema}", "${role}", workspace) as the schema owner`,
} as const;

/** A sharded deployment (src/postgres/cluster/, docs/CLUSTER.md). */
export const clusterErrors = {
  noPartitions: () => "cluster.partitions must be a non-empty array of postgres:// URLs",
  notPowerOfTwo: (count: number) =>
    `A cluster needs a power of two partitions (1, 2, 4, ...: PL/Proxy maps hashtext(workspace) & (count - 1)); got ${count}`,
  // (never the value: a URL that does not parse may still hold a password)
  invalidPartition: (index: number) =>
    `cluster.partitions[${index}] is not a postgres:// URL with a host and a database`,
  userInOptions: (index: number) =>
    `cluster.partitions[${index}]: its host or database name contains "user=", which would make PL/Proxy connect every role as one user`,
  samePartitionTwice: (where: string) => `cluster.partitions names one database twice (${where})`,
  proxyOutdated: (schema: string, missing: string[]) =>
    `Schema "${schema}" on this PL/Proxy database is not up to date (missing migrations: ${missing.join(", ")}); ` +
    "run migrate({ cluster }) (`deepagents-backends migrate --partition URL ...`) first",
  proxyNotMigratable: (schema: string) =>
    `Schema "${schema}" in this database is the PL/Proxy front of a cluster: migrate it with migrate({ cluster }) (\`deepagents-backends migrate --partition URL ...\`)`,
  noPlProxy: () =>
    "PL/Proxy is not installed on the server of the cluster's front database (Debian: apt-get install postgresql-15-plproxy, for its PostgreSQL version)",
  noCount: () =>
    "migrate({ cluster }) applies or reverts every migration: count is not taken (partitions and front stay at one version)",
  splitMismatch: (current: string[], count: number) =>
    `splitCluster() doubles the partitions: give the front's ${current.length} partitions in order (${current.join("; ")}), then as many new ones (got ${count} in all)`,
  splitTargetNotEmpty: (where: string) => `A new partition must be empty (${where} has rows in the schema)`,
  splitRunning: (schema: string) => `A split of the cluster of schema "${schema}" is already running`,
  splitUndoFailed: (cause: string, failures: string[]) =>
    `The split failed (${cause}) and could not be undone everywhere (${failures.join("; ")}): run splitCluster() again once the partitions answer`,
  splitUnknownTables: (tables: string[]) =>
    `splitCluster() does not know how to split the table(s) ${tables.join(", ")}: this version of the package cannot split this schema`,
  watchMoved: (workspace: string, cause: string) =>
    `Workspace "${workspace}" is no longer read on the partition this watch reads (a split moved it: ${cause}); watch again from your cursor`,
  partitionOutdated: (schema: string) =>
    `A partition of the cluster of schema "${schema}" lacks cluster_reads_here(): run migrate({ cluster }) again`,
  partitionsDiffer: (first: string, other: string) =>
    `The partitions are not at one migration (${first} against ${other}): run migrate({ cluster }) again`,
} as const;

/**
 * File history and checkpoints (src/core/history.ts). The file-level ones are returned to the
 * agent like `errors`; the workspace-level ones are thrown to the application.
 */
export const historyErrors = {
  invalidNumber: (what: string, value: unknown) =>
    `Error: ${what} must be a positive integer (got ${displayInput(String(value))})`,
  invalidLabel: (what: string, value: unknown, max: number) =>
    `Error: ${what} must be a string of at most ${max} characters without control characters (got ${displayInput(String(value))})`,
  invalidArgument: (what: string, expected: string, value: unknown) =>
    `Error: ${what} must be ${expected} (got ${displayInput(String(value))})`,
  noVersion: (path: string, version: number | string) => `Error: version ${version} of '${path}' is not kept`,
  noHistory: (path: string) => `Error: no history kept for '${path}'`,
  noCheckpoint: (id: number, workspace: string) => `Error: checkpoint ${id} does not exist in workspace '${workspace}'`,
  checkpointBeforeLog: (id: number, workspace: string) =>
    `Error: checkpoint ${id} of workspace '${workspace}' is older than the retained change log (taken while a fork or pruneChanges was writing the workspace): take a new one`,
  historyOff: (workspace: string) =>
    `Error: history is off for workspace '${workspace}': turn it on (setHistory) before taking checkpoints`,
  damaged: (detail: string) => `Error: damaged history: ${detail}`,
  noGraphCheckpoint: (thread: unknown, checkpoint: unknown) =>
    `Error: no LangGraph checkpoint for thread ${JSON.stringify(thread)} and checkpoint ${JSON.stringify(checkpoint ?? "latest")}`,
  noFileCheckpoint: (id: string) =>
    `Error: LangGraph checkpoint ${id} has no file checkpoint: it was saved without withFileCheckpoints()`,
  s3VersioningOff: (bucket: string, status: string) =>
    `Error: file history on S3 needs versioning on bucket '${bucket}' (it is ${status}): enable it, e.g. aws s3api put-bucket-versioning --bucket ${bucket} --versioning-configuration Status=Enabled`,
  s3NoVersioningSupport: (bucket: string) =>
    `Error: file history on S3 needs bucket versioning, which the endpoint of bucket '${bucket}' does not implement: use one that does (AWS S3, MinIO, Ceph RGW)`,
  s3CheckpointRefused: (first: number, last: number) =>
    `Error: the endpoint refused every checkpoint manifest id from ${first} to ${last} (If-None-Match)`,
  /**
   * A rewind would put a file back where a directory is now (one made by mkdir since): refused
   * whole. PostgreSQL's commit check (DA003) words it the same.
   */
  rewindOntoDirectory: (path: string) => `Error: cannot create file "${path}": it is a directory`,
  forkIntoItself: (workspace: string) => `Error: cannot fork workspace '${workspace}' into itself`,
  forkAcrossPartitions: (source: string, target: string) =>
    `Error: workspaces '${source}' and '${target}' are on different partitions of the cluster: a fork stays on one (PL/Proxy commits each partition on its own); fork into a workspace name on the same partition`,
  forkTargetHasFiles: (workspace: string) =>
    `Error: cannot fork into workspace '${workspace}': it has files (fork into a new workspace)`,
  s3ForkHistoryAt:
    "Error: fork with history at a checkpoint is not supported on S3 (object timelines cannot be cut at a checkpoint exactly): fork with history now, or at the checkpoint without history",
  forkHistoryOff: (workspace: string) =>
    `Error: cannot fork with history into workspace '${workspace}': history is off there (setHistory)`,
  forkHistoryNeedsOwner: (workspace: string) =>
    `Error: cannot fork with history into workspace '${workspace}': copying history needs the schema owner's rights (fork without history instead)`,
  forkTargetHasHistory: (workspace: string) =>
    `Error: cannot fork with history into workspace '${workspace}': it had files once and has history of its own (fork into a new workspace)`,
  needsOwner: (operation: string) =>
    `Error: ${operation} is for the schema owner (it changes every workspace's history)`,
} as const;

/** move() and copy() (extensions beyond the protocol). */
export interface RelocateOptions {
  /** Replace files at the paths written (a target directory's other files stay). Default false. */
  overwrite?: boolean;
}

export interface RelocateResult {
  error?: string;
  /** The new path, as given. */
  path?: string;
  /** The old path, as given. */
  from?: string;
  /** How many files were moved or copied. */
  files?: number;
  filesUpdate?: null;
}

/** mkdir() (an extension beyond the protocol). */
export interface MkdirOptions {
  /** Make missing parent directories too, and accept a directory that exists (mkdir -p). Default false. */
  parents?: boolean;
}

export interface MkdirResult {
  error?: string;
  /** The directory, as given. */
  path?: string;
  /** false: it was a directory already (only with `parents`). */
  created?: boolean;
}

/** Metadata of one file (an extension beyond the protocol). */
export interface FileStat<Version = number> {
  path: string;
  mimeType: string;
  isBinary: boolean;
  /** Bytes. */
  size: number;
  /** Lines, counted like read(); null when the backend does not know without reading. */
  lines: number | null;
  /** Postgres: +1 per change, never reused for a path (a re-created file starts above it). S3: the object's ETag. */
  version: Version;
  created_at: string;
  modified_at: string;
}

export interface StatResult<Version = number> {
  error?: string;
  data?: FileStat<Version>;
  /** Set with the error when the path is a directory (made by mkdir, or holding files). */
  isDirectory?: true;
}

/** search(): grep beyond the protocol (regex, case-insensitive). */
export interface SearchOptions {
  pattern: string;
  /** Treat `pattern` as a regular expression (JavaScript syntax). Default false: a literal. */
  regex?: boolean;
  ignoreCase?: boolean;
  /** Default "/". */
  path?: string;
  glob?: string | null;
  maxCount?: number | null;
  /** Time budget in ms (PostgreSQL: statement_timeout of the search; S3: matching deadline). */
  timeoutMs?: number;
}

export interface SearchResult {
  matches?: Array<{ path: string; line: number; text: string }>;
  truncated?: boolean;
  error?: string;
}

/**
 * Bad input to a protocol method, already worded for the agent: every backend returns its message
 * as the `{ error }` result (failures.ts), never as a storage failure.
 */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InputError";
  }
}

/** The largest PostgreSQL integer (and the longest Node.js timer, in ms): 2^31 - 1. */
export const INT4_MAX = 2 ** 31 - 1;

/**
 * read()'s offset/limit as deepagents normalises them: floored, negatives and NaN to 0. The
 * offset is kept as given (up to 2^53) so a message names it; a backend that needs a 32-bit
 * integer clamps it (no file has 2^31 lines).
 */
export function readPagination(offset: number, limit: number): { offset: number; limit: number } {
  const floor = (n: number, max: number) => (Number.isFinite(n) ? Math.min(Math.max(0, Math.floor(n)), max) : 0);
  return { offset: floor(offset, Number.MAX_SAFE_INTEGER), limit: floor(limit, INT4_MAX) };
}

/** grep()'s maxCount: null for no cap, else a whole number of matches (0 allowed). */
export function grepLimit(maxCount: number | null | undefined): number | null {
  if (maxCount === null || maxCount === undefined) return null;
  if (typeof maxCount !== "number" || Number.isNaN(maxCount)) throw new InputError(errors.invalidMaxCount(maxCount));
  return Math.max(0, Math.floor(Math.min(maxCount, Number.MAX_SAFE_INTEGER - 1)));
}

/**
 * The read() result for a text file, from its line count and the window cut from it: the
 * protocol's empty-file and offset-past-end deviations, then deepagents' window fields.
 */
export function textReadResult(
  mimeType: string,
  totalLines: number,
  offset: number,
  limit: number,
  window: { text: string | null; lines: number },
): ReadResult {
  if (totalLines === 0) return { content: EMPTY_FILE_CONTENT, mimeType };
  if (offset >= totalLines) return { error: errors.offsetPastEnd(offset, totalLines) };
  if (limit === 0) return { content: "", mimeType };
  const endLine = Math.min(offset + window.lines, totalLines);
  const result: ReadResult = { content: window.text ?? "", mimeType, totalLines, startLine: offset + 1, endLine };
  if (endLine < totalLines) result.nextOffset = endLine;
  return result;
}

/** An edit outcome that is not a success, as the protocol words it. */
export function editFailure(
  status: "not_found" | "binary" | "empty_old" | "no_match" | "multiple",
  path: string,
  oldString: string,
  occurrences = 0,
): string {
  switch (status) {
    case "not_found":
      return errors.notFound(path);
    case "binary":
      return errors.editBinary();
    case "empty_old":
      return errors.emptyOldString();
    case "no_match":
      return errors.stringNotFound(oldString);
    case "multiple":
      return errors.multipleOccurrences(oldString, occurrences);
  }
}
