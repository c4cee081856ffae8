/**
 * The regular-expression language of `search({ regex: true })`: ONE definition, both backends.
 *
 * A pattern is JavaScript syntax read with the `u` flag (code points, not UTF-16 halves; the
 * strict grammar), plus `i` when `ignoreCase` is set, tested against each line on its own: the
 * text split on "\n" (a "\r" before the "\n" stays part of its line, so `x$` does not match
 * "x\r"). A line matches exactly when
 *
 *     new RegExp(pattern, ignoreCase ? "ui" : "u").test(line)
 *
 * is true, counting matches that start on a code point (compileLineTest, which S3 runs).
 * PostgreSQL runs translateRegex's ARE, built to accept the same lines. Whatever this module
 * cannot translate provably the same way is refused on both backends with the same one-line error
 * (RegexError), before anything runs:
 * - inline flags and modifiers — (?i), (?i:…), (?-i) — use the ignoreCase option;
 * - back-references (\1, \k<name>), named groups, Unicode property escapes (\p{…}, \P{…});
 * - {n,m} bounds above 255 (PostgreSQL's limit);
 * - \D, \S, \W inside a character class;
 * - with ignoreCase: a non-ASCII character that has case (é, ß, İ, the Kelvin sign …), written
 *   or inside a class range: JavaScript folds by Unicode's simple case folding, PostgreSQL by the
 *   server's locale, and they disagree (ß/ẞ, İ/i, K/k). Caseless ones (日, emoji, —) are fine;
 * - and everything JavaScript itself refuses under `u`: a lone `{`, `}` or `]`, `a{,3}`, `\-`
 *   outside a class, unknown escapes such as `\q`.
 * On PostgreSQL a pattern can still be refused by the server as too complex (an error, never a
 * different result).
 *
 * The modules: errors.ts (RegexError and the refusal reasons), charsets.ts (JavaScript's sets as
 * code-point ranges; case), parser.ts (reading a pattern into atoms), translate.ts (the ARE, and
 * how it keeps JavaScript's meaning), prefilter.ts (the relaxed chunk pattern), line-test.ts (the
 * JavaScript line test).
 */
export { JS_SPACE, hasCase } from "./charsets.js";
export { RegexError } from "./errors.js";
export { compileLineTest } from "./line-test.js";
export { type TranslatedRegex, translateRegex } from "./translate.js";
