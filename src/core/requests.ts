/**
 * The requests BackendCore hands a backend and the outcomes it expects back: already validated,
 * normalised paths in, storage facts out (the core words every message).
 */
import type { FileUploadResponse } from "../protocol.js";
import type { CompiledGlob } from "../glob.js";
import type { NormalizedPath } from "../paths.js";

/** State shared by a backend and every withWorkspace() view of it. */
export interface CoreState {
  initialized?: Promise<void>;
  closed: boolean;
}

/** A text file's window as read() returns it, or a binary file's bytes. */
export type FileWindow =
  | { mimeType: string; bytes: Buffer }
  | { mimeType: string; bytes?: undefined; totalLines: number; window: { text: string | null; lines: number } };

export type WriteOutcome<V> =
  | { status: "ok"; version: V }
  | { status: "version_mismatch"; current: V | null }
  | { status: "parent_is_file"; file: string }
  | { status: "is_directory" };

export type EditOutcome<V> =
  | { status: "ok"; occurrences: number; version: V }
  | { status: "version_mismatch"; current: V | null }
  | { status: "too_large"; size: number }
  | { status: "conflict"; attempts: number }
  | { status: "not_found" | "binary" | "empty_old" | "no_match" | "multiple"; occurrences?: number };

/**
 * A move or copy: normalised paths, neither the root, neither inside the other (BackendCore has
 * checked); `to` within the path limit (each new path still has to be checked by the store).
 */
export interface RelocateRequest {
  operation: "move" | "copy";
  from: string;
  to: string;
  overwrite: boolean;
}

export type RelocateOutcome =
  | { status: "ok"; files: number }
  | { status: "not_found" }
  /** path: the file in the way, the file above a new path, the directory where a file would go, or the new path too long. */
  | { status: "target_exists" | "parent_is_file" | "is_directory" | "too_long"; path: string };

/**
 * mkdir: made; already a directory; or why not (path: the file in the way, or the missing
 * parent). A directory exists while a file lies below it or mkdir made it and no delete took it.
 */
export type MkdirOutcome =
  | { status: "created" | "exists" | "is_file" }
  | { status: "parent_is_file" | "parent_missing"; path: string };

export interface EditRequest {
  oldString: string;
  newString: string;
  replaceAll: boolean;
}

/** What to find: the matcher the subclass compiled, and where to look. */
export interface LineQuery<M> {
  operation: "grep" | "search";
  matcher: M;
  scope: NormalizedPath;
  glob: CompiledGlob | null;
  /** Rows to fetch: the cap + 1 (so truncation shows), or null for all. */
  limit: number | null;
  timeoutMs: number;
}

/** The per-file error of an upload or download. */
export type FileError = NonNullable<FileUploadResponse["error"]>;
