/**
 * search(): the JavaScript → ARE translation (every accepted and refused construct), PostgreSQL
 * results equal to JavaScript's own RegExp (u flag) line by line (both backends against it, and
 * random patterns: search.regex.test.ts), case-insensitive literals and the
 * statement timeout (plan shapes: plans.test.ts).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { translateRegex, RegexError } from "../src/regex/index.js";
import { testBackend, uniqueName } from "./helpers/db.js";

const backend = await testBackend();
test.after(async () => {
  await backend.close();
});

// The translation of each construct (results against JavaScript's: search.regex.test.ts).
const W = "[0-9A-Z\\u005fa-z]";
const accepted: Array<[string, string, boolean?]> = [
  ["foo", "foo"],
  ["\\bword\\b", `(?:(?<=${W})(?!${W})|(?<!${W})(?=${W}))word(?:(?<=${W})(?!${W})|(?<!${W})(?=${W}))`],
  ["a.c", "a[^\\u000a\\u000d\\u2028-\\u2029]c"],
  ["\\x41\\u0042\\u{1F600}\\uD83D\\uDE00", "AB\u{1F600}\u{1F600}"],
  ["[\\b]", "[\\u0008]"],
  ["[^]", "."],
  ["[]", "(?!)"],
  ["x{2,3}y{4}z{5,}", "x{2,3}y{4}z{5,}"],
  ["[[a]", "[\\u005ba]"],
  ["\\d+\\w\\D\\W", `[0-9]+${W}[^0-9][^0-9A-Z\\u005fa-z]`],
  ["\\s", "[\\u0009-\\u000d\\u0020\\u00a0\\u1680\\u2000-\\u200a\\u2028-\\u2029\\u202f\\u205f\\u3000\\ufeff]"],
  ["[\\d\\w-]", "[\\u002d0-9A-Z\\u005fa-z]"],
  ["(?:ab)+(?=c)(?!d)", "(?:ab)+(?=c)(?!d)"],
  ["(?<=a)b(?<!c)", "(?<=a)b(?<!c)"],
  ["a*?b+?c??", "a*?b+?c??"],
  ["^(foo|bar)$", "^(?:foo|bar)$"],
  ["\\.\\*\\/\\(a-b c", "\\.\\*\\/\\(a\\-b\\ c"],
  ["\\t\\n\\r\\f\\v\\cJ\\0", "\\u0009\\u000a\\u000d\\u000c\\u000b\\u000a\\u0000"],
  ["Ks\\w[a-c]日", "[Kk\\u212a][Ss\\u017f][0-9A-Z\\u005fa-z\\u017f\\u212a][A-Ca-c]日", true],
];

test("the chunk prefilter drops every lookaround (and \\b, \\B) and keeps the rest", () => {
  assert.is(translateRegex("(?<!x)foo(?!\\s(?=y))\\b|^a\\Bb$").chunkSource, "(?:)foo(?:)(?:)|^a(?:)b$");
});

const refused: Array<[string, RegExp, boolean?]> = [
  ["(a)\\1", /back-references/],
  ["(?<n>a)\\k<n>", /named groups/],
  ["(?<name>a)", /named groups \(\?<name>\.\.\.\) are not supported; use \(\?:\.\.\.\)$/],
  ["\\p{L}", /Unicode property/],
  ["\\P{L}", /Unicode property/],
  ["a{256}", /repetition bounds above 255/],
  ["a{1,300}", /repetition bounds above 255/],
  ["a*+", /Nothing to repeat/], // possessive: not even JavaScript
  ["(?i)a", /^inline flags and modifiers such as \(\?i\) are not supported; use the ignoreCase option$/],
  ["(?i:a)", /inline flags/],
  ["a(?i)b", /inline flags/],
  ["[\\D]", /\\D inside a character class/],
  ["[\\S]", /\\S inside a character class/],
  ["[\\W]", /\\W inside a character class/],
  ["\\q", /Invalid escape/],
  ["a{,3}", /Incomplete quantifier/], // under the u flag a brace is always a quantifier
  ["{literal}", /Lone quantifier brackets/],
  ["(unclosed", /Unterminated group/],
  ["é", /non-ASCII letter 'é' \(U\+00E9\)/, true],
  ["[\\u00c0-\\u00ff]", /non-ASCII letter 'À' \(U\+00C0\) in a class range/, true],
];

for (const [js, are, ignoreCase = false] of accepted) {
  test(`translate ${JSON.stringify(js)}${ignoreCase ? " (ignoreCase)" : ""}`, () => {
    const t = translateRegex(js, ignoreCase);
    assert.is(t.source, are);
    assert.is(t.flags, ignoreCase ? "ui" : "u");
  });
}

for (const [js, reason, ignoreCase = false] of refused) {
  test(`refuse ${JSON.stringify(js)}${ignoreCase ? " (ignoreCase)" : ""}`, () => {
    try {
      translateRegex(js, ignoreCase);
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
  "needle",
  "^const",
  ";$",
  "c$",
  "a.c",
  "\\bin\\b",
  "\\Bin\\B",
  "[Nn]eedle\\s+in",
  "x\\{1,2\\}",
  "\\d{2}",
  "(?:find|index)Of",
  "needle(?=\\W)",
  "(?<=find)Needle",
  "^$",
  "[^a-z ]+",
  "\\x6eeedle",
  "\\u65e5",
  "a[\\b]?c",
  "\\t",
  "[.]",
  "c\\.?h?$",
];

test("PostgreSQL matches exactly the lines JavaScript's RegExp matches", async () => {
  const b = backend.withWorkspace(uniqueName("re"));
  await b.write("/corpus.txt", LINES.join("\n") + "\n");
  await b.write("/other/more.md", LINES.slice().reverse().join("\n"));
  for (const pattern of PATTERNS) {
    for (const ignoreCase of [false, true]) {
      const re = new RegExp(pattern, ignoreCase ? "ui" : "u"); // the language: JavaScript with the u flag
      const want: string[] = [];
      for (const [path, lines] of [
        ["/corpus.txt", [...LINES, ""]],
        ["/other/more.md", LINES.slice().reverse()],
      ] as const) {
        lines.forEach((line, i) => {
          if (re.test(line)) want.push(`${path}:${i + 1}`);
        });
      }
      const got = await b.search({ pattern, regex: true, ignoreCase });
      assert.is(got.error, undefined, `${pattern}: ${got.error}`);
      assert.equal(
        got.matches!.map((m) => `${m.path}:${m.line}`).sort(),
        want.sort(),
        `/${pattern}/${ignoreCase ? "i" : ""}`,
      );
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
  assert.equal(
    all.matches!.map((m) => `${m.path}:${m.line}`),
    ["/lib/c.ts:1", "/src/a.ts:1", "/src/a.ts:2", "/src/b.md:1"],
  );
  assert.equal(
    (await b.search({ pattern: "0% OF A_", ignoreCase: true })).matches!.map((m) => m.line),
    [3],
  );
  assert.equal((await b.search({ pattern: "a%b", ignoreCase: true })).matches, []);
  assert.equal(await b.search({ pattern: "foobar", ignoreCase: true, path: "/src", glob: "*.ts", maxCount: 1 }), {
    matches: [{ path: "/src/a.ts", line: 1, text: "FooBar()" }],
    truncated: true,
  });
  assert.equal(
    (await b.search({ pattern: "foobar" })).matches!.map((m) => m.path),
    ["/src/a.ts"],
  ); // literal, exact case
});

test("a refused or invalid pattern is an error result; (?i) is refused, ignoreCase is the option", async () => {
  const b = backend.withWorkspace(uniqueName("bad"));
  await b.write("/x.txt", "Alpha\n");
  assert.match(
    (await b.search({ pattern: "(a)\\1", regex: true })).error!,
    /^Error: Invalid regular expression '\(a\)\\1': back-references/,
  );
  assert.match((await b.search({ pattern: "[", regex: true })).error!, /^Error: Invalid regular expression '\[': /);
  assert.match(
    (await b.search({ pattern: "(?i)^alpha$", regex: true })).error!,
    /^Error: Invalid regular expression '\(\?i\)\^alpha\$': inline flags/,
  );
  assert.equal(
    (await b.search({ pattern: "^alpha$", regex: true, ignoreCase: true })).matches!.map((m) => m.text),
    ["Alpha"],
  );
});

test("the statement timeout bounds a search, is reported as an error, and the connection stays healthy", async () => {
  const b = await testBackend({ maxPoolSize: 1 });
  const line = "ab".repeat(200) + "\n";
  await b.write("/big.txt", line.repeat(20_000)); // 8 MB
  const slow = await b.search({ pattern: "(a|b)*(a|b)*(a|b)*c", regex: true, timeoutMs: 1 });
  assert.is(slow.error, "Error: search timed out after 1 ms; narrow the path, glob or pattern");
  assert.equal((await b.search({ pattern: "zzz", regex: true })).matches, []); // same (only) connection
  for (const bad of [Number.NaN, 0, -5, Number.POSITIVE_INFINITY, "100" as never]) {
    assert.match(
      (await b.search({ pattern: "zzz", timeoutMs: bad })).error!,
      /^Error: timeoutMs must be a number of milliseconds from 1 to 2147483647/,
    );
  }
  assert.is((await b.read("/big.txt", 0, 1)).content, "ab".repeat(200));
  await b.close();
});

test.run();
