/**
 * Globs compiled for the server. deepagents matches globs with micromatch (`dot: true`, braces
 * on); we compile the same pattern with the same library to a regular expression that
 * PostgreSQL's ARE engine reads the same way, plus the glob's fixed leading directory, which
 * becomes an index range so only that subtree is scanned.
 */
import micromatch from "micromatch";
import { displayInput, typeName } from "./paths.js";

export const GLOB_OPTIONS = { dot: true, nobrace: false } as const;

/**
 * Bounds on what a caller (a model) may hand us. picomatch's parser takes time that grows
 * steeply with nesting ("+(+(+(...)))" 800 deep: a second; 20,000 deep: minutes), so depth and
 * length are capped before compiling. Wildcards alone cannot blow up the compiled pattern.
 */
export const MAX_GLOB_LENGTH = 4096;
export const MAX_GLOB_NESTING = 32;

export interface CompiledGlob {
  /** The pattern as given: picomatch also accepts a path equal to the pattern itself. */
  pattern: string;
  /** Anchored regex source, valid as a PostgreSQL ARE. */
  regex: string;
  /**
   * Leading literal directory of the pattern ("src/lib" for "src/lib/**\/*.ts"), or "" when the
   * pattern starts with a wildcard. Every match starts with `base` followed by "/" or the end.
   */
  base: string;
}

export class GlobError extends Error {
  /** The pattern as shown in messages (control characters escaped, long patterns cut). */
  readonly pattern: string;

  constructor(
    pattern: string,
    readonly reason: string,
  ) {
    const shown = displayInput(pattern);
    super(`Invalid glob pattern '${shown}': ${reason}`);
    this.pattern = shown;
    this.name = "GlobError";
  }
}

export function compileGlob(input: unknown): CompiledGlob {
  if (typeof input !== "string") throw new GlobError(`<${typeName(input)}>`, "pattern must be a string");
  if (input === "") throw new GlobError(input, "pattern is empty");
  if (/[\u0000-\u001f\u007f]/.test(input)) throw new GlobError(input, "control characters are not allowed");
  if (input.length > MAX_GLOB_LENGTH)
    throw new GlobError(input, `pattern is longer than ${MAX_GLOB_LENGTH} characters`);
  if (!input.isWellFormed()) throw new GlobError(input, "pattern contains an unpaired UTF-16 surrogate");
  if (nesting(input) > MAX_GLOB_NESTING) {
    throw new GlobError(input, `braces, brackets or parentheses are nested more than ${MAX_GLOB_NESTING} deep`);
  }
  // Stored paths are NFC (paths.ts): the pattern must be too, or "café" would not match "café".
  const pattern = input.normalize("NFC");
  let re: RegExp;
  try {
    re = micromatch.makeRe(pattern, GLOB_OPTIONS);
  } catch (e) {
    throw new GlobError(pattern, (e as Error).message);
  }
  if (re.flags !== "") throw new GlobError(pattern, `unsupported regex flags '${re.flags}'`);
  return { pattern, regex: re.source, base: literalBase(pattern) };
}

/** Deepest nesting of (, { and [ (backslash escapes skipped). */
function nesting(pattern: string): number {
  let depth = 0;
  let deepest = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") i++;
    else if (c === "(" || c === "{" || c === "[") deepest = Math.max(deepest, ++depth);
    else if ((c === ")" || c === "}" || c === "]") && depth > 0) depth--;
  }
  return deepest;
}

/** The fixed base only when it is a plain directory path we can turn into a range safely. */
function literalBase(pattern: string): string {
  const scan = micromatch.scan(pattern, GLOB_OPTIONS);
  if (!scan.isGlob || scan.negated || scan.base === "" || scan.base.includes("\\")) return "";
  const segments = scan.base.split("/");
  if (segments.some((s) => s === "" || s === "." || s === "..")) return "";
  return scan.base;
}

/** deepagents' rule for grep's glob filter: a pattern without "/" matches the basename. */
export function matchesBasename(pattern: string): boolean {
  return !pattern.includes("/");
}
