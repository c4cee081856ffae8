/**
 * Reading a pattern JavaScript has already accepted under `u`: code points, escapes and character
 * classes as atoms (sets of code-point ranges), refusing on the way what the language leaves out.
 * It knows nothing of ARE; translate.ts walks the pattern with it and writes the ARE.
 */
import { casedIn, DIGIT, JS_SPACE, type Range, WORD, WORD_FOLDED } from "./charsets.js";
import { type Refuse, reasons } from "./errors.js";

/** Identity escapes JavaScript allows under `u` (outside a class; `-` too inside one). */
const SYNTAX = new Set("^$\\.*+?()[]{}|/");

export type Atom =
  | { kind: "char"; cp: number }
  | { kind: "set"; ranges: Range[]; negated: boolean }
  | { kind: "boundary"; negated: boolean };

/** Does the pattern hold a group opening like (?i) or (?-m:, outside escapes and classes? */
export function hasInlineFlags(src: string): boolean {
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

/** A cursor over a valid pattern: `i` is the next UTF-16 index to read. */
export class Scanner {
  i = 0;

  constructor(
    readonly src: string,
    readonly ignoreCase: boolean,
    readonly refuse: Refuse,
  ) {}

  /** The code point at `i`, consumed. */
  take(): number {
    const cp = this.src.codePointAt(this.i)!;
    this.i += cp > 0xffff ? 2 : 1;
    return cp;
  }

  private hexAt(at: number, n: number): number | null {
    const s = this.src.slice(at, at + n);
    return /^[0-9a-fA-F]+$/.test(s) && s.length === n ? parseInt(s, 16) : null;
  }

  /** Under ignoreCase, refuses [lo, hi] when it holds a non-ASCII character with case. */
  refuseCased(lo: number, hi: number): void {
    if (!this.ignoreCase) return;
    const cased = casedIn(lo, hi);
    if (cased !== null) this.refuse(reasons.caseFolding(cased, lo !== hi));
  }

  /** One escape after the backslash at i - 1 (JavaScript has already checked its form). */
  escapeAtom(inClass: boolean): Atom {
    const { src, ignoreCase } = this;
    const n = src[this.i++];
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
        return { kind: "char", cp: src.charCodeAt(this.i++) % 32 };
      case "x": {
        const cp = this.hexAt(this.i, 2)!;
        this.i += 2;
        return { kind: "char", cp };
      }
      case "u": {
        if (src[this.i] === "{") {
          const end = src.indexOf("}", this.i);
          const cp = parseInt(src.slice(this.i + 1, end), 16);
          this.i = end + 1;
          return { kind: "char", cp };
        }
        let cp = this.hexAt(this.i, 4)!;
        this.i += 4;
        // Under `u`, \uD83D\uDE00 is one code point, as in JavaScript.
        if (cp >= 0xd800 && cp <= 0xdbff && src.startsWith("\\u", this.i)) {
          const low = this.hexAt(this.i + 2, 4);
          if (low !== null && low >= 0xdc00 && low <= 0xdfff) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            this.i += 6;
          }
        }
        return { kind: "char", cp };
      }
      case "p":
      case "P":
        return this.refuse(reasons.propertyEscapes);
      case "k":
        return this.refuse(reasons.namedBackReferences);
      default:
        if (/[1-9]/.test(n)) return this.refuse(reasons.backReferences);
        if (SYNTAX.has(n) || (inClass && n === "-")) return { kind: "char", cp: n.charCodeAt(0) };
        return this.refuse(reasons.unsupportedEscape(n)); // JavaScript would have refused it first
    }
  }

  /** A character class from just after "[" to just after its "]": its ranges as written. */
  characterClass(): { ranges: Range[]; negated: boolean } {
    const { src } = this;
    let negated = false;
    if (src[this.i] === "^") {
      negated = true;
      this.i++;
    }
    const ranges: Range[] = [];
    const classAtom = (): Atom => {
      if (src[this.i] === "\\") {
        this.i++;
        const atom = this.escapeAtom(true);
        if (atom.kind === "set" && atom.negated) this.refuse(reasons.negatedSetInClass(src[this.i - 1]));
        return atom;
      }
      return { kind: "char", cp: this.take() };
    };
    const userRange = (lo: number, hi: number) => {
      this.refuseCased(lo, hi);
      ranges.push([lo, hi]);
    };
    while (src[this.i] !== "]") {
      const a = classAtom();
      if (a.kind === "set") {
        ranges.push(...a.ranges);
        continue;
      }
      const lo = (a as { cp: number }).cp;
      if (src[this.i] === "-" && src[this.i + 1] !== "]") {
        this.i++;
        const b = classAtom() as { cp: number }; // JavaScript refuses a class escape as a range end
        userRange(lo, b.cp);
      } else {
        userRange(lo, lo);
      }
    }
    this.i++; // "]"
    return { ranges, negated };
  }
}
