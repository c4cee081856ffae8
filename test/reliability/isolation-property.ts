/**
 * Workspace isolation as a property (issue 7, part 2), shared by the PostgreSQL and S3 tests.
 *
 * Every workspace gets a seeded random sequence of operations (write, edit, upload, delete, ls,
 * read, readRaw, stat, grep, search, glob, download), all workspaces at once. All of them use the
 * same paths and the same words, so data leaking across a boundary would match; what differs is a
 * tag on every line naming the workspace (`#W07#`). Each workspace keeps a model of what it wrote,
 * and every result must equal what the model predicts — a foreign file in an `ls`, a foreign line
 * in a `grep`, a foreign delete, all show up as a difference. Greps for other workspaces' tags
 * must find nothing. The caller checks storage itself (rows, keys) and the change feed against the
 * models afterwards.
 */
import * as assert from "uvu/assert";
import micromatch from "micromatch";
import type { BackendProtocolV2 } from "deepagents";
import type { SearchOptions, SearchResult } from "../../src/index.js";
import { rng } from "../helpers/random.js";

/**
 * Names chosen to break a careless implementation: prefixes of one another (`acme`,
 * `acme-corp`), LIKE wildcards and the escape character with decoys they would match if used as a
 * pattern (`acme_`/`acmeZ`, `ac%me`/`acZZme`, `a\b`/`ab`), a slash (a key prefix on S3), case,
 * a trailing space, unicode in two normalisation forms (names are compared exactly, never
 * normalised: NFC `café` and NFD `café` are two workspaces) and a 128-character name.
 */
export function namedWorkspaces(longName: string): string[] {
  return [
    "acme",
    "acme-corp",
    "acme_",
    "acmeZ",
    "ac%me",
    "acZZme",
    "a\\b",
    "ab",
    "a\\\\b",
    "acme/x",
    "ACME",
    "acme ",
    "ワークスペース",
    "caf\u00e9",
    "cafe\u0301",
    longName,
  ];
}

export const FILES = [
  "/a.txt",
  "/b.md",
  "/dir/c.txt",
  "/dir/d.md",
  "/dir/sub/e.txt",
  "/dir2/f.txt",
  "/g.json",
  "/dir/%_x.txt",
] as const;
const DIRS = ["/", "/dir", "/dir/sub", "/dir2", "/nope"] as const;
const WORDS = ["alpha", "beta", "gamma", "Delta", "shared"] as const;
const GLOBS = ["**", "**/*.txt", "*.md", "dir/**", "**/%_*"] as const;

export type Backend = BackendProtocolV2 & {
  readonly workspace: string;
  search(options: SearchOptions): Promise<SearchResult>;
  stat(path: string): Promise<{ error?: string; data?: { size: number } }>;
};

export const tagOf = (index: number) => `#W${String(index).padStart(2, "0")}#`;

/** What one workspace's run did, for the caller's storage and change-feed checks. */
export interface WorkspaceRun {
  workspace: string;
  /** Final content by path (the model). */
  model: Map<string, string>;
  /** File changes the run caused (one per file written, edited, uploaded or deleted). */
  changes: number;
  /** Every path that ever existed in the workspace. */
  touched: Set<string>;
  ops: number;
}

const under = (dir: string) => (dir === "/" ? "/" : dir + "/");

function expectedLs(model: Map<string, string>, dir: string): string[] {
  const prefix = under(dir);
  const out = new Set<string>();
  for (const [path, content] of model) {
    if (!path.startsWith(prefix)) continue;
    const rest = path.slice(prefix.length);
    const slash = rest.indexOf("/");
    out.add(slash === -1 ? `${path} file ${Buffer.byteLength(content)}` : `${prefix}${rest.slice(0, slash)}/ dir 0`);
  }
  return [...out].sort();
}

function expectedGrep(model: Map<string, string>, dir: string, test: (line: string) => boolean): string[] {
  const out: string[] = [];
  for (const [path, content] of model) {
    if (!(path === dir || path.startsWith(under(dir)))) continue;
    const lines = content.split("\n");
    if (content.endsWith("\n")) lines.pop();
    lines.forEach((line, i) => {
      if (test(line)) out.push(`${path}:${i + 1}:${line}`);
    });
  }
  return out.sort();
}

const countOf = (text: string, word: string) => text.split(word).length - 1;

/**
 * Runs `ops` random operations in `b` (a workspace's backend), checking every result against the
 * model. `index` is the workspace's tag number, `tags` every workspace's tag (to grep for foreign ones).
 */
export async function runWorkspace(
  b: Backend,
  index: number,
  seed: number,
  ops: number,
  tags: string[],
): Promise<WorkspaceRun> {
  const r = rng(seed * 7919 + index);
  const tag = tagOf(index);
  const model = new Map<string, string>();
  const touched = new Set<string>();
  let changes = 0;
  const text = () => {
    const lines = Array.from({ length: 1 + r.int(4) }, () => `${r.pick(WORDS)} ${r.pick(WORDS)} ${tag}`);
    return lines.join("\n") + "\n";
  };
  for (let step = 0; step < ops; step++) {
    const op = r.pick([
      "write",
      "write",
      "write",
      "edit",
      "upload",
      "delete",
      "ls",
      "read",
      "readRaw",
      "stat",
      "grep",
      "grepForeign",
      "search",
      "glob",
      "download",
    ] as const);
    const at = `workspace ${JSON.stringify(b.workspace)} (${tag}) step ${step} ${op}`;
    const path = r.pick(FILES);
    switch (op) {
      case "write": {
        const content = text();
        const res = await b.write(path, content);
        assert.is(res.error, undefined, at);
        model.set(path, content);
        touched.add(path);
        changes++;
        break;
      }
      case "upload": {
        const paths = [...new Set([path, r.pick(FILES)])];
        const contents = paths.map(() => text());
        const res = await b.uploadFiles!(paths.map((p, i) => [p, Buffer.from(contents[i])]));
        assert.equal(
          res.map((x) => x.error),
          paths.map(() => null),
          at,
        );
        paths.forEach((p, i) => {
          model.set(p, contents[i]);
          touched.add(p);
        });
        changes += paths.length;
        break;
      }
      case "edit": {
        const oldWord = r.pick(WORDS);
        const newWord = r.pick(WORDS.filter((w) => w !== oldWord));
        const res = await b.edit(path, oldWord, newWord, true);
        const current = model.get(path);
        if (current === undefined) {
          assert.is(res.error, `Error: File '${path}' not found`, at);
        } else if (countOf(current, oldWord) === 0) {
          assert.is(res.error, `Error: String not found in file: '${oldWord}'`, at);
        } else {
          assert.is(res.error, undefined, at);
          assert.is(res.occurrences, countOf(current, oldWord), at);
          model.set(path, current.split(oldWord).join(newWord));
          changes++;
        }
        break;
      }
      case "delete": {
        const target = r.int(4) === 0 ? r.pick(DIRS) : path;
        const doomed = [...model.keys()].filter((p) => target === "/" || p === target || p.startsWith(target + "/"));
        const res = await b.delete!(target);
        if (doomed.length === 0) assert.is(res.error, `Error: File '${target}' not found`, at);
        else assert.is(res.error, undefined, at);
        for (const p of doomed) model.delete(p);
        changes += doomed.length;
        break;
      }
      case "ls": {
        const dir = r.pick(DIRS);
        const res = await b.ls(dir);
        assert.is(res.error, undefined, at);
        assert.equal(
          res.files!.map((f) => `${f.path} ${f.is_dir ? "dir" : "file"} ${f.size}`).sort(),
          expectedLs(model, dir),
          at,
        );
        break;
      }
      case "read": {
        const res = await b.read(path, 0, 100);
        const content = model.get(path);
        if (content === undefined) assert.is(res.error, `File '${path}' not found`, at);
        else assert.is(res.content, content, at); // the window covers the whole file
        break;
      }
      case "readRaw": {
        const res = await b.readRaw(path);
        const content = model.get(path);
        if (content === undefined) assert.is(res.error, `File '${path}' not found`, at);
        else assert.is(res.data!.content, content, at);
        break;
      }
      case "stat": {
        const res = await b.stat(path);
        const content = model.get(path);
        if (content === undefined) assert.is(res.error, `File '${path}' not found`, at);
        else assert.is(res.data!.size, Buffer.byteLength(content), at);
        break;
      }
      case "grep":
      case "grepForeign": {
        const pattern = op === "grep" ? r.pick([...WORDS, tag, "a"]) : r.pick(tags.filter((t) => t !== tag));
        const dir = r.pick(DIRS);
        const res = await b.grep(pattern, dir);
        assert.is(res.error, undefined, at);
        assert.equal(
          res.matches!.map((m) => `${m.path}:${m.line}:${m.text}`).sort(),
          expectedGrep(model, dir, (l) => l.includes(pattern)),
          at,
        );
        break;
      }
      case "search": {
        const pattern = r.pick(["DELTA", "alpha", "#w", "SHARED"]);
        const res = await b.search({ pattern, ignoreCase: true });
        assert.is(res.error, undefined, at);
        const lower = pattern.toLowerCase();
        assert.equal(
          res.matches!.map((m) => `${m.path}:${m.line}:${m.text}`).sort(),
          expectedGrep(model, "/", (l) => l.toLowerCase().includes(lower)),
          at,
        );
        break;
      }
      case "glob": {
        const pattern = r.pick(GLOBS);
        const res = await b.glob(pattern, "/");
        assert.is(res.error, undefined, at);
        const expected = [...model.keys()].filter((p) => micromatch.isMatch(p.slice(1), pattern, { dot: true })).sort();
        assert.equal(res.files!.map((f) => f.path).sort(), expected, at);
        break;
      }
      case "download": {
        const paths = [path, r.pick(FILES), r.pick(FILES)];
        const res = await b.downloadFiles!(paths);
        assert.equal(
          res.map((x) => (x.error ? x.error : Buffer.from(x.content!).toString("utf8"))),
          paths.map((p) => model.get(p) ?? "file_not_found"),
          at,
        );
        break;
      }
    }
  }
  return { workspace: b.workspace, model, changes, touched, ops };
}

/** The whole workspace as the backend sees it, compared with the model. */
export async function assertWorkspaceEquals(b: Backend, run: WorkspaceRun): Promise<void> {
  const at = `final state of ${JSON.stringify(b.workspace)}`;
  const listed = await b.glob("**", "/");
  assert.equal(listed.files!.map((f) => f.path).sort(), [...run.model.keys()].sort(), at);
  const paths = [...FILES];
  const downloads = await b.downloadFiles!(paths);
  assert.equal(
    downloads.map((x) => (x.error ? x.error : Buffer.from(x.content!).toString("utf8"))),
    paths.map((p) => run.model.get(p) ?? "file_not_found"),
    at,
  );
}
