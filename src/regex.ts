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
 * How the ARE keeps JavaScript's meaning (ARE's own classes follow the locale; these do not):
 * - \d → [0-9]; \w → [A-Za-z0-9_]; \s → JavaScript's 25 white-space code points; . → any code
 *   point but \n \r \u2028 \u2029; \b / \B → lookarounds over \w (ARE's \y calls é a word
 *   character, JavaScript does not). Negations (\D, \S, \W) are complements of those sets.
 * - ignoreCase: PostgreSQL matches case-sensitively and each ASCII letter is given its case
 *   partners as JavaScript's /ui sees them: the other case, plus U+212A (Kelvin sign) for k and
 *   U+017F (long s) for s — the only non-ASCII characters that fold onto ASCII — so \w is
 *   [A-Za-z0-9_ſK] there, as in JavaScript.
 * - Bracket members other than ASCII letters and digits are written as \u/\U escapes, ASCII
 *   punctuation outside brackets is backslash-escaped, so no ARE bracket syntax ([:…:], [=…=])
 *   or escape rule (\x eating every hex digit) comes into play.
 * - Groups are non-capturing (no back-references: captures change nothing); laziness (*?) is kept
 *   but only changes which text matches, never whether a line does.
 *
 * The chunk prefilter (PostgreSQL tests many lines joined by "\n" at once, through the trigram
 * index) uses `chunkSource`: the same ARE with every lookaround (and \b, \B) dropped. Run in
 * newline-sensitive mode (?n) it matches every chunk holding a line that `source` matches —
 * a lookaround there would see the neighbouring line's "\n" and drop a chunk a line matches.
 */

export class RegexError extends Error {
  constructor(
    readonly pattern: string,
    readonly reason: string,
  ) {
    super(reason);
    this.name = "RegexError";
  }
}

export interface TranslatedRegex {
  /** ARE matching one line exactly as JavaScript's RegExp with `flags` does. */
  source: string;
  /** ARE for a chunk of lines (run with (?n)): matches whenever one of its lines matches `source`. */
  chunkSource: string;
  /** The JavaScript flags of the language: "u", or "ui" with ignoreCase. */
  flags: "u" | "ui";
}

type Range = [number, number];

const DUP_MAX = 255; // ARE's limit on {n,m} bounds
const DIGIT: Range[] = [[0x30, 0x39]];
const WORD: Range[] = [
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x5f, 0x5f],
  [0x61, 0x7a],
];
/** \w under /ui: JavaScript adds the characters that fold onto word characters. */
const WORD_FOLDED: Range[] = [...WORD, [0x17f, 0x17f], [0x212a, 0x212a]];
/** JavaScript's \s: WhiteSpace and LineTerminator. */
export const JS_SPACE: Range[] = [
  [0x09, 0x0d],
  [0x20, 0x20],
  [0xa0, 0xa0],
  [0x1680, 0x1680],
  [0x2000, 0x200a],
  [0x2028, 0x2029],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
  [0xfeff, 0xfeff],
];
const LINE_TERMINATORS: Range[] = [
  [0x0a, 0x0a],
  [0x0d, 0x0d],
  [0x2028, 0x2029],
];
/** Identity escapes JavaScript allows under `u` (outside a class; `-` too inside one). */
const SYNTAX = new Set("^$\\.*+?()[]{}|/");
/** A character with case in Unicode (or one that changes under any case mapping or folding). */
const CASED = /[\p{Cased}\p{Changes_When_Casemapped}\p{Changes_When_Casefolded}]/u;

/** Has the code point case (so that JavaScript's and PostgreSQL's folding may differ)? */
export const hasCase = (cp: number): boolean => CASED.test(String.fromCodePoint(cp));

let casedTable: Uint32Array | null = null;
/** Sorted non-ASCII code points with case, built once on first need (a class range under ignoreCase). */
function casedCodePoints(): Uint32Array {
  if (casedTable) return casedTable;
  const found: number[] = [];
  for (let cp = 0x80; cp <= 0x10ffff; cp++) {
    if ((cp < 0xd800 || cp > 0xdfff) && hasCase(cp)) found.push(cp);
  }
  casedTable = Uint32Array.from(found);
  return casedTable;
}

/** The first non-ASCII code point with case in [lo, hi], or null. */
function casedIn(lo: number, hi: number): number | null {
  const from = Math.max(lo, 0x80);
  if (from > hi) return null;
  if (hi - from < 256) {
    for (let cp = from; cp <= hi; cp++) if ((cp < 0xd800 || cp > 0xdfff) && hasCase(cp)) return cp;
    return null;
  }
  const table = casedCodePoints();
  let a = 0;
  let b = table.length;
  while (a < b) {
    const m = (a + b) >> 1;
    if (table[m] < from) a = m + 1;
    else b = m;
  }
  return a < table.length && table[a] <= hi ? table[a] : null;
}

function merge(ranges: Range[]): Range[] {
  const sorted = ranges.map((r) => [r[0], r[1]] as Range).sort((x, y) => x[0] - y[0]);
  const out: Range[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else out.push(r);
  }
  return out;
}

/** Ranges plus their case partners under JavaScript's /ui (only ASCII letters have any here). */
function foldAscii(ranges: Range[]): Range[] {
  const out = [...ranges];
  const overlap = (r: Range, lo: number, hi: number): Range | null =>
    r[0] <= hi && r[1] >= lo ? [Math.max(r[0], lo), Math.min(r[1], hi)] : null;
  for (const r of ranges) {
    const lower = overlap(r, 0x61, 0x7a);
    if (lower) out.push([lower[0] - 32, lower[1] - 32]);
    const upper = overlap(r, 0x41, 0x5a);
    if (upper) out.push([upper[0] + 32, upper[1] + 32]);
  }
  const has = (cp: number) => out.some((r) => r[0] <= cp && cp <= r[1]);
  if (has(0x6b)) out.push([0x212a, 0x212a]); // k K K
  if (has(0x73)) out.push([0x17f, 0x17f]); // s S ſ
  return merge(out);
}

const hex = (cp: number) =>
  cp <= 0xffff ? `\\u${cp.toString(16).padStart(4, "0")}` : `\\U${cp.toString(16).padStart(8, "0")}`;

/** A bracket member: an ASCII letter or digit as itself, anything else as a \u/\U escape. */
const member = (cp: number) =>
  /^[A-Za-z0-9]$/.test(cp < 0x80 ? String.fromCharCode(cp) : "") ? String.fromCharCode(cp) : hex(cp);

function bracket(ranges: Range[], negated: boolean): string {
  const items = merge(ranges).map(([lo, hi]) => (lo === hi ? member(lo) : `${member(lo)}-${member(hi)}`));
  return `[${negated ? "^" : ""}${items.join("")}]`;
}

const describe = (cp: number) => `'${String.fromCodePoint(cp)}' (U+${cp.toString(16).toUpperCase().padStart(4, "0")})`;

/** Does the pattern hold a group opening like (?i) or (?-m:, outside escapes and classes? */
function hasInlineFlags(src: string): boolean {
  let inClass = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === "\\") i++;
    else if (inClass) inClass = c !== "]";
    else if (c === "[") inClass = true;
    else if (c === "(" && src[i + 1] === "?" && /[A-Za-z-]/.test(src[i + 2] ?? "")) return true;
  }
  return false;
}

type Atom =
  | { kind: "char"; cp: number }
  | { kind: "set"; ranges: Range[]; negated: boolean }
  | { kind: "boundary"; negated: boolean };

/**
 * Validates `pattern` as a member of the language and translates it to ARE. Throws RegexError
 * (reason: one line) for anything outside the language.
 */
export function translateRegex(pattern: string, ignoreCase = false): TranslatedRegex {
  const refuse = (reason: string): never => {
    throw new RegexError(pattern, reason);
  };
  const flags = ignoreCase ? "ui" : "u";
  if (typeof pattern !== "string") refuse("the pattern must be a string");
  const inlineFlags = "inline flags and modifiers such as (?i) are not supported; use the ignoreCase option";
  try {
    new RegExp(pattern, flags); // JavaScript's own grammar under `u` first
  } catch (e) {
    // Node rejects (?i) as "Invalid group" (newer engines accept some modifiers): say what it is.
    if (hasInlineFlags(pattern)) refuse(inlineFlags);
    refuse((e as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, ""));
  }
  const src = pattern;
  let i = 0;
  const cpAt = (at: number) => src.codePointAt(at)!;
  const take = (): number => {
    const cp = cpAt(i);
    i += cp > 0xffff ? 2 : 1;
    return cp;
  };
  const hexAt = (at: number, n: number) => {
    const s = src.slice(at, at + n);
    return /^[0-9a-fA-F]+$/.test(s) && s.length === n ? parseInt(s, 16) : null;
  };

  /** One escape after the backslash at i - 1 (JavaScript has already checked its form). */
  const escapeAtom = (inClass: boolean): Atom => {
    const n = src[i++];
    switch (n) {
      case "d":
        return { kind: "set", ranges: DIGIT, negated: false };
      case "D":
        return { kind: "set", ranges: DIGIT, negated: true };
      case "s":
        return { kind: "set", ranges: JS_SPACE, negated: false };
      case "S":
        return { kind: "set", ranges: JS_SPACE, negated: true };
      case "w":
        return { kind: "set", ranges: ignoreCase ? WORD_FOLDED : WORD, negated: false };
      case "W":
        return { kind: "set", ranges: ignoreCase ? WORD_FOLDED : WORD, negated: true };
      case "b":
        return inClass ? { kind: "char", cp: 0x08 } : { kind: "boundary", negated: false };
      case "B":
        return { kind: "boundary", negated: true };
      case "f":
        return { kind: "char", cp: 0x0c };
      case "n":
        return { kind: "char", cp: 0x0a };
      case "r":
        return { kind: "char", cp: 0x0d };
      case "t":
        return { kind: "char", cp: 0x09 };
      case "v":
        return { kind: "char", cp: 0x0b };
      case "0":
        return { kind: "char", cp: 0 };
      case "c":
        return { kind: "char", cp: src.charCodeAt(i++) % 32 };
      case "x": {
        const cp = hexAt(i, 2)!;
        i += 2;
        return { kind: "char", cp };
      }
      case "u": {
        if (src[i] === "{") {
          const end = src.indexOf("}", i);
          const cp = parseInt(src.slice(i + 1, end), 16);
          i = end + 1;
          return { kind: "char", cp };
        }
        let cp = hexAt(i, 4)!;
        i += 4;
        // Under `u`, \uD83D\uDE00 is one code point, as in JavaScript.
        if (cp >= 0xd800 && cp <= 0xdbff && src.startsWith("\\u", i)) {
          const low = hexAt(i + 2, 4);
          if (low !== null && low >= 0xdc00 && low <= 0xdfff) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            i += 6;
          }
        }
        return { kind: "char", cp };
      }
      case "p":
      case "P":
        return refuse("Unicode property escapes (\\p{...}) are not supported");
      case "k":
        return refuse("named back-references (\\k<name>) are not supported");
      default:
        if (/[1-9]/.test(n)) return refuse("back-references (\\1 ...) are not supported");
        if (SYNTAX.has(n) || (inClass && n === "-")) return { kind: "char", cp: n.charCodeAt(0) };
        return refuse(`unsupported escape \\${n}`); // JavaScript would have refused it first
    }
  };

  /** A literal character outside a class. */
  const literal = (cp: number): string => {
    if (ignoreCase) {
      if ((cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a)) return bracket(foldAscii([[cp, cp]]), false);
      if (cp >= 0x80 && casedIn(cp, cp) !== null)
        refuse(
          `ignoreCase with the non-ASCII letter ${describe(cp)}: its case folding differs between JavaScript and PostgreSQL`,
        );
    }
    const ascii = cp < 0x80 ? String.fromCharCode(cp) : "";
    if (/^[A-Za-z0-9]$/.test(ascii)) return ascii;
    if (cp >= 0x20 && cp < 0x7f) return `\\${ascii}`; // ARE: a backslash before punctuation is the character
    if (cp < 0x80 || (cp >= 0xd800 && cp <= 0xdfff)) return hex(cp); // controls; lone surrogates never match stored text
    return String.fromCodePoint(cp);
  };

  const setSource = (atom: Atom & { kind: "set" }) => bracket(atom.ranges, atom.negated);
  const boundary = (negated: boolean) => {
    const w = bracket(ignoreCase ? WORD_FOLDED : WORD, false);
    return negated ? `(?:(?<=${w})(?=${w})|(?<!${w})(?!${w}))` : `(?:(?<=${w})(?!${w})|(?<!${w})(?=${w}))`;
  };

  /** A character class from just after "[" to just after its "]". */
  const characterClass = (): string => {
    let negated = false;
    if (src[i] === "^") {
      negated = true;
      i++;
    }
    const ranges: Range[] = [];
    const classAtom = (): Atom => {
      if (src[i] === "\\") {
        i++;
        const atom = escapeAtom(true);
        if (atom.kind === "set" && atom.negated) refuse(`\\${src[i - 1]} inside a character class`);
        return atom;
      }
      return { kind: "char", cp: take() };
    };
    const userRange = (lo: number, hi: number) => {
      if (ignoreCase) {
        const cased = casedIn(lo, hi);
        if (cased !== null)
          refuse(
            `ignoreCase with the non-ASCII letter ${describe(cased)}${lo === hi ? "" : " in a class range"}: its case folding differs between JavaScript and PostgreSQL`,
          );
      }
      ranges.push([lo, hi]);
    };
    while (src[i] !== "]") {
      const a = classAtom();
      if (a.kind === "set") {
        ranges.push(...a.ranges);
        continue;
      }
      const lo = (a as { cp: number }).cp;
      if (src[i] === "-" && src[i + 1] !== "]") {
        i++;
        const b = classAtom() as { cp: number }; // JavaScript refuses a class escape as a range end
        userRange(lo, b.cp);
      } else {
        userRange(lo, lo);
      }
    }
    i++; // "]"
    if (ranges.length === 0) return negated ? "." : "(?!)"; // [^] is any character, [] none
    // Letters of the class gain their case partners (the sets from \w already have theirs).
    return bracket(ignoreCase ? foldAscii(ranges) : ranges, negated);
  };

  let out = ""; // the exact ARE
  let chunk = ""; // the same without lookarounds
  let lookDepth = 0;
  const groups: Array<"group" | "look"> = [];
  const emit = (exact: string, relaxed = exact) => {
    out += exact;
    if (lookDepth === 0) chunk += relaxed;
  };
  while (i < src.length) {
    const c = src[i];
    switch (c) {
      case "\\": {
        i++;
        const atom = escapeAtom(false);
        if (atom.kind === "char") emit(literal(atom.cp));
        else if (atom.kind === "set") emit(setSource(atom));
        else emit(boundary(atom.negated), "(?:)");
        break;
      }
      case "[":
        i++;
        emit(characterClass());
        break;
      case ".":
        i++;
        emit(bracket(LINE_TERMINATORS, true));
        break;
      case "(": {
        const look = /^\(\?(=|!|<=|<!)/.exec(src.slice(i, i + 4));
        if (look) {
          if (lookDepth === 0) chunk += "(?:)";
          out += `(?${look[1]}`;
          lookDepth++;
          groups.push("look");
          i += look[0].length;
        } else if (src.startsWith("(?:", i)) {
          emit("(?:");
          groups.push("group");
          i += 3;
        } else if (src.startsWith("(?<", i)) {
          refuse("named groups (?<name>...) are not supported; use (?:...)");
        } else if (src.startsWith("(?", i)) {
          refuse(inlineFlags);
        } else {
          emit("(?:");
          groups.push("group");
          i++;
        }
        break;
      }
      case ")": {
        i++;
        if (groups.pop() === "look") {
          out += ")";
          lookDepth--;
        } else {
          emit(")");
        }
        break;
      }
      case "{": {
        const m = /^\{(\d+)(,(\d*))?\}/.exec(src.slice(i))!; // under `u` a brace is a quantifier
        const lo = Number(m[1]);
        const hi = m[3] ? Number(m[3]) : lo;
        if (lo > DUP_MAX || hi > DUP_MAX) refuse(`repetition bounds above ${DUP_MAX} ({${m[1]}${m[2] ?? ""}})`);
        emit(m[0]);
        i += m[0].length;
        break;
      }
      case "*":
      case "+":
      case "?":
      case "|":
      case "^":
      case "$":
        emit(c);
        i++;
        break;
      default:
        emit(literal(take()));
    }
  }
  return { source: out, chunkSource: chunk, flags };
}

/** Is `index` between the two halves of a surrogate pair of `text`? */
const insidePair = (text: string, index: number) =>
  index > 0 &&
  index < text.length &&
  (text.charCodeAt(index) & 0xfc00) === 0xdc00 &&
  (text.charCodeAt(index - 1) & 0xfc00) === 0xd800;

/**
 * The language's line test in JavaScript (what S3 runs), after the same refusals as
 * translateRegex. V8 also tries a `u` pattern at positions inside a surrogate pair, where nothing
 * can be consumed but lookarounds succeed (/(?!\W)/u finds a match in "😀" at index 1); a line
 * matches only by a match starting on a code point, as the specification and PostgreSQL have it.
 */
export function compileLineTest(pattern: string, ignoreCase = false): (line: string) => boolean {
  const re = new RegExp(pattern, translateRegex(pattern, ignoreCase).flags + "g");
  return (line) => {
    re.lastIndex = 0;
    for (let m = re.exec(line); m !== null; m = re.exec(line)) {
      if (!insidePair(line, m.index)) return true;
      re.lastIndex = m.index + 1;
    }
    return false;
  };
}
