/**
 * The translations the server-side grep and find rely on: a pattern is translated only when the
 * JavaScript regular expression matches exactly the lines (or names) GNU's would; otherwise null,
 * and just-bash's own command runs. No storage: pure functions.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { fnmatchRegex } from "../src/shell/fnmatch.js";
import { translatePattern } from "../src/shell/grep-pattern.js";

test("BRE: operators are escaped (\\( \\{ \\| \\+), bare ones literal, ^ $ * literal where POSIX says", () => {
  assert.is(translatePattern("a.c", "basic"), "a[^\\n]c");
  assert.is(translatePattern("\\(ab\\)*x", "basic"), "(?:ab)*x");
  assert.is(translatePattern("p\\{2\\}", "basic"), "p{2}");
  assert.is(translatePattern("a\\|b", "basic"), "a|b");
  assert.is(translatePattern("(a)+{1}|?", "basic"), "\\(a\\)\\+\\{1\\}\\|\\?");
  assert.is(translatePattern("*a", "basic"), "\\*a");
  assert.is(translatePattern("a^b$c", "basic"), "a\\^b\\$c");
  assert.is(translatePattern("^ab$", "basic"), "^ab$");
  assert.is(translatePattern("[]a-c\\]", "basic"), "[\\]a-c\\\\]");
});

test("ERE: groups, alternation, quantifiers and intervals; GNU's {,m}", () => {
  assert.is(translatePattern("(ab|cd)+e?", "extended"), "(?:ab|cd)+e?");
  assert.is(translatePattern("x{,3}", "extended"), "x{0,3}");
  assert.is(translatePattern("[^0-9]", "extended"), "[^\\n0-9]");
  assert.is(translatePattern("a\\.b", "extended"), "a\\.b");
});

test("untranslated: back-references, classes, GNU escapes, locale ranges, dangling operators", () => {
  for (const [pattern, syntax] of [
    ["\\(a\\)\\1", "basic"],
    ["[[:alpha:]]", "basic"],
    ["\\w+", "extended"],
    ["\\<word\\>", "basic"],
    ["[a-Z]", "extended"],
    ["*a", "extended"],
    ["a{300}", "extended"],
    ["(a", "extended"],
    ["a\\", "basic"],
  ] as const) {
    assert.is(translatePattern(pattern, syntax), null, pattern);
  }
});

test("fixed strings are escaped whole", () => {
  assert.is(translatePattern("a.b[c]*", "fixed"), "a\\.b\\[c\\]\\*");
});

test("fnmatch: * and ? match anything (a leading dot and / too), sets, quoting", () => {
  const m = (pattern: string, name: string) => fnmatchRegex(pattern)!.test(name);
  assert.ok(m("*.ts", ".hidden.ts"));
  assert.ok(m("./src/*", "./src/lib/c.js"));
  assert.ok(m("f?[0-9]", "fa7"));
  assert.not.ok(m("f?[!0-9]", "fa7"));
  assert.ok(m("\\*", "*"));
  assert.not.ok(m("\\*", "a"));
  assert.ok(m("[ab", "[ab"), "an unclosed [ is literal");
  assert.ok(fnmatchRegex("READ*", true)!.test("readme.md"));
  assert.is(fnmatchRegex("[[:digit:]]"), null);
  assert.is(fnmatchRegex("[a-Z]"), null);
});

test.run();
