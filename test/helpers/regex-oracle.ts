/**
 * The regex language's meaning (src/regex/), computed independently of the backends: a line
 * matches when `new RegExp(pattern, "u" + (ignoreCase ? "i" : ""))` matches starting at one of its
 * code points. Tried sticky at each code point, so V8's extra attempts inside a surrogate pair
 * (where only lookarounds can succeed) are not counted.
 */
export function regexMatchesLine(pattern: string, ignoreCase: boolean, line: string): boolean {
  const re = new RegExp(pattern, ignoreCase ? "uiy" : "uy");
  for (let k = 0; k <= line.length; k++) {
    const insidePair = k > 0 && /[\ud800-\udbff]/.test(line[k - 1]) && /[\udc00-\udfff]/.test(line[k] ?? "");
    if (insidePair) continue;
    re.lastIndex = k;
    if (re.test(line)) return true;
  }
  return false;
}
