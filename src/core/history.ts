/**
 * Versioned workspaces, storage-independent: what a backend with file history offers (the
 * `VersionedWorkspace` interface), its result types, the validation of its arguments and the
 * unified text diff. File-level calls an agent tool may make (history, readVersion, restore)
 * answer `{ error }` as the protocol's methods do; workspace-level calls an application makes
 * (checkpoint, rewind, diff, ...) throw.
 */
import { createTwoFilesPatch } from "diff";
import { normalizePath } from "../paths.js";
import { InputError } from "../protocol.js";
import type { ReadResult, WriteResult } from "../protocol.js";
import { historyErrors } from "../protocol.js";

/** One kept version of a path, or (op "delete") the deletion of one. */
export interface FileVersion {
  version: number;
  op: "create" | "update" | "delete";
  /** The change (watch()'s id) that wrote it; null for a version written before history was kept. */
  changeId: number | null;
  /** Bytes of this version (of the version deleted, for a deletion). */
  size: number;
  /** null for a deletion. */
  mimeType: string | null;
  /** ISO 8601. */
  at: string;
  /** The tag of the writer, when it set one (PostgresBackendConfig.tag, or the session setting). */
  tag: string | null;
  /** S3: the object version's id, its stable name (numbers shift if the bucket expires old versions). */
  versionId?: string;
  /** PostgreSQL: on the deletion of a moved file, the path it went to (move()). */
  movedTo?: string;
  /** PostgreSQL: on a moved file's first version at its new path, the path it came from. */
  movedFrom?: string;
}

export interface Checkpoint {
  id: number;
  /** The position it marks in the change log: the newest change of the workspace when taken. null on S3 (no change log). */
  changeId: number | null;
  label: string | null;
  tag: string | null;
  /** ISO 8601. */
  createdAt: string;
}

/** A checkpoint of a backend with a change log (PostgreSQL): its position is always known. */
export type LoggedCheckpoint = Checkpoint & { changeId: number };

/** A path whose content differs between two states; a side is null where the path had no file. */
export interface PathChange {
  path: string;
  op: "created" | "updated" | "deleted";
  before: { version: number; size: number } | null;
  after: { version: number; size: number } | null;
  /** Either side is binary: reported as changed, never diffed. */
  binary: boolean;
  /** Unified diff of the text, when asked for (`unified: true`) and both sides are text. */
  patch?: string;
}

export interface DiffOptions {
  /** Only these paths (a directory stands for everything below it). */
  paths?: string[];
  /** Add a unified text diff to each text change. */
  unified?: boolean;
  /** Lines of context in a unified diff (default 3). */
  context?: number;
}

export interface RewindOptions {
  /** Only these paths (a directory stands for everything below it). */
  paths?: string[];
  /** Say what would change without changing anything. */
  dryRun?: boolean;
}

/** A path a rewind puts back: before = now, after = the version at the checkpoint (null: no file then). */
export interface RewindChange {
  path: string;
  op: "created" | "updated" | "deleted";
  before: { version: number; size: number } | null;
  after: { version: number; size: number } | null;
  /** The new version written (history keeps the past; a rewind never rewrites it); null for a delete or a dry run, and on S3. */
  written: number | null;
}

export interface RewindResult {
  /** One entry per path put back (or, on a dry run, that would be). */
  changes: RewindChange[];
  dryRun: boolean;
  /** A checkpoint taken just before the rewind: rewinding to it undoes this one. null if nothing changed or dry run. */
  undo: number | null;
}

export interface ForkOptions {
  /** Fork the workspace as it was at this checkpoint of it (default: as it is now). */
  at?: number;
  /**
   * Take each file's history along (up to the checkpoint, with `at`): `history`, `readVersion`
   * and `restore` answer in the fork as in the source, and versions keep their numbers.
   * Checkpoints stay with the source. PostgreSQL: the schema owner's rights, history on in a
   * target that never had files. S3: every object version is copied, in order.
   */
  history?: boolean;
}

export interface ForkResult {
  /** The new workspace (open it with withWorkspace). */
  workspace: string;
  /** Files it was given, and their bytes. */
  files: number;
  bytes: number;
  /** The checkpoint forked from; null for the state at the time of the fork. */
  at: number | null;
  /** Versions copied with `history: true` (0 without). */
  versions: number;
}

export interface HistorySettings {
  enabled: boolean;
  /** Keep the newest N versions of each path (null: no count limit). */
  keepVersions: number | null;
  /** Keep versions younger than N days (null: no age limit). */
  keepDays: number | null;
}

export type HistoryResult = { versions: FileVersion[]; error?: undefined } | { error: string; versions?: undefined };

/** What a backend with file history and checkpoints offers beyond DeepAgentsBackend. */
export interface VersionedWorkspace {
  /** The versions of a path kept, oldest first, deleted paths included. */
  history(path: string): Promise<HistoryResult>;
  /** One version of a file, with read()'s window semantics. */
  readVersion(path: string, version: number, offset?: number, limit?: number): Promise<ReadResult>;
  /** Writes an earlier version back as the newest (undeletes a deleted path). */
  restore(
    path: string,
    version: number,
    options?: { ifVersion?: number | string },
  ): Promise<WriteResult & { version?: number | string }>;
  /** Marks now, in O(1): a position in the change log. */
  checkpoint(options?: { label?: string; tag?: string }): Promise<Checkpoint>;
  checkpoints(): Promise<Checkpoint[]>;
  deleteCheckpoint(id: number): Promise<boolean>;
  /** Puts the workspace (or some paths) back as at a checkpoint, as ordinary changes, atomically. */
  rewind(checkpoint: number, options?: RewindOptions): Promise<RewindResult>;
  /** What changed from one checkpoint to another (or to now). */
  diff(from: number, to?: number | null, options?: DiffOptions): Promise<PathChange[]>;
  /**
   * A new workspace with this one's files (now, or as at a checkpoint), into a workspace that has
   * none. Writes in either never show in the other; the fork's history starts at the fork, or
   * with `history: true` carries each file's versions along.
   */
  fork(workspace: string, options?: ForkOptions): Promise<ForkResult>;
}

const LABEL_MAX = 200;

/** A positive safe integer (a version or checkpoint id), else an InputError naming the argument. */
export function positiveId(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw new InputError(historyErrors.invalidNumber(what, value));
  }
  return value;
}

/** An optional label or tag: a string of at most 200 characters without control characters. */
export function optionalLabel(value: unknown, what: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "string" || value.length > LABEL_MAX || /[\u0000-\u001f\u007f]/.test(value)) {
    throw new InputError(historyErrors.invalidLabel(what, value, LABEL_MAX));
  }
  return value;
}

/** A retention limit: null, or a positive integer. */
export function optionalLimit(value: unknown, what: string): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1 || value > 2 ** 31 - 1) {
    throw new InputError(historyErrors.invalidNumber(what, value));
  }
  return value;
}

/** A fork's target, opened by `open` (which checks the name): a bad name is an InputError. */
export function forkTarget<T>(name: string, open: (name: string) => T): T {
  try {
    return open(name);
  } catch (e) {
    throw new InputError(`Error: ${(e as Error).message}`);
  }
}

/** fork()'s `history` option: a boolean when given (default false). */
export function forkHistoryOption(value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== "boolean")
    throw new InputError(historyErrors.invalidArgument("history", "true or false", value));
  return value;
}

/** Paths of a scope, normalised ("/" stays "/"); null for the whole workspace. */
export function scopeOf(paths: string[] | undefined): string[] | null {
  if (paths === undefined) return null;
  if (!Array.isArray(paths)) throw new InputError(historyErrors.invalidArgument("paths", "an array of paths", paths));
  return paths.map((p) => normalizePath(p, { emptyIsRoot: true }).path);
}

/** A unified diff between two texts of one path. */
export function unifiedPatch(path: string, before: string, after: string, context = 3): string {
  return createTwoFilesPatch(`a${path}`, `b${path}`, before, after, undefined, undefined, { context });
}
