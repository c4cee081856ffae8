/**
 * The one place virtual paths are normalised and validated. Every backend method runs its path
 * arguments through here before touching storage, so a hostile path is refused the same way
 * everywhere: `..` above the root, NUL and other control characters, invisible bidirectional
 * controls, backslashes, Windows drive paths, names with leading or trailing whitespace, and
 * paths too long for the index. Accepted paths are Unicode NFC, so a name typed precomposed
 * ("é") and decomposed ("e" + U+0301) is one file, not two that look alike.
 */

/** Longest accepted path in UTF-8 bytes: (workspace, parent, path) must fit one btree entry. */
export const MAX_PATH_BYTES = 1024;
/** Longest accepted path segment in UTF-8 bytes (the common filesystem limit). */
export const MAX_SEGMENT_BYTES = 255;

export class PathError extends Error {
  /** The path is well formed but names a directory where a file was expected. */
  namesDirectory = false;

  /** The offending input as shown in messages: control characters escaped, long inputs cut. */
  readonly input: string;

  constructor(input: string, readonly reason: string) {
    const shown = displayInput(input);
    super(`Invalid path '${shown}': ${reason}`);
    this.input = shown;
    this.name = "PathError";
  }
}

const MAX_SHOWN = 200;

/** How a non-string argument is named in messages: "null", "undefined", "number", ... */
export const typeName = (value: unknown): string => (value === null ? "null" : typeof value);

/**
 * An input as it may appear in an error message for a model or a log: control and invisible
 * formatting characters as \uXXXX escapes, unpaired surrogates as U+FFFD, at most 200 characters.
 */
export function displayInput(input: string): string {
  const escaped = input.toWellFormed().replace(UNPRINTABLE_GLOBAL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  if (escaped.length <= MAX_SHOWN) return escaped;
  return `${escaped.slice(0, MAX_SHOWN).toWellFormed()}... (${input.length} characters)`;
}

export interface NormalizedPath {
  /** Absolute, no trailing slash (except the root "/"), no empty, "." or ".." segments. */
  path: string;
  /** The input ended with "/" (it names a directory). */
  trailingSlash: boolean;
}

// C0 controls, DEL and C1 controls: a newline or NUL in a path breaks line-oriented tools and
// PostgreSQL text. U+2028/U+2029 are line breaks to JavaScript and many editors.
const CONTROL_CHARS = "\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029";
// Invisible formatting: bidirectional marks, embeddings, overrides and isolates (they make
// "evil\u202Etxt.sh" display as "evilhs.txt"), zero-width space, word joiner and BOM (they make
// two names that look equal). Zero-width (non-)joiners stay allowed: emoji and several scripts
// need them.
const INVISIBLE_CHARS = "\\u061c\\u200b\\u200e\\u200f\\u202a-\\u202e\\u2060\\u2066-\\u2069\\ufeff";
const CONTROL = new RegExp(`[${CONTROL_CHARS}]`);
const INVISIBLE = new RegExp(`[${INVISIBLE_CHARS}]`);
const UNPRINTABLE_GLOBAL = new RegExp(`[${CONTROL_CHARS}${INVISIBLE_CHARS}]`, "g");
// "C:\\x", "C:/x", "C:" and drive-relative "C:x".
const WINDOWS_DRIVE = /^[A-Za-z]:/;
const utf8Length = (s: string) => Buffer.byteLength(s, "utf8");

export interface NormalizeOptions {
  /** An empty (or all-whitespace) path means the root instead of an error (ls, grep, glob). */
  emptyIsRoot?: boolean;
}

export function normalizePath(input: unknown, { emptyIsRoot = false }: NormalizeOptions = {}): NormalizedPath {
  if (typeof input !== "string") {
    throw new PathError(`<${typeName(input)}>`, `path must be a string (got ${typeName(input)})`);
  }
  if (CONTROL.test(input)) throw new PathError(input, "control characters (including NUL and line breaks) are not allowed");
  // Surrounding whitespace is a slip of the caller ("/notes.md "), not part of the name.
  const trimmed = input.trim();
  if (trimmed === "") {
    if (emptyIsRoot) return { path: "/", trailingSlash: true };
    throw new PathError(input, "path is empty");
  }
  if (!trimmed.isWellFormed()) throw new PathError(input, "path contains an unpaired UTF-16 surrogate");
  if (INVISIBLE.test(trimmed)) {
    throw new PathError(input, "invisible formatting characters (bidirectional controls, zero-width spaces, BOM) are not allowed");
  }
  if (WINDOWS_DRIVE.test(trimmed)) throw new PathError(input, "Windows drive paths are not supported; use /-separated absolute paths");
  if (trimmed.includes("\\")) throw new PathError(input, "backslashes are not allowed; use '/' to separate directories");
  const nfc = trimmed.normalize("NFC");

  const segments: string[] = [];
  for (const segment of nfc.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") {
      if (segments.length === 0) throw new PathError(input, "path traversal outside the root is not allowed");
      segments.pop();
      continue;
    }
    if (segment.trim() !== segment) {
      throw new PathError(input, `the name '${displayInput(segment)}' starts or ends with whitespace`);
    }
    if (utf8Length(segment) > MAX_SEGMENT_BYTES) {
      throw new PathError(input, `a path segment is longer than ${MAX_SEGMENT_BYTES} bytes`);
    }
    segments.push(segment);
  }
  const path = "/" + segments.join("/");
  if (utf8Length(path) > MAX_PATH_BYTES) throw new PathError(input, `path is longer than ${MAX_PATH_BYTES} bytes`);
  return { path, trailingSlash: nfc.endsWith("/") || path === "/" };
}

/** A path that must name a file: not the root, not written with a trailing slash. */
export function normalizeFilePath(input: unknown): string {
  const { path, trailingSlash } = normalizePath(input);
  if (path === "/" || trailingSlash) {
    const error = new PathError(input as string, path === "/" ? "the root is a directory, not a file" : "a file path cannot end with '/'");
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
