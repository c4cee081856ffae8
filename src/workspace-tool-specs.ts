/**
 * The protocol's own file operations as tool specs (tool-spec.ts), for clients that do not get
 * deepagents' file tools — the MCP server. Same names and arguments as deepagents' tools where it
 * has one (ls, read_file, write_file, edit_file, glob, grep), with its conventions: absolute
 * paths, text answers, a failure as one line starting with "Error:". read_file numbers lines as
 * deepagents' read_file does (`cat -n`).
 */
import type { DeepAgentsBackend } from "./core/interface.js";
import type { GrepMatch } from "./protocol.js";
import { answer, failure } from "./tool-answer.js";
import type { AnyToolSpec } from "./tool-spec.js";

const path = (what: string) => ({ type: "string", description: `Absolute path of the ${what}` }) as const;
const dirPath = { type: "string", description: 'Absolute path of a directory (default "/")' } as const;
const maxCount = { type: "integer", description: "Stop after this many matching lines (default: all)" } as const;
const glob = { type: "string", description: "Only files matching this glob (e.g. *.ts, src/**/*.md)" } as const;

/** Matches as `grep -n` prints them, with a note when the cap cut them. */
const matchLines = (matches: GrepMatch[], truncated = false): string =>
  matches.length === 0
    ? "No matches."
    : matches.map((m) => `${m.path}:${m.line}:${m.text}`).join("\n") +
      (truncated ? "\n(more matches: raise max_count or narrow the path)" : "");

/** Text numbered from `first`, as deepagents' read_file shows it. */
const numbered = (text: string, first: number): string =>
  text
    .split("\n")
    .map((line, i) => `${String(first + i).padStart(6)}\t${line}`)
    .join("\n");

export function workspaceToolSpecs(backend: DeepAgentsBackend): AnyToolSpec[] {
  return [
    {
      name: "ls",
      description: "List a directory: its files (with sizes) and subdirectories (ending in /).",
      schema: { type: "object", properties: { path: dirPath } },
      effect: "read",
      idempotent: true,
      run: (input: { path?: string }) =>
        answer(async () => {
          const r = await backend.ls(input.path ?? "/");
          if (r.error) return failure(r.error);
          const files = r.files ?? [];
          if (files.length === 0) return "Empty directory.";
          return files.map((f) => (f.is_dir ? f.path : `${f.path}  ${f.size} bytes`)).join("\n");
        }),
    },
    {
      name: "read_file",
      description:
        "Read a text file, with line numbers: `limit` lines from line `offset` (0-based; default the first 2000).",
      schema: {
        type: "object",
        properties: {
          file_path: path("file"),
          offset: { type: "integer", description: "Lines to skip (default 0)" },
          limit: { type: "integer", description: "Lines to read (default 2000)" },
        },
        required: ["file_path"],
      },
      effect: "read",
      idempotent: true,
      run: (input: { file_path: string; offset?: number; limit?: number }) =>
        answer(async () => {
          const r = await backend.read(input.file_path, input.offset ?? 0, input.limit ?? 2000);
          if (r.error) return failure(r.error);
          if (typeof r.content !== "string")
            return `${input.file_path} is a binary file (${r.mimeType}): read it as a resource`;
          if (r.startLine === undefined) return r.content;
          const more =
            r.nextOffset === undefined
              ? ""
              : `\n(lines ${r.startLine}-${r.endLine} of ${r.totalLines}; read on with offset ${r.nextOffset})`;
          return numbered(r.content, r.startLine) + more;
        }),
    },
    {
      name: "write_file",
      description: "Create a file, or replace its whole content. Parent directories are made as needed.",
      schema: {
        type: "object",
        properties: { file_path: path("file"), content: { type: "string", description: "The new content" } },
        required: ["file_path", "content"],
      },
      effect: "change",
      idempotent: true,
      run: (input: { file_path: string; content: string }) =>
        answer(async () => {
          const r = await backend.write(input.file_path, input.content);
          return r.error ? failure(r.error) : `Wrote ${input.file_path}`;
        }),
    },
    {
      name: "edit_file",
      description:
        "Replace old_string with new_string in a file. old_string must occur exactly once unless replace_all is true.",
      schema: {
        type: "object",
        properties: {
          file_path: path("file"),
          old_string: { type: "string", description: "The text to replace" },
          new_string: { type: "string", description: "Its replacement" },
          replace_all: { type: "boolean", description: "Replace every occurrence (default false)" },
        },
        required: ["file_path", "old_string", "new_string"],
      },
      effect: "change",
      idempotent: false,
      run: (input: { file_path: string; old_string: string; new_string: string; replace_all?: boolean }) =>
        answer(async () => {
          const r = await backend.edit(input.file_path, input.old_string, input.new_string, input.replace_all ?? false);
          if (r.error) return failure(r.error);
          return `Replaced ${r.occurrences} occurrence${r.occurrences === 1 ? "" : "s"} in ${input.file_path}`;
        }),
    },
    {
      name: "delete_file",
      description: "Delete a file, or a directory with everything in it.",
      schema: { type: "object", properties: { path: path("file or directory") }, required: ["path"] },
      effect: "change",
      idempotent: false,
      run: (input: { path: string }) =>
        answer(async () => {
          const r = await backend.delete(input.path);
          return r.error ? failure(r.error) : `Deleted ${input.path}`;
        }),
    },
    {
      name: "make_directory",
      description:
        "Make a directory that exists while empty. With parents, missing parent directories are made too and an existing directory is fine (mkdir -p).",
      schema: {
        type: "object",
        properties: {
          path: path("directory"),
          parents: { type: "boolean", description: "Make missing parents; accept an existing directory" },
        },
        required: ["path"],
      },
      effect: "add",
      idempotent: true,
      run: (input: { path: string; parents?: boolean }) =>
        answer(async () => {
          const r = await backend.mkdir(input.path, { parents: input.parents ?? false });
          if (r.error) return failure(r.error);
          return r.created ? `Made ${input.path}` : `${input.path} exists`;
        }),
    },
    {
      name: "glob",
      description: "Find files by name pattern (e.g. **/*.ts), below a directory.",
      schema: {
        type: "object",
        properties: { pattern: { type: "string", description: "A glob pattern" }, path: dirPath },
        required: ["pattern"],
      },
      effect: "read",
      idempotent: true,
      run: (input: { pattern: string; path?: string }) =>
        answer(async () => {
          const r = await backend.glob(input.pattern, input.path ?? "/");
          if (r.error) return failure(r.error);
          const files = r.files ?? [];
          return files.length ? files.map((f) => f.path).join("\n") : "No files match.";
        }),
    },
    {
      name: "grep",
      description: "Find lines containing a literal text, in the files below a path: path:line:text per match.",
      schema: {
        type: "object",
        properties: {
          pattern: { type: "string", description: "The literal text to find" },
          path: dirPath,
          glob,
          max_count: maxCount,
        },
        required: ["pattern"],
      },
      effect: "read",
      idempotent: true,
      run: (input: { pattern: string; path?: string; glob?: string; max_count?: number }) =>
        answer(async () => {
          const cap = input.max_count ?? null;
          const r = await backend.grep(
            input.pattern,
            input.path ?? "/",
            input.glob ?? null,
            cap === null ? null : cap + 1,
          );
          if (r.error) return failure(r.error);
          const matches = r.matches ?? [];
          return cap !== null && matches.length > cap ? matchLines(matches.slice(0, cap), true) : matchLines(matches);
        }),
    },
    {
      name: "search",
      description:
        "Find lines matching a regular expression (JavaScript syntax) or a literal, optionally ignoring case: path:line:text per match.",
      schema: {
        type: "object",
        properties: {
          pattern: { type: "string", description: "The pattern" },
          regex: { type: "boolean", description: "The pattern is a regular expression (default: a literal)" },
          ignore_case: { type: "boolean", description: "Ignore case (default false)" },
          path: dirPath,
          glob,
          max_count: maxCount,
        },
        required: ["pattern"],
      },
      effect: "read",
      idempotent: true,
      run: (input: {
        pattern: string;
        regex?: boolean;
        ignore_case?: boolean;
        path?: string;
        glob?: string;
        max_count?: number;
      }) =>
        answer(async () => {
          const r = await backend.search({
            pattern: input.pattern,
            regex: input.regex ?? false,
            ignoreCase: input.ignore_case ?? false,
            path: input.path ?? "/",
            glob: input.glob ?? null,
            maxCount: input.max_count ?? null,
          });
          if (r.error) return failure(r.error);
          return matchLines(r.matches ?? [], r.truncated);
        }),
    },
  ];
}
