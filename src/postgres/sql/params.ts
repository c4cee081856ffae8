/**
 * Named parameters of sql/*.sql. A file writes `:workspace`, `:ifVersion`; PostgreSQL takes
 * $1..$n. Each name becomes the $n of its first appearance (a name used twice is one parameter).
 * Not a parameter: a cast (`::interval`), anything inside a string ('…', E'…', $$…$$,
 * $tag$…$tag$), a quoted identifier ("…") or a comment (-- to the end of the line, or a block
 * comment). A positional $1 is refused, so a file never mixes the two styles.
 */

export interface NamedSql {
  /** The text PostgreSQL runs: every `:name` replaced by its `$n`. */
  readonly text: string;
  /** The parameter names in $n order ($1 first). */
  readonly params: readonly string[];
}

const IDENT_START = /[A-Za-z_]/;
const IDENT_PART = /[A-Za-z0-9_$]/;
const DOLLAR_TAG = /\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$/y;
const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;

export class SqlSyntaxError extends Error {
  constructor(message: string, source: string, at: number) {
    const line = source.slice(0, at).split("\n").length;
    super(`${message} (line ${line})`);
    this.name = "SqlSyntaxError";
  }
}

export function compileNamedParameters(source: string): NamedSql {
  const params: string[] = [];
  let text = "";
  let i = 0;
  // Copies source[i, end) verbatim and moves on.
  const copyTo = (end: number) => {
    text += source.slice(i, end);
    i = end;
  };
  while (i < source.length) {
    const c = source[i];
    const next = source[i + 1];
    if (c === "-" && next === "-") {
      const eol = source.indexOf("\n", i);
      copyTo(eol === -1 ? source.length : eol);
    } else if (c === "/" && next === "*") {
      copyTo(endOfBlockComment(source, i));
    } else if (c === "'") {
      const escapes = /[Ee]/.test(source[i - 1] ?? "") && !IDENT_PART.test(source[i - 2] ?? "");
      copyTo(endOfQuoted(source, i, "'", escapes));
    } else if (c === '"') {
      copyTo(endOfQuoted(source, i, '"', false));
    } else if (c === "$" && !IDENT_PART.test(source[i - 1] ?? "")) {
      DOLLAR_TAG.lastIndex = i;
      const tag = DOLLAR_TAG.exec(source)?.[0];
      if (tag) {
        const close = source.indexOf(tag, i + tag.length);
        if (close === -1) throw new SqlSyntaxError(`unterminated ${tag}-quoted string`, source, i);
        copyTo(close + tag.length);
      } else if (/[0-9]/.test(next ?? "")) {
        throw new SqlSyntaxError("positional parameter: name it (:name) instead", source, i);
      } else {
        copyTo(i + 1);
      }
    } else if (c === ":" && next === ":") {
      copyTo(i + 2); // a cast; the type name after it is plain text
    } else if (c === ":" && IDENT_START.test(next ?? "")) {
      NAME.lastIndex = i + 1;
      const name = NAME.exec(source)![0];
      let index = params.indexOf(name);
      if (index === -1) index = params.push(name) - 1;
      text += `$${index + 1}`;
      i += 1 + name.length;
    } else {
      copyTo(i + 1);
    }
  }
  return { text, params };
}

/** The end of the quoted run starting at `start` ('' or "" inside it is the quote itself). */
function endOfQuoted(source: string, start: number, quote: string, backslashEscapes: boolean): number {
  for (let i = start + 1; i < source.length; i++) {
    if (backslashEscapes && source[i] === "\\") i++;
    else if (source[i] === quote) {
      if (source[i + 1] !== quote) return i + 1;
      i++;
    }
  }
  throw new SqlSyntaxError(quote === "'" ? "unterminated string" : "unterminated quoted identifier", source, start);
}

/** PostgreSQL's block comments nest. */
function endOfBlockComment(source: string, start: number): number {
  let depth = 0;
  for (let i = start; i < source.length - 1; i++) {
    if (source[i] === "/" && source[i + 1] === "*") {
      depth++;
      i++;
    } else if (source[i] === "*" && source[i + 1] === "/") {
      depth--;
      i++;
      if (depth === 0) return i + 1;
    }
  }
  throw new SqlSyntaxError("unterminated /* comment", source, start);
}
