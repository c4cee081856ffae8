/**
 * grep -r in the store. A recursive grep through the filesystem adapter would list every
 * directory and download every file; here the pattern goes to the backend's search() (one query
 * on PostgreSQL, the backend's own scan on S3) and only the matching lines come back. The output
 * is GNU grep's: `name:line:text` with names spelled from the operand as given ("./src/a.ts" for
 * ".", "src/a.ts" for "src/" or for no operand), hidden files searched, -c counting every file.
 * Files come in the order of a walk that lists each directory sorted (GNU's order is the
 * directory's on-disk order, which no two filesystems share).
 *
 * What this path cannot reproduce exactly runs just-bash's grep over the adapter instead: any
 * command grep-options.ts does not accept, a pattern grep-pattern.ts does not translate or the
 * store refuses, --include/--exclude globs fnmatch.ts does not translate, and an operand outside
 * the workspace (/dev, /bin). Binary files (by type) are not searched by the store, where GNU grep
 * would report "binary file matches".
 */
import { type Command, defineCommand, type ExecResult } from "just-bash";
import type { DeepAgentsBackend } from "../core/interface.js";
import { errors, type GrepMatch } from "../protocol.js";
import { fnmatchRegex } from "./fnmatch.js";
import { type GrepRequest, parseGrep } from "./grep-options.js";
import { translatePattern } from "./grep-pattern.js";
import { HOST_MATCH_TIMEOUT, hostCall, hostRegexTests } from "./host-call.js";
import { isMissing } from "./posix-error.js";
import { escapeRegex } from "./regex-text.js";
import { compareTreeOrder, isWithin, resolveShellPath } from "./shell-paths.js";
import type { SystemPaths } from "./system-paths.js";

type Context = Parameters<Command["execute"]>[1];

/** A place to search: a directory or a file, and how its files are named in the output. */
interface Target {
  operand: string | null;
  path: string;
  isDirectory: boolean;
}

/** The query for the store and the exact test of a returned line (-w, which the store cannot say). */
interface Query {
  pattern: string;
  regex: boolean;
  lineTest: RegExp | null;
}

/** grep, egrep or fgrep (`preset` is the option the name implies) with the server-side path. */
export function grepCommand(backend: DeepAgentsBackend, system: SystemPaths, name = "grep", preset?: string): Command {
  return defineCommand(name, async (args, ctx) => {
    const request = parseGrep(preset ? [preset, ...args] : args);
    const result = request && (await searchInStore(backend, system, request, ctx));
    return result ?? ctx.origCommand!(args);
  });
}

/** The result, or null when the command must run as just-bash's grep. */
async function searchInStore(
  backend: DeepAgentsBackend,
  system: SystemPaths,
  request: GrepRequest,
  ctx: Context,
): Promise<ExecResult | null> {
  const query = buildQuery(request);
  const filters = [request.include, request.exclude, request.excludeDir].map((globs) =>
    globs.map((g) => fnmatchRegex(g)),
  );
  if (!query || filters.some((f) => f.includes(null))) return null;
  const [include, exclude, excludeDir] = filters as RegExp[][];
  const operands = request.operands.length > 0 ? request.operands : [null];
  if (operands.some((o) => o !== null && system.owns(resolveShellPath(ctx.cwd, o)))) return null;

  let stdout = "";
  let stderr = "";
  let matched = false;
  let failed = false;
  const targets: Target[] = [];
  for (const operand of operands) {
    const path = resolveShellPath(ctx.cwd, operand ?? ".");
    try {
      targets.push({ operand, path, isDirectory: (await ctx.fs.stat(path)).isDirectory });
    } catch (e) {
      failed = true;
      if (!request.noMessages)
        stderr += `grep: ${operand}: ${isMissing(e) ? "No such file or directory" : message(e)}\n`;
    }
  }
  const showNames =
    request.filenames === "always" ||
    (request.filenames === "default" && (operands.length > 1 || targets.some((t) => t.isDirectory)));
  const cap = ctx.limits.maxArrayElements;

  for (const target of targets) {
    const name = (path: string) => displayName(target, path);
    const basename = (path: string) => path.slice(path.lastIndexOf("/") + 1);
    const wanted = (path: string) =>
      (include.length === 0 || include.some((g) => g.test(basename(path)))) &&
      !exclude.some((g) => g.test(basename(path))) &&
      !excludedDirectory(target, path, excludeDir);
    if (target.isDirectory && target.operand !== null && excludeDir.some((g) => g.test(basename(target.path)))) {
      continue;
    }
    const answer = await hostCall(() =>
      backend.search({
        pattern: query.pattern,
        regex: query.regex,
        ignoreCase: request.ignoreCase,
        path: target.path,
        glob: storeGlob(request.include),
        maxCount: cap + 1,
      }),
    );
    if (answer.error) {
      if (answer.error.startsWith(errors.invalidRegex(query.pattern, ""))) return null;
      return { stdout, stderr: `${stderr}grep: ${answer.error.replace(/^Error: /, "")}\n`, exitCode: 2 };
    }
    const matches = answer.matches ?? [];
    if (answer.truncated || matches.length > cap) {
      return { stdout, stderr: `${stderr}grep: more than ${cap} matching lines; narrow the search\n`, exitCode: 2 };
    }
    // (-w and the --include/--exclude globs are JavaScript regexes: tested under the time limit.)
    const kept = hostRegexTests(ctx, () =>
      matches.filter((m) => isWithin(target.path, m.path) && wanted(m.path) && (query.lineTest?.test(m.text) ?? true)),
    );
    if (kept === null) return { stdout, stderr: `${stderr}grep: ${HOST_MATCH_TIMEOUT}\n`, exitCode: 2 };
    const byFile = groupByFile(kept, request.maxCount);
    if (byFile.size > 0) matched = true;
    if (request.quiet && matched) return { stdout: "", stderr: "", exitCode: 0 };
    if (request.count) {
      // Every file searched gets a count, 0 included: that needs the list of files too.
      const files = await filesOf(backend, target, wanted, ctx);
      if (typeof files === "string") return { stdout, stderr: `${stderr}grep: ${files}\n`, exitCode: 2 };
      for (const path of files) {
        const n = byFile.get(path)?.length ?? 0;
        stdout += showNames ? `${name(path)}:${n}\n` : `${n}\n`;
      }
      continue;
    }
    for (const [path, lines] of byFile) {
      if (request.filesWithMatches) {
        stdout += `${name(path)}\n`;
        continue;
      }
      const prefix = showNames ? `${name(path)}:` : "";
      for (const m of lines) stdout += `${prefix}${request.lineNumbers ? `${m.line}:` : ""}${m.text}\n`;
    }
  }
  if (request.quiet) return { stdout: "", stderr, exitCode: failed ? 2 : 1 };
  return { stdout, stderr, exitCode: failed ? 2 : matched ? 0 : 1 };
}

/** The store's query for the patterns, or null when one has no exact translation. */
function buildQuery(request: GrepRequest): Query | null {
  const sources = request.patterns.map((p) => translatePattern(p, request.syntax));
  if (sources.includes(null)) return null;
  const single = request.patterns.length === 1 ? request.patterns[0] : null;
  const literal = single !== null && single !== "" && sources[0] === escapeRegex(single);
  let body = sources.length === 1 ? sources[0]! : sources.map((s) => `(?:${s})`).join("|");
  if (request.lineRegexp) body = `^(?:${body})$`;
  // -w: GNU's word characters are letters, digits and "_" of any script; the store's regex
  // language has no \p{...}, so it finds the lines without the boundaries and they are tested here.
  const lineTest =
    request.wordRegexp && !request.lineRegexp
      ? new RegExp(`(?<![\\p{L}\\p{N}_])(?:${body})(?![\\p{L}\\p{N}_])`, request.ignoreCase ? "iu" : "u")
      : null;
  if (literal && !request.lineRegexp) return { pattern: single, regex: false, lineTest };
  return { pattern: body === "" ? "(?:)" : body, regex: true, lineTest };
}

/** A single simple --include glob narrows the store's search; the exact test is still made here. */
function storeGlob(include: string[]): string | null {
  return include.length === 1 && /^[\w.*?-]+$/.test(include[0]) ? include[0] : null;
}

/** Matches by file, files in walk order, lines in order, at most `maxCount` per file. */
function groupByFile(matches: GrepMatch[], maxCount: number | null): Map<string, GrepMatch[]> {
  const files = new Map<string, GrepMatch[]>();
  const sorted = [...matches].sort((a, b) => compareTreeOrder(a.path, b.path) || a.line - b.line);
  for (const m of sorted) {
    const lines = files.get(m.path) ?? [];
    if (maxCount === null || lines.length < maxCount) lines.push(m);
    files.set(m.path, lines);
  }
  for (const [path, lines] of files) if (lines.length === 0) files.delete(path);
  return files;
}

/** The files -c reports on: every file of the target that the filters keep, in walk order (or the store's error). */
async function filesOf(
  backend: DeepAgentsBackend,
  target: Target,
  wanted: (path: string) => boolean,
  ctx: Context,
): Promise<string[] | string> {
  if (!target.isDirectory) return wanted(target.path) ? [target.path] : [];
  const listing = await hostCall(() => backend.glob("**/*", target.path));
  if (listing.error) return listing.error.replace(/^Error: /, "");
  const kept = hostRegexTests(ctx, () =>
    (listing.files ?? []).map((f) => f.path).filter((p) => !p.endsWith("/") && isWithin(target.path, p) && wanted(p)),
  );
  return kept === null ? HOST_MATCH_TIMEOUT : kept.sort(compareTreeOrder);
}

/** GNU skips a directory below an operand whose name matches --exclude-dir. */
function excludedDirectory(target: Target, path: string, excludeDir: RegExp[]): boolean {
  if (excludeDir.length === 0 || !target.isDirectory) return false;
  const below = path.slice(target.path === "/" ? 1 : target.path.length + 1).split("/");
  return below.slice(0, -1).some((dir) => excludeDir.some((g) => g.test(dir)));
}

/** A file's name as GNU grep prints it: the operand as typed, then the path below it. */
function displayName(target: Target, path: string): string {
  if (!target.isDirectory) return target.operand ?? path;
  const below = path.slice(target.path === "/" ? 1 : target.path.length + 1);
  if (target.operand === null) return below;
  const base = target.operand.replace(/\/+$/, "");
  return `${base === "" ? "" : base}/${below}`;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
