/**
 * The one place virtual paths are normalised and validated. Every backend method runs its path
 * arguments through here before touching storage, so a hostile path is refused the same way
 * everywhere: `..` above the root, NUL and other control characters, Windows drive paths, and
 * paths too long for the index.
 */

/** Longest accepted path in UTF-8 bytes: (workspace, parent, path) must fit one btree entry. */
export const MAX_PATH_BYTES = 1024;
/** Longest accepted path segment in UTF-8 bytes (the common filesystem limit). */
export const MAX_SEGMENT_BYTES = 255;

export class PathError extends Error {
  /** The path is well formed but names a directory where a file was expected. */
  namesDirectory = false;

  constructor(readonly input: string, readonly reason: string) {
    super(`Invalid path '${input}': ${reason}`);
    this.name = "PathError";
  }
}

export interface NormalizedPath {
  /** Absolute, no trailing slash (except the root "/"), no empty, "." or ".." segments. */
  path: string;
  /** The input ended with "/" (it names a directory). */
  trailingSlash: boolean;
}

// C0 controls and DEL: a newline or NUL in a path breaks line-oriented tools and PostgreSQL text.
const CONTROL = /[\u0000-\u001f\u007f]/;
const WINDOWS_DRIVE = /^[A-Za-z]:(?:[\\/]|$)/;
const utf8Length = (s: string) => Buffer.byteLength(s, "utf8");

export function normalizePath(input: unknown, { emptyIsRoot = false } = {}): NormalizedPath {
  if (typeof input !== "string") throw new PathError(String(input), "path must be a string");
  if (input.trim() === "") {
    if (emptyIsRoot) return { path: "/", trailingSlash: true };
    throw new PathError(input, "path is empty");
  }
  if (CONTROL.test(input)) throw new PathError(input, "control characters (including NUL) are not allowed");
  if (!input.isWellFormed()) throw new PathError(input, "path contains an unpaired UTF-16 surrogate");
  if (WINDOWS_DRIVE.test(input)) throw new PathError(input, "Windows drive paths are not supported; use /-separated absolute paths");

  const segments: string[] = [];
  for (const segment of input.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") {
      if (segments.length === 0) throw new PathError(input, "path traversal outside the root is not allowed");
      segments.pop();
      continue;
    }
    if (utf8Length(segment) > MAX_SEGMENT_BYTES) {
      throw new PathError(input, `a path segment is longer than ${MAX_SEGMENT_BYTES} bytes`);
    }
    segments.push(segment);
  }
  const path = "/" + segments.join("/");
  if (utf8Length(path) > MAX_PATH_BYTES) throw new PathError(input, `path is longer than ${MAX_PATH_BYTES} bytes`);
  return { path, trailingSlash: input.endsWith("/") || path === "/" };
}

/** A path that must name a file: not the root, not written with a trailing slash. */
export function normalizeFilePath(input: unknown): string {
  const { path, trailingSlash } = normalizePath(input);
  if (path === "/" || trailingSlash) {
    const error = new PathError(String(input), path === "/" ? "the root is a directory, not a file" : "a file path cannot end with '/'");
    error.namesDirectory = true;
    throw error;
  }
  return path;
}

/** The directory prefix of a normalised path: "/" stays "/", "/a" becomes "/a/". */
export function dirPrefix(path: string): string {
  return path === "/" ? "/" : path + "/";
}

/** Workspaces are compared exactly; names are printable, 1-128 characters. */
export function validateWorkspace(name: unknown): string {
  if (typeof name !== "string" || name.length === 0 || name.length > 128 || CONTROL.test(name) || !name.isWellFormed()) {
    throw new Error(`Invalid workspace name ${JSON.stringify(name)}: use 1-128 printable characters`);
  }
  return name;
}

/** The per-file code of upload/download for a path that failed normalizeFilePath(). */
export function fileErrorCode(e: unknown): "is_directory" | "invalid_path" {
  return e instanceof PathError && e.namesDirectory ? "is_directory" : "invalid_path";
}
