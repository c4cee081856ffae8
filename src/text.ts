/**
 * deepagents' text semantics, for backends that work on whole texts in the client (S3). The
 * PostgreSQL backend does the same in SQL (migrations/0001_files.sql); the shared conformance
 * and differential suites keep the two identical.
 */

/** Lines split on "\n"; a trailing newline ends the last line instead of starting a new one. */
export function lineCount(text: string): number {
  if (text === "") return 0;
  let n = 0;
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) n++;
  return text.endsWith("\n") ? n : n + 1;
}

/** Lines [offset, offset + limit) joined by "\n" (the element after a final "\n" included). */
export function lineWindow(text: string, offset: number, limit: number): { text: string; lines: number } {
  const selected = text.split("\n").slice(offset, offset + limit);
  return { text: selected.join("\n"), lines: selected.length };
}

export type Replacement =
  | { status: "ok"; content: string; occurrences: number }
  | { status: "empty_old" | "no_match" }
  | { status: "multiple"; occurrences: number };

/** String replacement with deepagents' occurrence rules (non-overlapping, left to right). */
export function replaceText(content: string, oldString: string, newString: string, replaceAll: boolean): Replacement {
  if (content === "" && oldString === "") return { status: "ok", content: newString, occurrences: 0 };
  if (oldString === "") return { status: "empty_old" };
  const parts = content.split(oldString);
  const occurrences = parts.length - 1;
  if (occurrences === 0) return { status: "no_match" };
  if (occurrences > 1 && !replaceAll) return { status: "multiple", occurrences };
  return { status: "ok", content: parts.join(newString), occurrences };
}

/** A line predicate: a literal (grep) or a compiled regular expression (search). */
export type LineTest = (line: string) => boolean;

export const containsLiteral =
  (pattern: string): LineTest =>
  (line) =>
    line.includes(pattern);

/** 1-based numbers and texts of the lines that pass `test`. */
export function matchingLines(text: string, test: LineTest): Array<{ line: number; text: string }> {
  const out: Array<{ line: number; text: string }> = [];
  text.split("\n").forEach((line, i) => {
    if (test(line)) out.push({ line: i + 1, text: line });
  });
  return out;
}
