/**
 * JavaScript's character sets as code-point ranges, and which code points have case. The ARE
 * spells these sets out rather than using PostgreSQL's own classes (which follow the server's
 * locale), and ignoreCase is decided here: which ranges fold, and which characters are refused.
 */

export type Range = [number, number];

export const DIGIT: Range[] = [[0x30, 0x39]];
export const WORD: Range[] = [
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x5f, 0x5f],
  [0x61, 0x7a],
];
/** \w under /ui: JavaScript adds the characters that fold onto word characters. */
export const WORD_FOLDED: Range[] = [...WORD, [0x17f, 0x17f], [0x212a, 0x212a]];
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
export const LINE_TERMINATORS: Range[] = [
  [0x0a, 0x0a],
  [0x0d, 0x0d],
  [0x2028, 0x2029],
];
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
export function casedIn(lo: number, hi: number): number | null {
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

export function merge(ranges: Range[]): Range[] {
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
export function foldAscii(ranges: Range[]): Range[] {
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
