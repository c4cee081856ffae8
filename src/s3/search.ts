/**
 * grep, search and glob on S3, in this process: S3 cannot search server-side, so the candidates
 * are listed, texts fetched (the ETag-keyed cache first) in path order a bounded number at a
 * time, and lines tested as they stream in, stopping at the cap. Glob filtering and regular
 * expressions run under a deadline (bounded.ts): a catastrophically backtracking pattern returns
 * an error instead of blocking the process. Literal tests are linear and run unbounded.
 */
import { Deadline } from "../bounded.js";
import { orderedFetches } from "../concurrency.js";
import type { LineQuery } from "../core/backend.js";
import type { CompiledGlob } from "../glob.js";
import { matchesBasename } from "../glob.js";
import { basename, getMimeType, isTextMimeType } from "../mime.js";
import { dirPrefix, type NormalizedPath } from "../paths.js";
import type { FileInfo, GrepMatch } from "../protocol.js";
import { compileLineTest } from "../regex/index.js";
import { containsLiteral, type LineTest, matchingLines } from "../text.js";
import { type Listed, type ObjectStore, viewOf } from "./objects.js";

/** A compiled search: the line test, and whether it must run under the deadline (a regex). */
export interface S3Matcher {
  test: LineTest;
  bounded: boolean;
}

/** The regex language of src/regex/ with the same refusals as on PostgreSQL; a case-folded or exact literal. */
export function compileS3Matcher(pattern: string, regex: boolean, ignoreCase: boolean): S3Matcher {
  if (regex) return { test: compileLineTest(pattern, ignoreCase), bounded: true };
  if (ignoreCase) {
    const folded = pattern.toLowerCase();
    return { test: (line) => line.toLowerCase().includes(folded), bounded: false };
  }
  return { test: containsLiteral(pattern), bounded: false };
}

/**
 * micromatch's test for a compiled glob (dot: true, braces): the path equal to the pattern, or
 * its regular expression. Compiled once per call, not once per candidate.
 */
function globTest(compiled: CompiledGlob): (subject: string) => boolean {
  const re = new RegExp(compiled.regex);
  return (subject) => subject === compiled.pattern || re.test(subject);
}

/** Candidates of grep/glob: exactly `path` when it names an object, else its subtree. */
async function scopeObjects(
  store: ObjectStore,
  scope: NormalizedPath,
  listPrefix: string,
): Promise<{ objects: Listed[]; exact: boolean; dir: string }> {
  const dir = dirPrefix(scope.path);
  const [exact, under] = await Promise.all([
    scope.path === "/" || scope.trailingSlash ? null : store.head(store.key(scope.path)),
    store.list(store.key(dir) + listPrefix),
  ]);
  if (exact) return { objects: [exact], exact: true, dir };
  return { objects: under.objects, exact: false, dir };
}

async function cachedText(store: ObjectStore, o: Listed): Promise<string | null> {
  const cache = store.shared.cache;
  const cached = cache.get(o.key, o.etag);
  if (cached !== undefined) return cached;
  const object = await store.get(o.key, o.path);
  if (!object) return null; // deleted since the listing
  const { text } = viewOf(o.path, object);
  if (text !== null) cache.set(o.key, object.etag, text, object.bytes.length);
  return text;
}

/**
 * grep/search: every matching line, file by file in path order, as the texts arrive. The time
 * budget does not run while the consumer holds a match (a stream's rule, as on PostgreSQL).
 */
export async function* streamLines(store: ObjectStore, query: LineQuery<S3Matcher>): AsyncGenerator<GrepMatch[]> {
  const { matcher, scope, glob } = query;
  const deadline = new Deadline(query.timeoutMs);
  const filter = glob ? globTest(glob) : null;
  const { objects, exact, dir } = await scopeObjects(store, scope, "");
  const onBasename = exact || (glob !== null && matchesBasename(glob.pattern));
  const candidates = deadline.run(() =>
    objects.filter((o) => {
      if (!isTextMimeType(getMimeType(o.path))) return false;
      if (!filter) return true;
      return filter(onBasename ? basename(o.path) : o.path.slice(dir.length));
    }),
  );
  for await (const [text, o] of orderedFetches(candidates, store.shared.concurrency, (o) => cachedText(store, o))) {
    if (text === null) continue;
    const found = matcher.bounded
      ? deadline.run(() => matchingLines(text, matcher.test))
      : matchingLines(text, matcher.test);
    if (found.length === 0) continue;
    const paused = Date.now();
    yield found.map((m) => ({ path: o.path, ...m })); // a file's matches at a time
    deadline.postpone(Date.now() - paused);
  }
}

/** streamLines() collected, stopping at the limit (no downloads past the cap). */
export async function findLines(store: ObjectStore, query: LineQuery<S3Matcher>): Promise<GrepMatch[]> {
  const matches: GrepMatch[] = [];
  if (query.limit === 0) return matches;
  for await (const batch of streamLines(store, query)) {
    for (const match of batch) if (matches.push(match) === query.limit) return matches;
  }
  return matches;
}

/** Lists only the glob's literal leading directory; newest first. */
export async function globFiles(
  store: ObjectStore,
  compiled: CompiledGlob,
  scope: NormalizedPath,
  timeoutMs: number,
): Promise<FileInfo[]> {
  const { objects, exact, dir } = await scopeObjects(store, scope, compiled.base);
  const matches = globTest(compiled);
  const found = new Deadline(timeoutMs).run(() =>
    objects.filter((o) => matches(exact ? basename(o.path) : o.path.slice(dir.length))),
  );
  return found
    .sort((a, b) => b.modified.getTime() - a.modified.getTime() || (a.path < b.path ? -1 : 1))
    .map((o) => ({ path: o.path, is_dir: false, size: o.size, modified_at: o.modified.toISOString() }));
}
