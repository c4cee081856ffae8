/**
 * The translation to PostgreSQL ARE: walks a pattern of the language (parser.ts reads it) and
 * writes an ARE that accepts the same lines, with the chunk prefilter's relaxed twin beside it
 * (prefilter.ts).
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
 */
import { foldAscii, LINE_TERMINATORS, merge, type Range, WORD, WORD_FOLDED } from "./charsets.js";
import { reasons, refuser } from "./errors.js";
import { hasInlineFlags, Scanner } from "./parser.js";
import { TwoPatterns } from "./prefilter.js";

export interface TranslatedRegex {
  /** ARE matching one line exactly as JavaScript's RegExp with `flags` does. */
  source: string;
  /** ARE for a chunk of lines (run with (?n)): matches whenever one of its lines matches `source`. */
  chunkSource: string;
  /** The JavaScript flags of the language: "u", or "ui" with ignoreCase. */
  flags: "u" | "ui";
}

const DUP_MAX = 255; // ARE's limit on {n,m} bounds

const hex = (cp: number) =>
  cp <= 0xffff ? `\\u${cp.toString(16).padStart(4, "0")}` : `\\U${cp.toString(16).padStart(8, "0")}`;

/** A bracket member: an ASCII letter or digit as itself, anything else as a \u/\U escape. */
const member = (cp: number) =>
  /^[A-Za-z0-9]$/.test(cp < 0x80 ? String.fromCharCode(cp) : "") ? String.fromCharCode(cp) : hex(cp);

function bracket(ranges: Range[], negated: boolean): string {
  const items = merge(ranges).map(([lo, hi]) => (lo === hi ? member(lo) : `${member(lo)}-${member(hi)}`));
  return `[${negated ? "^" : ""}${items.join("")}]`;
}

/** A literal character outside a class (one the parser has let through). */
function literal(cp: number, ignoreCase: boolean): string {
  if (ignoreCase && ((cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a))) {
    return bracket(foldAscii([[cp, cp]]), false);
  }
  const ascii = cp < 0x80 ? String.fromCharCode(cp) : "";
  if (/^[A-Za-z0-9]$/.test(ascii)) return ascii;
  if (cp >= 0x20 && cp < 0x7f) return `\\${ascii}`; // ARE: a backslash before punctuation is the character
  if (cp < 0x80 || (cp >= 0xd800 && cp <= 0xdfff)) return hex(cp); // controls; lone surrogates never match stored text
  return String.fromCodePoint(cp);
}

function boundary(negated: boolean, ignoreCase: boolean): string {
  const w = bracket(ignoreCase ? WORD_FOLDED : WORD, false);
  return negated ? `(?:(?<=${w})(?=${w})|(?<!${w})(?!${w}))` : `(?:(?<=${w})(?!${w})|(?<!${w})(?=${w}))`;
}

/**
 * The chunk pattern's form of \w: any character but a newline (`.` under (?n)), a superset. With
 * the exact bracket ([0-9A-Z_a-z]) -- and, in the C locale, with ARE's own \w, the same 63
 * characters -- pg_trgm expands the class into trigrams and drops the ones next to it:
 * `deprecat\w+ since` took 27,879 candidate chunks instead of 503 (10x slower). Only the plain
 * \w: \W and the case-folded set stay exact.
 */
function relaxedSet(atom: { ranges: Range[]; negated: boolean }): string | undefined {
  return atom.ranges === WORD && !atom.negated ? "." : undefined;
}

/** A character class, from the ranges the parser read. */
function characterClass({ ranges, negated }: { ranges: Range[]; negated: boolean }, ignoreCase: boolean): string {
  if (ranges.length === 0) return negated ? "." : "(?!)"; // [^] is any character, [] none
  // Letters of the class gain their case partners (the sets from \w already have theirs).
  return bracket(ignoreCase ? foldAscii(ranges) : ranges, negated);
}

/**
 * Validates `pattern` as a member of the language and translates it to ARE. Throws RegexError
 * (reason: one line) for anything outside the language.
 */
export function translateRegex(pattern: string, ignoreCase = false): TranslatedRegex {
  const refuse = refuser(pattern);
  const flags = ignoreCase ? "ui" : "u";
  if (typeof pattern !== "string") refuse(reasons.notAString);
  try {
    new RegExp(pattern, flags); // JavaScript's own grammar under `u` first
  } catch (e) {
    // Node rejects (?i) as "Invalid group" (newer engines accept some modifiers): say what it is.
    if (hasInlineFlags(pattern)) refuse(reasons.inlineFlags);
    refuse(reasons.javascript(e));
  }
  const src = pattern;
  const scan = new Scanner(src, ignoreCase, refuse);
  const out = new TwoPatterns();
  const emitLiteral = (cp: number) => {
    scan.refuseCased(cp, cp);
    out.emit(literal(cp, ignoreCase));
  };
  while (scan.i < src.length) {
    const c = src[scan.i];
    switch (c) {
      case "\\": {
        scan.i++;
        const atom = scan.escapeAtom(false);
        if (atom.kind === "char") emitLiteral(atom.cp);
        else if (atom.kind === "set") out.emit(bracket(atom.ranges, atom.negated), relaxedSet(atom));
        else out.emitBoundary(boundary(atom.negated, ignoreCase));
        break;
      }
      case "[":
        scan.i++;
        out.emit(characterClass(scan.characterClass(), ignoreCase));
        break;
      case ".":
        scan.i++;
        out.emit(bracket(LINE_TERMINATORS, true));
        break;
      case "(": {
        const look = /^\(\?(=|!|<=|<!)/.exec(src.slice(scan.i, scan.i + 4));
        if (look) {
          out.openLookaround(look[1]);
          scan.i += look[0].length;
        } else if (src.startsWith("(?:", scan.i)) {
          out.openGroup();
          scan.i += 3;
        } else if (src.startsWith("(?<", scan.i)) {
          refuse(reasons.namedGroups);
        } else if (src.startsWith("(?", scan.i)) {
          refuse(reasons.inlineFlags);
        } else {
          out.openGroup();
          scan.i++;
        }
        break;
      }
      case ")":
        scan.i++;
        out.close();
        break;
      case "{": {
        const m = /^\{(\d+)(,(\d*))?\}/.exec(src.slice(scan.i))!; // under `u` a brace is a quantifier
        const lo = Number(m[1]);
        const hi = m[3] ? Number(m[3]) : lo;
        if (lo > DUP_MAX || hi > DUP_MAX) refuse(reasons.boundsAbove(DUP_MAX, m[1] + (m[2] ?? "")));
        out.emit(m[0]);
        scan.i += m[0].length;
        break;
      }
      case "*":
      case "+":
      case "?":
      case "|":
      case "^":
      case "$":
        out.emit(c);
        scan.i++;
        break;
      default:
        emitLiteral(scan.take());
    }
  }
  return { source: out.source, chunkSource: out.chunkSource, flags };
}
