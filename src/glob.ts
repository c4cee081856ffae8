/**
 * Globs compiled for the server. deepagents matches globs with micromatch (`dot: true`, braces
 * on); we compile the same pattern with the same library to a regular expression that
 * PostgreSQL's ARE engine reads the same way, plus the glob's fixed leading directory, which
 * becomes an index range so only that subtree is scanned.
 */
import micromatch from "micromatch";

export const GLOB_OPTIONS = { dot: true, nobrace: false } as const;

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
  constructor(readonly pattern: string, readonly reason: string) {
    super(`Invalid glob pattern '${pattern}': ${reason}`);
    this.name = "GlobError";
  }
}

export function compileGlob(pattern: unknown): CompiledGlob {
  if (typeof pattern !== "string" || pattern === "") throw new GlobError(String(pattern), "pattern is empty");
  if (/[\u0000-\u001f\u007f]/.test(pattern)) throw new GlobError(pattern, "control characters are not allowed");
  let re: RegExp;
  try {
    re = micromatch.makeRe(pattern, GLOB_OPTIONS);
  } catch (e) {
    throw new GlobError(pattern, (e as Error).message);
  }
  if (re.flags !== "") throw new GlobError(pattern, `unsupported regex flags '${re.flags}'`);
  return { pattern, regex: re.source, base: literalBase(pattern) };
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
