/**
 * grep's patterns (POSIX basic and extended regular expressions, GNU's reading) as the store's
 * search language (JavaScript syntax under the `u` flag, tested on each line: src/regex/). Only
 * what means exactly the same in both is translated; anything else (back-references, character
 * classes such as [:alpha:], GNU escapes such as \w or \<, ranges beyond ASCII letters and
 * digits, a quantifier with nothing to repeat) answers null and grep runs in just-bash instead.
 */
import { escapeClassMember, escapeRegex, isPortableRange } from "./regex-text.js";

export type Syntax = "basic" | "extended" | "fixed";

/** The JavaScript source matching the same lines as `pattern`, or null. */
export function translatePattern(pattern: string, syntax: Syntax): string | null {
  if (syntax === "fixed") return escapeRegex(pattern);
  return new Translator([...pattern], syntax === "extended").run();
}

/** GNU ERE syntax spelled the BRE way (\( \) \{ \} \| \+ \?); in BRE the bare characters are literal. */
const BRE_OPERATORS = new Set(["(", ")", "{", "}", "|", "+", "?"]);

class Translator {
  private i = 0;
  private out = "";
  private depth = 0;
  /** Something a quantifier can apply to was just written. */
  private atom = false;
  /** At the start of the pattern, of a group or of an alternative (where BRE's "^" anchors). */
  private start = true;

  constructor(
    private readonly chars: string[],
    private readonly extended: boolean,
  ) {}

  run(): string | null {
    while (this.i < this.chars.length) {
      if (!this.step()) return null;
    }
    return this.depth === 0 ? this.out : null;
  }

  /** One token; false when it has no exact translation. */
  private step(): boolean {
    const wasStart = this.start;
    this.start = false;
    const c = this.chars[this.i++];
    if (c === "\\") {
      const next = this.chars[this.i++];
      if (next === undefined) return false;
      if (!this.extended && BRE_OPERATORS.has(next)) return this.operator(next);
      // Quoting a punctuation character makes it literal; GNU gives letters, digits and the word
      // and buffer anchors \< \> \` \' meanings of their own.
      if (/[\p{L}\p{N}<>`']/u.test(next)) return false;
      return this.literal(next);
    }
    if (this.extended && BRE_OPERATORS.has(c)) return this.operator(c);
    switch (c) {
      case ".":
        // Any character of the line: JavaScript's "." would not match "\r".
        this.out += "[^\\n]";
        this.atom = true;
        return true;
      case "*":
        return this.atom ? this.quantifier("*") : this.extended ? false : this.literal(c);
      case "^":
        if (this.extended || wasStart) return this.anchor("^");
        return this.literal(c);
      case "$":
        if (this.extended || this.atEnd()) return this.anchor("$");
        return this.literal(c);
      case "[":
        return this.bracket();
      default:
        return this.literal(c);
    }
  }

  private operator(c: string): boolean {
    switch (c) {
      case "(":
        this.depth++;
        this.out += "(?:";
        this.atom = false;
        this.start = true;
        return true;
      case ")":
        if (this.depth === 0) return false;
        this.depth--;
        this.out += ")";
        this.atom = true;
        return true;
      case "|":
        this.out += "|";
        this.atom = false;
        this.start = true;
        return true;
      case "{":
        return this.interval();
      case "}":
        return false;
      default:
        return this.atom ? this.quantifier(c) : false;
    }
  }

  /** {n}, {n,}, {n,m} and GNU's {,m}; the BRE form ends with "\}". */
  private interval(): boolean {
    if (!this.atom) return false;
    const rest = this.chars.slice(this.i).join("");
    const close = this.extended ? "}" : "\\}";
    const m = new RegExp(`^(\\d*)(,?)(\\d*)${close.replace(/\\/g, "\\\\")}`).exec(rest);
    if (!m || (m[1] === "" && m[3] === "") || (m[2] === "" && m[3] !== "")) return false;
    const [min, max] = [Number(m[1] || "0"), m[3] === "" ? null : Number(m[3])];
    // The store refuses bounds above 255 (PostgreSQL's limit).
    if (min > 255 || (max !== null && (max > 255 || max < min))) return false;
    this.i += [...m[0]].length;
    return this.quantifier(m[2] === "" ? `{${min}}` : `{${min},${max ?? ""}}`);
  }

  private quantifier(q: string): boolean {
    this.out += q;
    // GNU applies a second quantifier to the first's result; JavaScript refuses "a**".
    this.atom = false;
    return true;
  }

  private anchor(a: string): boolean {
    this.out += a;
    this.atom = false;
    return true;
  }

  private literal(c: string): boolean {
    this.out += escapeRegex(c);
    this.atom = true;
    return true;
  }

  /** BRE "$" is an anchor at the end of the pattern, of a group or of an alternative. */
  private atEnd(): boolean {
    const rest = this.chars.slice(this.i, this.i + 2).join("");
    return this.i === this.chars.length || rest === "\\)" || rest === "\\|";
  }

  /** [...]: members are literal (a backslash too), ranges only within ASCII digits or letters. */
  private bracket(): boolean {
    const chars = this.chars;
    let i = this.i;
    const negated = chars[i] === "^";
    if (negated) i++;
    const members: string[] = [];
    for (let first = true; i < chars.length; i++, first = false) {
      const c = chars[i];
      if (c === "]" && !first) {
        this.i = i + 1;
        // A negated set does not match the line's end: the line holds no "\n".
        this.out += `[${negated ? "^\\n" : ""}${members.join("")}]`;
        this.atom = true;
        return true;
      }
      if (c === "[" && /[:=.]/.test(chars[i + 1] ?? "")) return false;
      if (chars[i + 1] === "-" && chars[i + 2] !== undefined && chars[i + 2] !== "]") {
        if (!isPortableRange(c, chars[i + 2])) return false;
        members.push(`${escapeClassMember(c)}-${escapeClassMember(chars[i + 2])}`);
        i += 2;
      } else members.push(escapeClassMember(c));
    }
    return false;
  }
}
