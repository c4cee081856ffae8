/**
 * The CLI's file commands: import/export and the protocol operations, on PostgreSQL or S3 alike
 * (ctx.files() is a DeepAgentsBackend).
 */
import type { Command } from "commander";
import { DEFAULTS } from "../../core/defaults.js";
import type { DeepAgentsBackend } from "../../core/interface.js";
import type { SearchResult } from "../../protocol.js";
import { action, int, stdinText } from "../action.js";
import { EXIT, formatBytes, LineOutput, orFail, printJson } from "../output.js";
import { exportDir, importDir } from "../transfer.js";

export function addFileCommands(program: Command): void {
  program
    .command("import")
    .description("copy a local directory into the workspace (skips .git and node_modules, honours .gitignore)")
    .argument("<dir>", "local directory")
    .option("--prefix <path>", "where in the workspace to put it", "/")
    .option("--all", "include .git, node_modules and ignored files")
    .action(
      action(async (ctx, dir: string, opts: { prefix: string; all?: boolean }) => {
        const files = await ctx.files();
        const report = await importDir(files, dir, {
          prefix: opts.prefix,
          includeAll: opts.all,
          quiet: ctx.options.json,
        });
        if (ctx.options.json) printJson(report);
        else {
          const notImported = report.failed.length ? `; ${report.failed.length} not imported` : "";
          console.log(
            `imported ${report.files} files (${formatBytes(report.bytes)}) into workspace ${files.workspace} in ${report.seconds.toFixed(1)} s${notImported}`,
          );
          for (const f of report.failed) console.error(`failed: ${f.path}: ${f.error}`);
        }
        if (report.failed.length) process.exitCode = EXIT.failure;
      }),
    );

  program
    .command("export")
    .description("copy the workspace (or a subtree) into a local directory, byte for byte")
    .argument("<dir>", "local directory (created if missing)")
    .option("--path <path>", "subtree to export", "/")
    .action(
      action(async (ctx, dir: string, opts: { path: string }) => {
        const files = await ctx.files();
        const report = await exportDir(files, dir, { path: opts.path, quiet: ctx.options.json });
        if (ctx.options.json) printJson(report);
        else {
          const notExported = report.failed.length ? `; ${report.failed.length} not exported` : "";
          console.log(
            `exported ${report.files} files (${formatBytes(report.bytes)}) to ${dir} in ${report.seconds.toFixed(1)} s${notExported}`,
          );
          for (const f of report.failed) console.error(`failed: ${f.path}: ${f.error}`);
        }
        if (report.failed.length) process.exitCode = EXIT.failure;
      }),
    );

  program
    .command("ls")
    .description("list a directory")
    .argument("[path]", "directory", "/")
    .action(
      action(async (ctx, path: string) => {
        const result = orFail(await (await ctx.files()).ls(path));
        if (ctx.options.json) return printJson(result.files);
        for (const f of result.files ?? [])
          console.log(
            f.is_dir ? `${"".padStart(10)}  ${f.path}` : `${formatBytes(f.size ?? 0).padStart(10)}  ${f.path}`,
          );
      }),
    );

  program
    .command("read")
    .description("print a file (a window of lines with --offset/--limit)")
    .argument("<path>", "file")
    .option("--offset <n>", "first line (0-based)", int("--offset"), 0)
    .option("--limit <n>", "number of lines", int("--limit"), DEFAULTS.readLimit)
    .action(
      action(async (ctx, path: string, opts: { offset: number; limit: number }) => {
        const result = orFail(await (await ctx.files()).read(path, opts.offset, opts.limit));
        if (ctx.options.json) return printJson(result);
        if (result.content instanceof Uint8Array) process.stdout.write(result.content);
        else
          process.stdout.write(
            String(result.content ?? "") + (String(result.content ?? "").endsWith("\n") ? "" : "\n"),
          );
      }),
    );

  program
    .command("write")
    .description("create or overwrite a file with the given content (or standard input)")
    .argument("<path>", "file")
    .argument("[content]", "text; read from standard input when omitted")
    .action(
      action(async (ctx, path: string, content: string | undefined) => {
        const text = content ?? stdinText();
        const result = orFail(await (await ctx.files()).write(path, text));
        if (ctx.options.json) printJson(result);
        else console.log(`wrote ${path}`);
      }),
    );

  program
    .command("edit")
    .description("replace a string in a file (it must occur once, or use --all)")
    .argument("<path>", "file")
    .argument("<old>", "text to replace")
    .argument("<new>", "replacement")
    .option("--all", "replace every occurrence")
    .action(
      action(async (ctx, path: string, oldString: string, newString: string, opts: { all?: boolean }) => {
        const result = orFail(await (await ctx.files()).edit(path, oldString, newString, !!opts.all));
        if (ctx.options.json) printJson(result);
        else console.log(`replaced ${result.occurrences} occurrence(s) in ${path}`);
      }),
    );

  program
    .command("rm")
    .description("delete a file or a directory (recursively)")
    .argument("<path>", "file or directory")
    .action(
      action(async (ctx, path: string) => {
        const result = orFail(await (await ctx.files()).delete(path));
        if (ctx.options.json) printJson(result);
        else console.log(`deleted ${path}`);
      }),
    );

  program
    .command("mkdir")
    .description("make a directory that exists while empty (files make their parents without it)")
    .argument("<path>", "directory")
    .option("-p, --parents", "make missing parents too; an existing directory is fine")
    .action(
      action(async (ctx, path: string, opts: { parents?: boolean }) => {
        const result = orFail(await (await ctx.files()).mkdir(path, { parents: !!opts.parents }));
        if (ctx.options.json) printJson(result);
        else console.log(result.created ? `made ${path}` : `${path} exists`);
      }),
    );

  for (const [name, operation, verb] of [
    ["mv", "move", "moved"],
    ["cp", "copy", "copied"],
  ] as const) {
    program
      .command(name)
      .description(
        `${operation} a file or a directory (recursively) to a new path${operation === "move" ? " (one transaction on PostgreSQL)" : ""}`,
      )
      .argument("<from>", "file or directory")
      .argument("<to>", "its new path (not an existing directory to put it in)")
      .option("--overwrite", "replace files at the paths written (a target directory's other files stay)")
      .action(
        action(async (ctx, from: string, to: string, opts: { overwrite?: boolean }) => {
          const result = orFail(await (await ctx.files())[operation](from, to, { overwrite: !!opts.overwrite }));
          if (ctx.options.json) printJson(result);
          else console.log(`${verb} ${from} to ${to} (${result.files} file${result.files === 1 ? "" : "s"})`);
        }),
      );
  }

  program
    .command("grep")
    .description("search file contents, server-side on PostgreSQL (exit 1 when nothing matches)")
    .argument("<pattern>", "literal text (a regular expression with --regex)")
    .option("--regex", "treat the pattern as a regular expression")
    .option("-i, --ignore-case", "case-insensitive")
    .option("--glob <glob>", "only files matching this glob (basename unless it contains '/')")
    .option("--max-count <n>", "stop after n matching lines", int("--max-count"))
    .option("--path <path>", "directory or file to search", "/")
    .action(
      action(
        async (
          ctx,
          pattern: string,
          opts: { regex?: boolean; ignoreCase?: boolean; glob?: string; maxCount?: number; path: string },
        ) => {
          const files = await ctx.files();
          if (!ctx.options.json) return streamGrep(files, pattern, opts);
          let result: SearchResult;
          if (opts.regex || opts.ignoreCase) {
            result = await files.search({
              pattern,
              regex: opts.regex,
              ignoreCase: opts.ignoreCase,
              path: opts.path,
              glob: opts.glob ?? null,
              maxCount: opts.maxCount ?? null,
            });
          } else {
            result = await files.grep(pattern, opts.path, opts.glob ?? null, opts.maxCount ?? null);
          }
          printJson(orFail(result));
          if (!result.matches?.length) process.exitCode = EXIT.failure;
        },
      ),
    );

  program
    .command("glob")
    .description("list files matching a glob, newest first (exit 1 when none)")
    .argument("<pattern>", "e.g. '**/*.md'")
    .option("--path <path>", "directory to match under", "/")
    .action(
      action(async (ctx, pattern: string, opts: { path: string }) => {
        const result = orFail(await (await ctx.files()).glob(pattern, opts.path));
        if (ctx.options.json) printJson(result.files);
        else for (const f of result.files ?? []) console.log(f.path);
        if (!result.files?.length) process.exitCode = EXIT.failure;
      }),
    );

  program
    .command("stat")
    .description("a file's metadata: type, size, lines, version, timestamps")
    .argument("<path>", "file")
    .action(
      action(async (ctx, path: string) => {
        const { data } = orFail(await (await ctx.files()).stat(path));
        if (ctx.options.json) return printJson(data);
        for (const [k, v] of Object.entries(data!)) console.log(`${k.padEnd(12)} ${v}`);
      }),
    );
}

/**
 * grep's text output: each match printed as the store finds it (like ripgrep), from a stream in
 * bounded memory; the stream (and the query behind it) stops when the reader goes away.
 */
async function streamGrep(
  files: DeepAgentsBackend,
  pattern: string,
  opts: { regex?: boolean; ignoreCase?: boolean; glob?: string; maxCount?: number; path: string },
): Promise<void> {
  const cap = opts.maxCount ?? null;
  const more = cap === null ? null : cap + 1; // one more than printed: says whether it stopped early
  const matches =
    opts.regex || opts.ignoreCase
      ? files.searchStream({
          pattern,
          regex: opts.regex,
          ignoreCase: opts.ignoreCase,
          path: opts.path,
          glob: opts.glob ?? null,
          maxCount: more,
        })
      : files.grepStream(pattern, opts.path, opts.glob ?? null, more);
  const out = new LineOutput();
  let printed = 0;
  let stopped = false;
  for await (const m of matches) {
    if (printed === cap) {
      stopped = true;
      break;
    }
    if (!(await out.line(`${m.path}:${m.line}:${m.text}`))) break;
    printed++;
  }
  await out.end();
  if (stopped) console.error(`(stopped after ${cap} matches)`);
  if (printed === 0) process.exitCode = EXIT.failure;
}
