/**
 * Shell wildcard patterns as fnmatch(3) reads them without flags (find -name/-path, grep
 * --include/--exclude): `*` and `?` match any character, "/" and a leading "." included; `[...]`
 * is a set (`!` or `^` negates it), `\` quotes the next character. Compiled to a JavaScript regular
 * expression, or null for what is not translated exactly (character classes such as [:alpha:]
 * and ranges beyond ASCII letters and digits, which depend on the locale): the caller then leaves
 * the work to just-bash's own command.
 */

import { escapeClassMember, escapeRegex, isPortableRange } from "./regex-text.js";

export function fnmatchRegex(pattern: string, ignoreCase = false): RegExp | null {
  const chars = [...pattern];
  let out = "";
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (c === "*") out += "[\\s\\S]*";
    else if (c === "?") out += "[\\s\\S]";
    else if (c === "\\") out += escapeRegex(chars[++i] ?? "\\");
    else if (c === "[") {
      const set = bracket(chars, i);
      if (set === null) return null;
      if (set === undefined) out += "\\[";
      else {
        out += set.regex;
        i = set.end;
      }
    } else out += escapeRegex(c);
  }
  return new RegExp(`^${out}$`, ignoreCase ? "iu" : "u");
}

/** A bracket expression at `start`: its regex and closing index; undefined: not one (a literal "["); null: untranslated. */
function bracket(chars: string[], start: number): { regex: string; end: number } | null | undefined {
  let i = start + 1;
  const negated = chars[i] === "!" || chars[i] === "^";
  if (negated) i++;
  const members: string[] = [];
  for (let first = true; i < chars.length; i++, first = false) {
    let c = chars[i];
    if (c === "]" && !first) return { regex: `[${negated ? "^" : ""}${members.join("")}]`, end: i };
    if (c === "[" && /[:=.]/.test(chars[i + 1] ?? "")) return null;
    if (c === "\\") c = chars[++i] ?? "\\";
    if (chars[i + 1] === "-" && chars[i + 2] !== undefined && chars[i + 2] !== "]") {
      const to = chars[i + 2] === "\\" ? chars[i + 3] : chars[i + 2];
      if (to === undefined || !isPortableRange(c, to)) return null;
      members.push(`${escapeClassMember(c)}-${escapeClassMember(to)}`);
      i += chars[i + 2] === "\\" ? 3 : 2;
    } else members.push(escapeClassMember(c));
  }
  return undefined;
}
