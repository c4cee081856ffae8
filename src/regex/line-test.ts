/**
 * The language's line test in JavaScript: what S3 runs on each line, and the reference PostgreSQL's
 * translation is held to. It refuses exactly what translateRegex refuses, by calling it first.
 */
import { translateRegex } from "./translate.js";

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
