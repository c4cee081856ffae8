/**
 * search(): the JavaScript → ARE translation (every accepted and refused construct), PostgreSQL
 * results equal to JavaScript's own RegExp line by line, case-insensitive literals and the
 * statement timeout (plan shapes: plans.test.ts).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { translateRegex, RegexError } from "../src/regex.js";
import { testBackend, uniqueName } from "./helpers/db.js";

const backend = await testBackend();
test.after(async () => {
  await backend.close();
});

const accepted: Array<[string, string, boolean?]> = [
  ["foo", "foo"],
  ["\\bword\\b", "\\yword\\y"],
  ["\\Bin\\B", "\\Yin\\Y"],
  ["a.c", "a[^\\n\\r\\u2028\\u2029]c"],
  ["\\x41\\u0042\\u{1F600}", "\\u0041\\u0042\\U0001F600"],
  ["[\\b]", "[\\u0008]"],
  ["[^]", "."],
  ["x{2,3}y{4}z{5,}", "x{2,3}y{4}z{5,}"],
  ["a{,3}", "a\\{,3\\}"],
  ["{literal}", "\\{literal\\}"],
  ["[[a]]", "[\\[a]]"],
  ["\\d+\\s*\\w\\D\\S\\W", "\\d+\\s*\\w\\D\\S\\W"],
  ["[\\d\\s\\w-]", "[\\d\\s\\w-]"],
  ["(?:ab)+(?=c)(?!d)", "(?:ab)+(?=c)(?!d)"],
  ["(?<=a)b(?<!c)", "(?<=a)b(?<!c)"],
  ["a*?b+?c??", "a*?b+?c??"],
  ["^(foo|bar)$", "^(foo|bar)$"],
  ["\\.\\*\\/\\(", "\\.\\*\\/\\("],
  ["\\t\\n\\r\\f\\v\\cJ", "\\t\\n\\r\\f\\v\\cJ"],
  ["(?i)Hello", "Hello", true],
];

const refused: Array<[string, RegExp]> = [
  ["(a)\\1", /back-references/],
  ["(?<n>a)\\k<n>", /named groups|named back-references/],
  ["(?<name>a)", /named groups/],
  ["\\p{L}", /Unicode property/],
  ["\\P{L}", /Unicode property/],
  ["a{256}", /repetition bounds above 255/],
  ["a{1,300}", /repetition bounds above 255/],
  ["a*+", /Nothing to repeat/], // possessive: not even JavaScript
  ["(?i:a)", /inline modifiers|Invalid group/],
  ["a(?i)b", /inline modifiers|Invalid group/],
  ["[]", /empty character class/],
  ["[\\D]", /\\D inside a character class/],
  ["[\\S]", /\\S inside a character class/],
  ["[\\W]", /\\W inside a character class/],
  ["\\q", /unknown escape/],
  ["\\0", /NUL/],
  ["(unclosed", /Unterminated group/],
];

for (const [js, are, ignoreCase = false] of accepted) {
  test(`translate ${JSON.stringify(js)}`, () => {
    assert.equal(translateRegex(js), { source: are, ignoreCase });
  });
}

for (const [js, reason] of refused) {
  test(`refuse ${JSON.stringify(js)}`, () => {
    try {
      translateRegex(js);
      assert.unreachable(`${js} must be refused`);
    } catch (e) {
      assert.instance(e, RegexError);
      assert.match((e as Error).message, reason);
    }
  });
}

// Lines chosen to tell dialect differences apart: CR before end of line, braces, dots,
// word boundaries, digits, case, non-ASCII.
const LINES = [
  "const needle = 42;\r",
  "function findNeedle(hay) { return hay.indexOf('needle'); }",
  "Needle in CAPS and a_b_c",
  "a.c abc a\u00e9c",
  "x{1,2} literal braces and x11y",
  "tab\there",
  "word-boundary: in inside pin",
  "",
  "ends with c",
  "čeština and 日本語 needle",
];
const PATTERNS = [
  "needle", "^const", ";$", "c$", "a.c", "\\bin\\b", "\\Bin\\B", "[Nn]eedle\\s+in", "x\\{1,2\\}", "\\d{2}", "(?:find|index)Of",
  "needle(?=\\W)", "(?<=find)Needle", "^$", "[^a-z ]+", "\\x6eeedle", "\\u65e5", "a[\\b]?c", "\\t", "[.]", "c\\.?h?$",
];

test("PostgreSQL matches exactly the lines JavaScript's RegExp matches", async () => {
  const b = backend.withWorkspace(uniqueName("re"));
  await b.write("/corpus.txt", LINES.join("\n") + "\n");
  await b.write("/other/more.md", LINES.slice().reverse().join("\n"));
  for (const pattern of PATTERNS) {
    for (const ignoreCase of [false, true]) {
      const re = new RegExp(pattern, ignoreCase ? "i" : "");
      const want: string[] = [];
      for (const [path, lines] of [["/corpus.txt", [...LINES, ""]], ["/other/more.md", LINES.slice().reverse()]] as const) {
        lines.forEach((line, i) => re.test(line) && want.push(`${path}:${i + 1}`));
      }
      const got = await b.search({ pattern, regex: true, ignoreCase });
      assert.is(got.error, undefined, `${pattern}: ${got.error}`);
      assert.equal(got.matches!.map((m) => `${m.path}:${m.line}`).sort(), want.sort(), `/${pattern}/${ignoreCase ? "i" : ""}`);
    }
  }
});

test("case-insensitive literals; % and _ stay literal; path, glob and maxCount apply", async () => {
  const b = backend.withWorkspace(uniqueName("ci"));
  await b.uploadFiles([
    ["/src/a.ts", Buffer.from("FooBar()\nfoobar\n50% of a_b\n")],
    ["/src/b.md", Buffer.from("FOOBAR in docs\n")],
    ["/lib/c.ts", Buffer.from("fooBAR elsewhere\n")],
  ]);
  const all = await b.search({ pattern: "foobar", ignoreCase: true });
  assert.equal(all.matches!.map((m) => `${m.path}:${m.line}`), ["/lib/c.ts:1", "/src/a.ts:1", "/src/a.ts:2", "/src/b.md:1"]);
  assert.equal((await b.search({ pattern: "0% OF A_", ignoreCase: true })).matches!.map((m) => m.line), [3]);
  assert.equal((await b.search({ pattern: "a%b", ignoreCase: true })).matches, []);
  assert.equal(await b.search({ pattern: "foobar", ignoreCase: true, path: "/src", glob: "*.ts", maxCount: 1 }), {
    matches: [{ path: "/src/a.ts", line: 1, text: "FooBar()" }],
    truncated: true,
  });
  assert.equal((await b.search({ pattern: "foobar" })).matches!.map((m) => m.path), ["/src/a.ts"]); // literal, exact case
});

test("a refused or invalid pattern is an error result; a leading (?i) is case-insensitive", async () => {
  const b = backend.withWorkspace(uniqueName("bad"));
  await b.write("/x.txt", "Alpha\n");
  assert.match((await b.search({ pattern: "(a)\\1", regex: true })).error!, /^Error: Invalid regular expression '\(a\)\\1': back-references/);
  assert.match((await b.search({ pattern: "[", regex: true })).error!, /^Error: Invalid regular expression '\[': /);
  assert.equal((await b.search({ pattern: "(?i)^alpha$", regex: true })).matches!.map((m) => m.text), ["Alpha"]);
});

test("the statement timeout bounds a search, is reported as an error, and the connection stays healthy", async () => {
  const b = await testBackend({ maxPoolSize: 1 });
  const line = "ab".repeat(200) + "\n";
  await b.write("/big.txt", line.repeat(20_000)); // 8 MB
  const slow = await b.search({ pattern: "(a|b)*(a|b)*(a|b)*c", regex: true, timeoutMs: 1 });
  assert.is(slow.error, "Error: search timed out after 1 ms; narrow the path, glob or pattern");
  assert.equal((await b.search({ pattern: "zzz", regex: true })).matches, []); // same (only) connection
  for (const bad of [Number.NaN, 0, -5, Number.POSITIVE_INFINITY, "100" as never]) {
    assert.match((await b.search({ pattern: "zzz", timeoutMs: bad })).error!, /^Error: timeoutMs must be a positive number of milliseconds/);
  }
  assert.is((await b.read("/big.txt", 0, 1)).content, "ab".repeat(200));
  await b.close();
});

test.run();
