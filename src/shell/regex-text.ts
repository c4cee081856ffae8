/** Pieces of JavaScript regular-expression source shared by the wildcard and grep translations. */

const SPECIAL = /[\\^$.*+?()[\]{}|/]/g;

/** `text` as a literal outside a character class. */
export function escapeRegex(text: string): string {
  return text.replace(SPECIAL, "\\$&");
}

/** One character as a literal member of a character class. */
export function escapeClassMember(c: string): string {
  return /[\\\]^[-]/.test(c) ? `\\${c}` : c;
}

/**
 * A range every locale orders the same way (within digits, lower-case or upper-case ASCII
 * letters); others ([a-Z], [à-ÿ]) depend on the locale's collation and are not translated.
 */
export function isPortableRange(from: string, to: string): boolean {
  return [/^[0-9]$/, /^[a-z]$/, /^[A-Z]$/].some((kind) => kind.test(from) && kind.test(to)) && from <= to;
}
