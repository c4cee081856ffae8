/**
 * The one place virtual paths are normalised and validated. Every backend method runs its path
 * arguments through here before touching storage, so a hostile path is refused the same way
 * everywhere: `..` above the root, NUL and other control characters, invisible (Unicode
 * default-ignorable) characters, noncharacters, backslashes, Windows drive paths, names with
 * leading or trailing whitespace, and paths too long for the index. Accepted paths are Unicode NFC, so a name typed precomposed
 * ("é") and decomposed ("e" + U+0301) is one file, not two that look alike.
 */
import { setupErrors } from "./protocol.js";

/** Longest accepted path in UTF-8 bytes: (workspace, parent, path) must fit one btree entry. */
export const MAX_PATH_BYTES = 1024;
/** Longest accepted path segment in UTF-8 bytes (the common filesystem limit). */
export const MAX_SEGMENT_BYTES = 255;

export class PathError extends Error {
  /** The path is well formed but names a directory where a file was expected. */
  namesDirectory = false;

  /** The offending input as shown in messages: control characters escaped, long inputs cut. */
  readonly input: string;

  constructor(
    input: string,
    readonly reason: string,
  ) {
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
  const escaped = input.toWellFormed().replace(UNPRINTABLE_GLOBAL, (c) => {
    const code = c.codePointAt(0)!;
    return code > 0xffff ? `\\u{${code.toString(16)}}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
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
const CONTROL = new RegExp(`[${CONTROL_CHARS}]`);
// Invisible characters make two names that display alike ("config.json" and "config\u00ADjson",
// "evil\u202Etxt.sh" displaying as "evilhs.txt"). Unicode names them: Default_Ignorable_Code_Point
// (soft hyphen, zero-width and bidirectional controls, BOM, variation selectors, Hangul fillers,
// tag characters, ...), kept current by the JavaScript engine's Unicode data rather than a hand
// list. Three of them are refused only where they can hide: ZWNJ/ZWJ (U+200C/U+200D), which
// Indic and Arabic-script words and emoji sequences need, are allowed between two non-ASCII
// characters; the emoji variation selectors U+FE0E/U+FE0F right after a pictographic character
// (or U+FE0F before the keycap mark U+20E3).
const DEFAULT_IGNORABLE = /\p{Default_Ignorable_Code_Point}/u;
const JOINER = /^[\u200c\u200d]$/u;
const EMOJI_SELECTOR = /^[\ufe0e\ufe0f]$/u;
const PICTOGRAPHIC = /^\p{Extended_Pictographic}$/u;
const ASCII = /^[\u0000-\u007f]$/u;
// Noncharacters (U+FDD0-U+FDEF, U+FFFE/U+FFFF of every plane) are for a program's internal use;
// XML 1.0 cannot carry U+FFFE/U+FFFF, so S3's multi-object delete could never name such a key.
const NONCHARACTER = /\p{Noncharacter_Code_Point}/u;
const UNPRINTABLE_GLOBAL = new RegExp(
  `[${CONTROL_CHARS}]|\\p{Default_Ignorable_Code_Point}|\\p{Noncharacter_Code_Point}`,
  "gu",
);

/** The first invisible character of `name` that could hide, with its position; null if none. */
function hiddenCharacter(name: string): string | null {
  const chars = [...name];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (!DEFAULT_IGNORABLE.test(c)) continue;
    const before = chars[i - 1];
    const after = chars[i + 1];
    if (JOINER.test(c) && before && after && !ASCII.test(before) && !ASCII.test(after) && !JOINER.test(after)) continue;
    if (EMOJI_SELECTOR.test(c) && before && (PICTOGRAPHIC.test(before) || (c === "\ufe0f" && after === "\u20e3")))
      continue;
    return c;
  }
  return null;
}

const codePointName = (c: string) => `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
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
  if (CONTROL.test(input))
    throw new PathError(input, "control characters (including NUL and line breaks) are not allowed");
  // Surrounding whitespace is a slip of the caller ("/notes.md "), not part of the name.
  const trimmed = input.trim();
  if (trimmed === "") {
    if (emptyIsRoot) return { path: "/", trailingSlash: true };
    throw new PathError(input, "path is empty");
  }
  if (!trimmed.isWellFormed()) throw new PathError(input, "path contains an unpaired UTF-16 surrogate");
  const hidden = hiddenCharacter(trimmed);
  if (hidden) {
    throw new PathError(
      input,
      `invisible characters (${codePointName(hidden)}: Unicode default-ignorable, e.g. bidirectional controls, zero-width spaces, soft hyphens) are not allowed`,
    );
  }
  const nonchar = NONCHARACTER.exec(trimmed);
  if (nonchar) throw new PathError(input, `Unicode noncharacters (${codePointName(nonchar[0])}) are not allowed`);
  if (WINDOWS_DRIVE.test(trimmed))
    throw new PathError(input, "Windows drive paths are not supported; use /-separated absolute paths");
  if (trimmed.includes("\\"))
    throw new PathError(input, "backslashes are not allowed; use '/' to separate directories");
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
    const error = new PathError(
      input as string,
      path === "/" ? "the root is a directory, not a file" : "a file path cannot end with '/'",
    );
    error.namesDirectory = true;
    throw error;
  }
  return path;
}

/** The directory prefix of a normalised path: "/" stays "/", "/a" becomes "/a/". */
export function dirPrefix(path: string): string {
  return path === "/" ? "/" : path + "/";
}

/** Byte-wise order of UTF-8 paths (PostgreSQL's COLLATE "C"): the order rewinds write paths in. */
export function compareBytewise(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** Whether a normalised path is one of `scope`'s paths or lies below one (null: everything). */
export function inScope(path: string, scope: string[] | null): boolean {
  return scope === null || scope.some((s) => s === "/" || path === s || path.startsWith(`${s}/`));
}

/** Workspaces are compared exactly; names are printable, 1-128 characters. */
export function validateWorkspace(name: unknown): string {
  if (
    typeof name !== "string" ||
    name.length === 0 ||
    name.length > 128 ||
    CONTROL.test(name) ||
    !name.isWellFormed()
  ) {
    throw new Error(setupErrors.invalidWorkspace(name, "use 1-128 printable characters"));
  }
  return name;
}

/** The per-file code of upload/download for a path that failed normalizeFilePath(). */
export function fileErrorCode(e: unknown): "is_directory" | "invalid_path" {
  return e instanceof PathError && e.namesDirectory ? "is_directory" : "invalid_path";
}

/** The directories a normalised path lies in, outermost first, without the root: "/a/b/c" → ["/a", "/a/b"]. */
export function ancestorsOf(path: string): string[] {
  const out: string[] = [];
  for (let i = path.indexOf("/", 1); i !== -1; i = path.indexOf("/", i + 1)) out.push(path.slice(0, i));
  return out;
}

/** Why an upload refuses one of its own paths: it lies under another (a file), or is a directory of others. */
export interface BatchClash {
  code: "invalid_path" | "is_directory";
  /** The path in the way: the file it would lie under, or the path itself when it is a directory. */
  conflict: string;
}

/**
 * The file/directory rule inside one batch of normalised paths, in input order, as if they were
 * written one by one: a path is refused when an earlier accepted path is a file above it
 * ("invalid_path") or lies below it, making it a directory ("is_directory"). The same path twice
 * is no clash (the last content wins). Clashes with what is already stored are the backend's to
 * find.
 */
export function batchClashes(paths: Iterable<string>): Map<string, BatchClash> {
  const files = new Set<string>();
  const directories = new Set<string>();
  const clashes = new Map<string, BatchClash>();
  for (const path of paths) {
    if (files.has(path) || clashes.has(path)) continue;
    const ancestors = ancestorsOf(path);
    const parent = ancestors.find((dir) => files.has(dir));
    if (parent !== undefined) clashes.set(path, { code: "invalid_path", conflict: parent });
    else if (directories.has(path)) clashes.set(path, { code: "is_directory", conflict: path });
    else {
      files.add(path);
      for (const dir of ancestors) directories.add(dir);
    }
  }
  return clashes;
}
