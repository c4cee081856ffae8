/**
 * RegexError and every reason a pattern is refused, worded once. The parser and the translation
 * both refuse through these, and S3 (compileLineTest) runs the same translation first, so a
 * refusal reads the same on both backends.
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

/** Throws the RegexError of one pattern (reason: one line). */
export type Refuse = (reason: string) => never;

export const refuser =
  (pattern: string): Refuse =>
  (reason) => {
    throw new RegexError(pattern, reason);
  };

const describe = (cp: number) => `'${String.fromCodePoint(cp)}' (U+${cp.toString(16).toUpperCase().padStart(4, "0")})`;

export const reasons = {
  notAString: "the pattern must be a string",
  inlineFlags: "inline flags and modifiers such as (?i) are not supported; use the ignoreCase option",
  namedGroups: "named groups (?<name>...) are not supported; use (?:...)",
  propertyEscapes: "Unicode property escapes (\\p{...}) are not supported",
  namedBackReferences: "named back-references (\\k<name>) are not supported",
  backReferences: "back-references (\\1 ...) are not supported",
  unsupportedEscape: (n: string) => `unsupported escape \\${n}`,
  negatedSetInClass: (n: string) => `\\${n} inside a character class`,
  /** `written`: the bounds as the pattern has them ("300" or "1,300"). */
  boundsAbove: (max: number, written: string) => `repetition bounds above ${max} ({${written}})`,
  caseFolding: (cp: number, inRange: boolean) =>
    `ignoreCase with the non-ASCII letter ${describe(cp)}${inRange ? " in a class range" : ""}: its case folding differs between JavaScript and PostgreSQL`,
  /** JavaScript's own reason for refusing the pattern, without its "Invalid regular expression: /…/u: ". */
  javascript: (e: unknown) => (e as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, ""),
};
