/**
 * Hostile input shared by the PostgreSQL and S3 hostile-input tests: paths with what each must
 * become (a normalised path, a directory, or a refusal with a reason), SQL metacharacters, glob
 * bombs, and the checks every protocol operation's answer must pass. Backend-neutral: only
 * BackendProtocolV2 methods (and search()) are called.
 */
import * as assert from "uvu/assert";
import type { BackendProtocolV2 } from "deepagents";

/** What a hostile path must become. */
export type Expect =
  | { file: string } // accepted: this normalised file path
  | { dir: string } // a directory (the root, or a trailing slash): not a file, fine for ls
  | { refused: RegExp }; // refused everywhere with this reason

export interface HostileCase {
  label: string;
  input: unknown;
  expect: Expect;
  /** "" and blanks mean the root for ls/grep/glob (they are refused for file operations). */
  emptyIsRoot?: boolean;
}

const TRAVERSAL = /path traversal outside the root is not allowed/;
const CONTROL = /control characters \(including NUL and line breaks\) are not allowed/;
const INVISIBLE = /invisible characters \(U\+[0-9A-F]{4,6}: Unicode default-ignorable/;
const NONCHARACTER = /Unicode noncharacters \(U\+[0-9A-F]{4,6}\) are not allowed/;
const BACKSLASH = /backslashes are not allowed; use '\/' to separate directories/;
const DRIVE = /Windows drive paths are not supported/;
const WHITESPACE = /starts or ends with whitespace/;
const SEGMENT = /a path segment is longer than 255 bytes/;
const LENGTH = /path is longer than 1024 bytes/;
const NOT_STRING = /path must be a string \(got \w+\)/;
const EMPTY = /path is empty/;
const SURROGATE = /unpaired UTF-16 surrogate/;

const file = (path: string) => ({ file: path });
const dir = (path: string) => ({ dir: path });
const refused = (reason: RegExp) => ({ refused: reason });

/** ≥ 100 hostile paths, each with the one outcome it must have on every backend. */
export function hostilePaths(): HostileCase[] {
  const cases: HostileCase[] = [];
  const add = (label: string, input: unknown, expect: Expect, extra: Partial<HostileCase> = {}) =>
    cases.push({ label, input, expect, ...extra });

  // `..` escapes, and `.`/`..` that stay inside
  add("dotdot relative", "../etc/passwd", refused(TRAVERSAL));
  add("dotdot absolute", "/../etc/passwd", refused(TRAVERSAL));
  add("dotdot after a dir", "/a/../../etc/passwd", refused(TRAVERSAL));
  add("dotdot deep", "/a/b/../../../x", refused(TRAVERSAL));
  add("dotdot alone", "..", refused(TRAVERSAL));
  add("slash dotdot", "/..", refused(TRAVERSAL));
  add("dotdot slash", "../", refused(TRAVERSAL));
  add("dotdot chain", "/../../../../../../../../../../etc/shadow", refused(TRAVERSAL));
  add("dotdot after many", "/a/b/c/../../../../root/.ssh/id_rsa", refused(TRAVERSAL));
  add("dotdot back to root", "/a/..", dir("/"));
  add("dotdot inside", "/a/b/../c.txt", file("/a/c.txt"));
  add("dot segments", "/./a/./b/./c.txt", file("/a/b/c.txt"));
  add("relative dot", "./x.txt", file("/x.txt"));
  add("dotdot then back in", "/a/b/c/../../../d.txt", file("/d.txt"));
  add("dotdot walk 2000", "/a/..".repeat(2000) + "/walked.txt", file("/walked.txt"));
  add("three dots is a name", "/.../x.txt", file("/.../x.txt"));
  add("four dots is a name", "/..../x.txt", file("/..../x.txt"));
  add("dotdot-prefixed name", "/..hidden", file("/..hidden"));
  add("hidden file", "/.git/config", file("/.git/config"));
  add("dotdot with space", "/.. /x", refused(WHITESPACE));
  add("space dotdot", "/ ../x", refused(WHITESPACE));
  // percent-encoded dots and slashes: literal characters, never decoded
  add("encoded dotdot", "/%2e%2e/%2e%2e/etc/passwd", file("/%2e%2e/%2e%2e/etc/passwd"));
  add("encoded dotdot upper", "/%2E%2E/x", file("/%2E%2E/x"));
  add("encoded slashes", "%2e%2e%2fetc%2fpasswd", file("/%2e%2e%2fetc%2fpasswd"));
  add("dotdot encoded slash", "/..%2f..%2fetc", file("/..%2f..%2fetc"));
  add("double-encoded", "/%252e%252e/x", file("/%252e%252e/x"));
  add("encoded NUL", "/a%00b.txt", file("/a%00b.txt"));
  add("overlong UTF-8 dots", "/%c0%ae%c0%ae/x", file("/%c0%ae%c0%ae/x"));
  add("encoded backslash", "/..%5c..%5cwindows", file("/..%5c..%5cwindows"));
  add("encoded slash alone", "/%2F", file("/%2F"));
  add("fullwidth dots", "/\uff0e\uff0e/x", file("/\uff0e\uff0e/x"));
  add("one-dot leaders", "/\u2024\u2024/x", file("/\u2024\u2024/x"));
  // NUL and control characters (every C0 code below, plus DEL, C1, line separators)
  add("NUL inside", "/a\u0000b", refused(CONTROL));
  add("NUL alone", "\u0000", refused(CONTROL));
  add("NUL before extension", "/a.txt\u0000.png", refused(CONTROL));
  add("NUL then dotdot", "/\u0000/../x", refused(CONTROL));
  for (let c = 1; c < 0x20; c++)
    add(`C0 control U+${c.toString(16).padStart(4, "0")}`, `/a${String.fromCharCode(c)}b`, refused(CONTROL));
  add("DEL", "/a\u007fb", refused(CONTROL));
  add("C1 NEL", "/a\u0085b", refused(CONTROL));
  add("C1 CSI", "/a\u009bb", refused(CONTROL));
  add("line separator", "/a\u2028b", refused(CONTROL));
  add("paragraph separator", "/a\u2029b", refused(CONTROL));
  add("tab only", "\t", refused(CONTROL));
  // invisible formatting
  add("RTL override", "/evil\u202etxt.sh", refused(INVISIBLE));
  add("RTL mark", "/a\u200fb", refused(INVISIBLE));
  add("LTR isolate", "/a\u2066b", refused(INVISIBLE));
  add("zero-width space", "/a\u200bb.txt", refused(INVISIBLE));
  add("word joiner", "/a\u2060b", refused(INVISIBLE));
  add("BOM inside", "/a\ufeffb", refused(INVISIBLE));
  add("zero-width joiner emoji", "/\u{1F469}\u200d\u{1F4BB}.md", file("/\u{1F469}\u200d\u{1F4BB}.md"));
  // every default-ignorable code point that makes a second "/config.json" (issue 11, item 14)
  for (const c of [
    0x00ad, 0x034f, 0x115f, 0x180b, 0x180e, 0x2061, 0x2063, 0x2064, 0x206a, 0x206f, 0x3164, 0xfe00, 0xfe0f, 0xffa0,
    0x1bca0, 0xe0001, 0xe0041, 0xe007f, 0xe0100,
  ]) {
    const ch = String.fromCodePoint(c);
    add(`default-ignorable U+${c.toString(16).toUpperCase()} in config.json`, `/config${ch}.json`, refused(INVISIBLE));
  }
  add("ZWJ between ASCII letters", "/config\u200d.json", refused(INVISIBLE));
  add("ZWNJ at the end of a name", "/config.json\u200c", refused(INVISIBLE));
  add(
    "ZWNJ in a Persian word",
    "/\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645.md",
    file("/\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645.md"),
  );
  add("emoji presentation selector after a pictograph", "/\u2764\ufe0f.md", file("/\u2764\ufe0f.md"));
  add("emoji ZWJ sequence with a selector", "/\u2764\ufe0f\u200d\u{1F525}.md", file("/\u2764\ufe0f\u200d\u{1F525}.md"));
  add("keycap", "/1\ufe0f\u20e3.md", file("/1\ufe0f\u20e3.md"));
  // noncharacters: XML 1.0 (S3's multi-object delete) cannot carry U+FFFE/U+FFFF (item 8)
  for (const c of [0xfffe, 0xffff, 0xfdd0, 0xfdef, 0x1fffe, 0x10ffff]) {
    add(`noncharacter U+${c.toString(16).toUpperCase()}`, `/a${String.fromCodePoint(c)}b.txt`, refused(NONCHARACTER));
  }
  // backslashes
  add("windows traversal", "..\\..\\etc\\passwd", refused(BACKSLASH));
  add("rooted backslash", "\\etc\\passwd", refused(BACKSLASH));
  add("backslash inside", "/a\\b", refused(BACKSLASH));
  add("UNC share", "\\\\server\\share\\x", refused(BACKSLASH));
  add("mixed separators", "/a/..\\..\\x", refused(BACKSLASH));
  add("long UNC", "\\\\?\\C:\\x", refused(BACKSLASH));
  // drive letters
  add("drive backslash", "C:\\Windows\\system32\\config", refused(DRIVE));
  add("drive slash", "C:/Windows", refused(DRIVE));
  add("drive lower", "c:/x", refused(DRIVE));
  add("drive alone", "C:", refused(DRIVE));
  add("drive relative", "D:relative.txt", refused(DRIVE));
  add("drive traversal", "C:\\..\\..\\x", refused(DRIVE));
  add("drive-like segment", "/C:/x.txt", file("/C:/x.txt"));
  add("file URL", "file:///etc/passwd", file("/file:/etc/passwd"));
  // long names (PostgreSQL and S3 both: segments ≤ 255 bytes, paths ≤ 1024 bytes)
  // (accepted long names stay under 233 bytes: s3rver keeps "<name>._S3rver_metadata.json" on disk)
  add("segment 230 bytes", "/" + "a".repeat(230), file("/" + "a".repeat(230)));
  add("segment 256 bytes", "/" + "a".repeat(256), refused(SEGMENT));
  add("segment 4 KiB", "/" + "a".repeat(4096), refused(SEGMENT));
  add("segment 64 KiB", "/" + "b".repeat(65536), refused(SEGMENT));
  add("segment 128 é (256 bytes)", "/" + "é".repeat(128), refused(SEGMENT));
  add("segment 64 emoji (256 bytes)", "/" + "😀".repeat(64), refused(SEGMENT));
  add("segment 57 emoji (228 bytes)", "/" + "😀".repeat(57), file("/" + "😀".repeat(57)));
  add("path 1005 bytes", ("/" + "a".repeat(200)).repeat(5), file(("/" + "a".repeat(200)).repeat(5)));
  add("path 1206 bytes", ("/" + "a".repeat(200)).repeat(6), refused(LENGTH));
  add("path 4 KiB of dirs", "/a".repeat(2048), refused(LENGTH));
  add("path 200 KiB of dirs", "/x".repeat(100_000) + "/f.txt", refused(LENGTH));
  // unicode normalisation: NFD and NFC name one file
  add("NFD é", "/cafe\u0301.txt", file("/caf\u00e9.txt"));
  add("NFC é", "/caf\u00e9.txt", file("/caf\u00e9.txt"));
  add("NFD hangul", "/\u1112\u1161\u11ab.txt", file("/\ud55c.txt"));
  add("angstrom sign", "/\u212b.txt", file("/\u00c5.txt"));
  add("A + ring", "/A\u030a.txt", file("/\u00c5.txt"));
  add("ligature kept", "/\ufb01le.txt", file("/\ufb01le.txt"));
  add("unpaired high surrogate", "/a\ud800b", refused(SURROGATE));
  add("unpaired low surrogate", "/\udc00.txt", refused(SURROGATE));
  // whitespace and slashes
  add("trailing space", "/notes.md ", file("/notes.md"));
  add("leading space", " /notes.md", file("/notes.md"));
  add("trailing NBSP", "/notes.md\u00a0", file("/notes.md"));
  add("space before slash", "/dir /a.txt", refused(WHITESPACE));
  add("space after slash", "/dir/ a.txt", refused(WHITESPACE));
  add("blank segment", "/a/ /b.txt", refused(WHITESPACE));
  add("trailing slash", "/notes.md/", dir("/notes.md"));
  add("trailing slashes", "/notes.md///", dir("/notes.md"));
  add("trailing slash dot", "/d/./", dir("/d"));
  add("double slash", "//", dir("/"));
  add("triple slash file", "///a.txt", file("/a.txt"));
  add("doubled inside", "/a//b//c.txt", file("/a/b/c.txt"));
  add("slash dot slash", "/./", dir("/"));
  add("root", "/", dir("/"));
  add("dot", ".", dir("/"));
  // empty and not a string
  add("empty", "", refused(EMPTY), { emptyIsRoot: true });
  add("blanks", "   ", refused(EMPTY), { emptyIsRoot: true });
  add("null", null, refused(NOT_STRING));
  add("undefined", undefined, refused(NOT_STRING));
  add("number", 42, refused(NOT_STRING));
  add("NaN", Number.NaN, refused(NOT_STRING));
  add("bigint", 10n, refused(NOT_STRING));
  add("boolean", true, refused(NOT_STRING));
  add("object", { toString: () => "/../etc/passwd" }, refused(NOT_STRING));
  add(
    "throwing toString",
    {
      toString: () => {
        throw new Error("boom");
      },
    },
    refused(NOT_STRING),
  );
  add("array", ["/a.txt"], refused(NOT_STRING));
  add("String object", new String("/a.txt"), refused(NOT_STRING));
  add("symbol", Symbol("x"), refused(NOT_STRING));
  add("function", () => "/a.txt", refused(NOT_STRING));
  // shell and glob characters are just characters
  add("home tilde", "~/.ssh/id_rsa", file("/~/.ssh/id_rsa"));
  add("env var", "$HOME/x", file("/$HOME/x"));
  add("command substitution", "/$(whoami).txt", file("/$(whoami).txt"));
  add("backticks", "/`id`.txt", file("/`id`.txt"));
  add("glob star name", "/*", file("/*"));
  add("glob chars", "/a?[b]{c,d}.txt", file("/a?[b]{c,d}.txt"));
  add("shell separators", "/a;rm -rf x|y&z.txt", file("/a;rm -rf x|y&z.txt"));
  add("proc path inside", "/proc/self/environ", file("/proc/self/environ"));
  add("etc passwd inside", "/etc/passwd", file("/etc/passwd"));
  add("SQL injection name", "/'; DROP TABLE files; --.txt", file("/'; DROP TABLE files; --.txt"));
  add("SQL like wildcards", "/%_%.txt", file("/%_%.txt"));
  add("dollar quotes", "/$$x$$.txt", file("/$$x$$.txt"));
  add("query and fragment", "/a?x=1#frag.txt", file("/a?x=1#frag.txt"));
  add("plus and spaces", "/a+b c.txt", file("/a+b c.txt"));
  add("quote marks", "/\"'\u2019.txt", file("/\"'\u2019.txt"));
  return cases;
}

/** Characters that must never reach a message shown to a model or a log line. */
const UNPRINTABLE =
  /[\u0000-\u001f\u007f-\u009f\u2028\u2029]|\p{Default_Ignorable_Code_Point}|\p{Noncharacter_Code_Point}/u;
/** ... nor a stored path, which may keep joiners and emoji selectors where they cannot hide. */
const STORED_UNPRINTABLE =
  /[\u0000-\u001f\u007f-\u009f\u2028\u2029]|(?!\u200c|\u200d|\ufe0e|\ufe0f)\p{Default_Ignorable_Code_Point}|\p{Noncharacter_Code_Point}/u;

/** An error a model can act on: one line, says what is wrong, bounded length. */
export function assertClearError(error: unknown, pattern: RegExp, context: string): void {
  assert.type(error, "string", `${context}: expected an error string, got ${JSON.stringify(error)}`);
  const message = error as string;
  assert.ok(
    message.startsWith("Error: ") || /^File '.*' not found$/s.test(message),
    `${context}: ${message.slice(0, 200)}`,
  );
  assert.match(message, pattern, `${context}: ${message.slice(0, 300)}`);
  assert.not.match(
    message,
    UNPRINTABLE,
    `${context}: unprintable characters in ${JSON.stringify(message.slice(0, 200))}`,
  );
  assert.ok(message.length <= 600, `${context}: error is ${message.length} characters long`);
  assert.ok(message.isWellFormed(), `${context}: error has an unpaired surrogate`);
}

/** A well-formed stored path: absolute, NFC, no empty/dot segments, no trailing slash, bounded. */
export function assertStoredPathShape(path: string, context: string): void {
  assert.ok(
    path.startsWith("/") && !path.endsWith("/") && !path.includes("//"),
    `${context}: bad shape ${JSON.stringify(path)}`,
  );
  assert.ok(
    !path
      .split("/")
      .slice(1)
      .some((s) => s === "." || s === ".."),
    `${context}: dot segment in ${JSON.stringify(path)}`,
  );
  assert.ok(
    !STORED_UNPRINTABLE.test(path) && !path.includes("\\") && path === path.normalize("NFC"),
    `${context}: ${JSON.stringify(path)}`,
  );
  assert.ok(Buffer.byteLength(path) <= 1024, `${context}: ${Buffer.byteLength(path)} bytes`);
}

type Backend = Required<BackendProtocolV2> & {
  search(options: {
    pattern: string;
    regex?: boolean;
    path?: string;
    glob?: string | null;
  }): Promise<{ error?: string; matches?: unknown[] }>;
};

export interface Tally {
  inputs: number;
  normalised: number;
  directories: number;
  refused: number;
  calls: number;
}

const parentOf = (path: string) => path.slice(0, path.lastIndexOf("/")) || "/";
// The methods are called with whatever the case holds: hostile callers do not respect types.
const any = (x: unknown) => x as string;

/**
 * Runs one hostile path through write, read, edit, ls, grep, glob, upload, download and delete on
 * `b` (an empty workspace) and checks the outcome the case expects. Leaves the workspace empty.
 * `stored(path, marker)` is called while an accepted file exists: it checks the storage itself
 * (the one row or object holding `marker` is this workspace's `path`, nothing anywhere else).
 */
export async function exercisePath(
  b: Backend,
  c: HostileCase,
  tally: Tally,
  marker: string,
  stored: (path: string, marker: string) => Promise<void>,
): Promise<void> {
  const ctx = `${c.label} (${typeof c.input === "string" ? JSON.stringify(c.input.slice(0, 60)) : typeof c.input})`;
  const call = async <T>(p: T | Promise<T>): Promise<T> => {
    tally.calls++;
    return p;
  };
  const bytes = Buffer.from(`${marker} uploaded\n`);
  tally.inputs++;
  const expect = c.expect;
  if ("file" in expect) {
    tally.normalised++;
    const path = expect.file;
    assertStoredPathShape(path, ctx);
    const w = await call(b.write(any(c.input), `${marker}\n`));
    assert.is(w.error, undefined, `${ctx}: write: ${w.error}`);
    assert.is((await call(b.read(any(c.input)))).content, `${marker}\n`, `${ctx}: read(input)`);
    assert.is((await call(b.read(path))).content, `${marker}\n`, `${ctx}: read(normalised)`);
    const listed = await call(b.ls(parentOf(path)));
    assert.ok(
      listed.files!.some((f) => f.path === path && !f.is_dir),
      `${ctx}: ls ${JSON.stringify(listed).slice(0, 200)}`,
    );
    const all = await call(b.glob("**"));
    assert.equal(
      all.files!.map((f) => f.path),
      [path],
      `${ctx}: glob **`,
    );
    assert.equal((await call(b.grep(marker))).matches, [{ path, line: 1, text: marker }], `${ctx}: grep`);
    const e = await call(b.edit(any(c.input), marker, `${marker} edited`));
    assert.is(e.error, undefined, `${ctx}: edit: ${e.error}`);
    assert.is((await call(b.read(path))).content, `${marker} edited\n`, `${ctx}: read after edit`);
    const up = await call(b.uploadFiles([[any(c.input), bytes]]));
    assert.equal(up, [{ path: c.input as string, error: null }], `${ctx}: upload`);
    await stored(path, marker);
    const down = await call(b.downloadFiles([any(c.input), path]));
    for (const d of down) {
      assert.is(d.error, null, `${ctx}: download ${d.error}`);
      assert.ok(Buffer.from(d.content!).equals(bytes), `${ctx}: download bytes`);
    }
    assert.is((await call(b.delete(any(c.input)))).error, undefined, `${ctx}: delete`);
    assert.equal((await call(b.glob("**"))).files, [], `${ctx}: workspace empty after delete`);
    return;
  }
  if ("dir" in expect) {
    tally.directories++;
    const inside = expect.dir === "/" ? "/inside.txt" : `${expect.dir}/inside.txt`;
    await call(b.write(inside, `${marker}\n`));
    await stored(inside, marker);
    const w = await call(b.write(any(c.input), "x"));
    assertClearError(
      w.error,
      /Invalid path '.*': (the root is a directory, not a file|a file path cannot end with '\/')/,
      `${ctx}: write`,
    );
    assertClearError((await call(b.read(any(c.input)))).error, /Invalid path/, `${ctx}: read`);
    assertClearError((await call(b.edit(any(c.input), "a", "b"))).error, /Invalid path/, `${ctx}: edit`);
    const listed = await call(b.ls(any(c.input)));
    assert.ok(
      listed.files!.some((f) => f.path === inside),
      `${ctx}: ls of the directory`,
    );
    assert.equal(
      (await call(b.grep(marker, any(c.input)))).matches,
      [{ path: inside, line: 1, text: marker }],
      `${ctx}: grep under it`,
    );
    assert.equal(
      (await call(b.glob("**", any(c.input)))).files!.map((f) => f.path),
      [inside],
      `${ctx}: glob under it`,
    );
    assert.equal(
      await call(b.uploadFiles([[any(c.input), bytes]])),
      [{ path: c.input as string, error: "is_directory" }],
      `${ctx}: upload`,
    );
    assert.equal((await call(b.downloadFiles([any(c.input)])))[0].error, "is_directory", `${ctx}: download`);
    // delete of a directory is recursive (the root: the whole workspace, and nothing else)
    assert.is((await call(b.delete(any(c.input)))).error, undefined, `${ctx}: delete`);
    assert.equal((await call(b.glob("**"))).files, [], `${ctx}: workspace empty after delete`);
    return;
  }
  tally.refused++;
  const reason = expect.refused;
  const invalid = new RegExp(`^Error: Invalid path '.*': .*${reason.source}`, "s");
  assertClearError((await call(b.write(any(c.input), `${marker}\n`))).error, invalid, `${ctx}: write`);
  assertClearError((await call(b.read(any(c.input)))).error, invalid, `${ctx}: read`);
  assertClearError((await call(b.edit(any(c.input), "a", "b"))).error, invalid, `${ctx}: edit`);
  assertClearError((await call(b.delete(any(c.input)))).error, invalid, `${ctx}: delete`);
  assert.equal(
    await call(b.uploadFiles([[any(c.input), bytes]])),
    [{ path: c.input as string, error: "invalid_path" }],
    `${ctx}: upload`,
  );
  const down = await call(b.downloadFiles([any(c.input)]));
  assert.equal([down[0].content, down[0].error], [null, "invalid_path"], `${ctx}: download`);
  // ls/grep/glob take a directory: a blank one is the root; null/undefined may mean the default ("/")
  const rootOk = c.emptyIsRoot === true;
  const ls = await call(b.ls(any(c.input)));
  if (rootOk) assert.equal(ls.files, [], `${ctx}: ls`);
  else assertClearError(ls.error, invalid, `${ctx}: ls`);
  const grep = await call(b.grep(marker, any(c.input)));
  if (rootOk || c.input === null || c.input === undefined) assert.equal(grep.matches, [], `${ctx}: grep`);
  else assertClearError(grep.error, invalid, `${ctx}: grep`);
  const glob = await call(b.glob("**", any(c.input)));
  if (rootOk || c.input === undefined) assert.equal(glob.files, [], `${ctx}: glob`);
  else assertClearError(glob.error, invalid, `${ctx}: glob`);
  const search = await call(b.search({ pattern: marker, path: any(c.input) }));
  if (rootOk || c.input === null || c.input === undefined) assert.equal(search.matches, [], `${ctx}: search`);
  else assertClearError(search.error, invalid, `${ctx}: search`);
  assert.equal((await call(b.glob("**"))).files, [], `${ctx}: nothing was stored`);
}

/** SQL metacharacters, for workspace names, path names, grep patterns and globs. */
export const SQL_META = [
  "'",
  ";",
  "--",
  "%",
  "_",
  "\\",
  "$$",
  "'; DROP TABLE files; --",
  "%'--",
  "_%",
  "\\%",
  "$1",
  "E'\\x00'",
  "*/",
  "/*",
];

/** Globs that must return quickly: a result or a clear error. */
export function globBombs(): Array<{ label: string; pattern: string }> {
  const nest = (n: number) => {
    let s = "z";
    for (let i = 0; i < n; i++) s = `{a${i},${s}}`;
    return s;
  };
  return [
    { label: "braces nested 10", pattern: nest(10) },
    { label: "braces nested 32", pattern: nest(32) },
    { label: "braces nested 33", pattern: nest(33) },
    { label: "braces nested 1000", pattern: nest(1000) },
    { label: "braces nested 20000", pattern: nest(20000) },
    { label: "globstars x4", pattern: "**/**/**/**" },
    { label: "globstars x200", pattern: "**/".repeat(200) + "x" },
    { label: "range 1..100000", pattern: "{1..100000}" },
    { label: "ranges x3", pattern: "{1..100000}{1..100000}{1..100000}" },
    { label: "huge range", pattern: "{-99999999999..99999999999}" },
    { label: "letter range", pattern: "{a..zzzzzz}" },
    { label: "stepped range", pattern: "{1..10000000..1}" },
    { label: "2^40 alternatives", pattern: "{a,b}".repeat(40) },
    { label: "empty alternatives", pattern: "{,,,,,,,,,,,,,,,,,,,,}".repeat(50) },
    { label: "stars against long names", pattern: "**/" + "*a".repeat(12) + "b" },
    { label: "stars x30", pattern: "*a".repeat(30) + "b" },
    { label: "question marks x300", pattern: "?".repeat(300) },
    { label: "extglob nested 40", pattern: "+(".repeat(40) + "a" + ")".repeat(40) },
    { label: "extglob nested 20000", pattern: "+(".repeat(20000) + "a" + ")".repeat(20000) },
    { label: "extglob star alternation", pattern: "**/*(a|aa|aaa)b" },
    { label: "negated extglobs", pattern: "**/!(!(!(a)))" },
    { label: "brackets nested", pattern: "[".repeat(5000) + "a" + "]".repeat(5000) },
    { label: "classes x800", pattern: "[a-z]".repeat(800) },
    { label: "pattern 4096", pattern: "a".repeat(4096) },
    { label: "pattern 4097", pattern: "a".repeat(4097) },
    { label: "pattern 70000", pattern: "x".repeat(70000) },
    { label: "backslashes", pattern: "\\".repeat(3001) },
    { label: "unbalanced", pattern: "{{{{[[[((((" },
    { label: "regex-looking", pattern: "(a+)+$" },
  ];
}
