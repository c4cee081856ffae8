/**
 * JavaScript-flavoured regular expressions, translated to PostgreSQL ARE where both read them
 * the same way, and refused (RegexError) where ARE would read them differently or cannot do them
 * — never a silently different result. Matching is per line, so `^`/`$` are line anchors.
 *
 * Translated: \b → \y, \B → \Y, . → [^\n\r\u2028\u2029] (JS's dot), \xhh → \u00hh (ARE's \x eats
 * every following hex digit), \u{…} → \U…, [\b] → \u0008, [^] → ., a '{' that is not a
 * quantifier → \{, a '[' inside a class → \[, a leading (?i) → case-insensitive.
 * Refused: back-references (\1, \k<name>), named groups, \p{…}/\P{…}, possessive quantifiers,
 * {n,m} above 255, inline modifiers other than a leading (?i), [] (matches nothing), \D \S \W
 * inside a class, unknown letter escapes.
 */

export class RegexError extends Error {
  constructor(readonly pattern: string, readonly reason: string) {
    super(reason);
    this.name = "RegexError";
  }
}

export interface TranslatedRegex {
  /** ARE source for matching one line. */
  source: string;
  /** A leading (?i) asked for case-insensitive matching. */
  ignoreCase: boolean;
}

const DUP_MAX = 255; // ARE's limit on {n,m} bounds
const SIMPLE_ESCAPES = new Set(["d", "D", "s", "S", "w", "W", "n", "r", "t", "f", "v"]);
const JS_DOT = "[^\\n\\r\\u2028\\u2029]";

export function translateRegex(pattern: string): TranslatedRegex {
  const refuse = (reason: string): never => {
    throw new RegexError(pattern, reason);
  };
  let src = pattern;
  let ignoreCase = false;
  if (src.startsWith("(?i)")) {
    ignoreCase = true;
    src = src.slice(4);
  }
  try {
    new RegExp(src); // JavaScript's own syntax check first
  } catch (e) {
    refuse((e as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /, ""));
  }
  let out = "";
  let inClass = false;
  let classStart = false; // right after "[" or "[^"
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === "\\") {
      const n = src[i + 1];
      if (n === undefined) refuse("a trailing backslash");
      i++;
      if (/[1-9]/.test(n)) refuse("back-references (\\1 ...) are not supported");
      if (n === "k" && src[i + 1] === "<") refuse("named back-references (\\k<name>) are not supported");
      if (n === "p" || n === "P") refuse("Unicode property escapes (\\p{...}) are not supported");
      if (n === "b") {
        out += inClass ? "\\u0008" : "\\y";
      } else if (n === "B") {
        if (inClass) refuse("\\B inside a character class");
        out += "\\Y";
      } else if (n === "x") {
        const hex = src.slice(i + 1, i + 3);
        if (!/^[0-9a-fA-F]{2}$/.test(hex)) refuse("\\x needs two hex digits");
        out += `\\u00${hex}`;
        i += 2;
      } else if (n === "u") {
        if (src[i + 1] === "{") {
          const end = src.indexOf("}", i);
          const hex = src.slice(i + 2, end);
          if (end < 0 || !/^[0-9a-fA-F]{1,6}$/.test(hex)) refuse("malformed \\u{...}");
          out += `\\U${hex.padStart(8, "0")}`;
          i = end;
        } else {
          const hex = src.slice(i + 1, i + 5);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) refuse("\\u needs four hex digits");
          out += `\\u${hex}`;
          i += 4;
        }
      } else if (n === "c") {
        const letter = src[i + 1];
        if (!letter || !/[A-Za-z]/.test(letter)) refuse("\\c needs a letter");
        out += `\\c${letter}`;
        i++;
      } else if (n === "0") {
        refuse("\\0 (NUL) cannot occur in stored text");
      } else if (SIMPLE_ESCAPES.has(n)) {
        if (inClass && (n === "D" || n === "S" || n === "W")) refuse(`\\${n} inside a character class`);
        out += `\\${n}`;
      } else if (/[A-Za-z]/.test(n)) {
        refuse(`unknown escape \\${n}`);
      } else {
        out += `\\${n}`; // an escaped punctuation character is itself in both dialects
      }
      classStart = false;
      continue;
    }
    if (inClass) {
      if (c === "]" && !classStart) {
        inClass = false;
        out += c;
      } else if (c === "]" && classStart) {
        refuse("an empty character class [] matches nothing");
      } else if (c === "[") {
        out += "\\["; // ARE would start [:class:], [.coll.] or [=equiv=] here
      } else {
        out += c;
      }
      classStart = false;
      continue;
    }
    switch (c) {
      case "[":
        if (src.startsWith("[^]", i)) {
          out += ".";
          i += 2;
          break;
        }
        inClass = true;
        out += "[";
        if (src[i + 1] === "^") {
          out += "^";
          i++;
        }
        classStart = true;
        continue;
      case ".":
        out += JS_DOT;
        break;
      case "(":
        if (src[i + 1] === "?") {
          const rest = src.slice(i + 2);
          if (rest.startsWith(":") || rest.startsWith("=") || rest.startsWith("!")) {
            out += "(?" + rest[0];
            i += 2;
          } else if (rest.startsWith("<=") || rest.startsWith("<!")) {
            out += "(?" + rest.slice(0, 2);
            i += 3;
          } else if (rest.startsWith("<")) {
            refuse("named groups (?<name>...) are not supported");
          } else {
            refuse("inline modifiers are not supported (only a leading (?i))");
          }
        } else {
          out += c;
        }
        break;
      case "{": {
        const m = /^\{(\d+)(,(\d*))?\}/.exec(src.slice(i));
        if (!m) {
          out += "\\{"; // JavaScript reads a non-quantifier brace literally
          break;
        }
        const lo = Number(m[1]);
        const hi = m[3] ? Number(m[3]) : lo;
        if (lo > DUP_MAX || hi > DUP_MAX) refuse(`repetition bounds above ${DUP_MAX} ({${m[1]}${m[2] ?? ""}})`);
        out += m[0];
        i += m[0].length - 1;
        if (src[i + 1] === "+") refuse("possessive quantifiers are not supported");
        break;
      }
      case "}":
        out += "\\}";
        break;
      case "*":
      case "+":
      case "?":
        out += c;
        if (src[i + 1] === "+" && c !== "?" ) refuse("possessive quantifiers are not supported");
        break;
      default:
        out += c;
    }
    classStart = false;
  }
  return { source: out, ignoreCase };
}
