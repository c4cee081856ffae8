#!/usr/bin/env node
/**
 * deepagents-backends: the operator's CLI. Exit codes: 0 ok, 1 not found / no match / failed,
 * 2 usage, 3 connection. Every error is one line on stderr; --json prints results for scripts.
 */
import { readFileSync, realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Command, CommanderError, Option } from "commander";
import { migrate } from "../postgres/migrate.js";
import { listWorkspaces, migrationStatus, refreshStatistics, storageStats } from "../postgres/admin.js";
import { PostgresBackend } from "../postgres/backend.js";
import type { SearchResult } from "../protocol.js";
import { DEFAULTS } from "../core/defaults.js";
import { CliError, EXIT, formatBytes, orFail, printJson, table } from "./output.js";
import { Context, DEFAULT_DATA_DIR, connectionFailure, type GlobalOptions } from "./context.js";
import { exportDir, importDir } from "./transfer.js";

const version = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")).version;

/** Runs a command with a Context, closing it (and the embedded server) however it ends. */
function action<A extends unknown[]>(fn: (ctx: Context, ...args: A) => Promise<void>) {
  return async (...args: unknown[]) => {
    const command = args[args.length - 1] as Command;
    const ctx = new Context(command.optsWithGlobals() as GlobalOptions);
    const interrupt = () => {
      process.exitCode = 130; // also what main() returns if the command ends first
      void ctx.close().finally(() => process.exit(130));
    };
    process.once("SIGINT", interrupt);
    process.once("SIGTERM", interrupt);
    try {
      await fn(ctx, ...(args.slice(0, -1) as A));
    } finally {
      process.off("SIGINT", interrupt);
      process.off("SIGTERM", interrupt);
      await ctx.close();
    }
  };
}

/**
 * Standard input as text, refusing bytes that are not UTF-8: readFileSync(0, "utf8") would turn
 * them into U+FFFD and store a file that differs from what was piped (README: "an error, never
 * silent replacement"). A BOM is kept: the bytes are the file.
 */
function stdinText(): string {
  const bytes = readFileSync(0);
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new CliError(
      `standard input is not valid UTF-8 (first invalid byte at offset ${firstInvalidUtf8(bytes)}); nothing was written ` +
        `(use import for files that are not UTF-8 text)`,
      EXIT.failure,
    );
  }
}

/** Byte offset of the first invalid UTF-8 sequence: where the lossy decoding first differs. */
function firstInvalidUtf8(bytes: Buffer): number {
  let offset = 0;
  for (const c of new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes)) {
    if (c === "\ufffd" && !(bytes[offset] === 0xef && bytes[offset + 1] === 0xbf && bytes[offset + 2] === 0xbd))
      return offset;
    offset += Buffer.byteLength(c, "utf8");
  }
  return offset;
}

const int = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new CliError(`${name} must be a non-negative integer (got ${value})`, EXIT.usage);
  return n;
};

export function buildProgram(): Command {
  const program = new Command("deepagents-backends")
    .description(
      "File storage for LangChain Deep Agents on PostgreSQL (or S3): migrate, import/export, inspect, search, watch.",
    )
    .version(version)
    .addOption(
      new Option(
        "--database-url <url>",
        "PostgreSQL connection string (else DATABASE_URL, else PG* variables, else embedded)",
      ),
    )
    .addOption(new Option("--data-dir <dir>", "data directory of the embedded PostgreSQL").default(DEFAULT_DATA_DIR))
    .addOption(new Option("--schema <name>", "schema holding the tables and functions").default(DEFAULTS.schema))
    .addOption(new Option("-w, --workspace <name>", "workspace to work in").default(DEFAULTS.workspace))
    .addOption(new Option("--json", "print results as JSON"))
    .addOption(new Option("--s3-bucket <bucket>", "use S3 instead of PostgreSQL (keys from AWS_* variables)"))
    .addOption(new Option("--s3-endpoint <url>", "S3-compatible endpoint (MinIO, R2, Ceph); else S3_ENDPOINT or AWS"))
    .addOption(new Option("--s3-prefix <prefix>", "key prefix inside the bucket"))
    .addOption(new Option("--s3-region <region>", "S3 region"))
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();

  program
    .command("migrate")
    .description("apply (up), revert (down) or show (status) the schema migrations")
    .argument("[direction]", "up | down | status", "up")
    .option("--dry-run", "show what would run without changing anything")
    .action(
      action(async (ctx, direction: string, opts: { dryRun?: boolean }) => {
        if (!["up", "down", "status"].includes(direction))
          throw new CliError(`unknown direction '${direction}' (use up, down or status)`, EXIT.usage);
        const connectionString = await ctx.connectionString();
        const { schema, json } = ctx.options;
        if (direction === "status") {
          const { pool } = await ctx.postgres(undefined, { initialize: false });
          const status = await migrationStatus(pool, schema).catch((e) => {
            throw connectionFailure(e, ctx.source);
          });
          if (json) return printJson({ schema, ...status });
          console.log(`schema ${schema} (${ctx.source})`);
          for (const name of status.applied) console.log(`  applied  ${name}`);
          for (const name of status.pending) console.log(`  pending  ${name}`);
          return;
        }
        const applied = await migrate({
          connectionString,
          schema,
          direction: direction as "up" | "down",
          dryRun: opts.dryRun,
        }).catch((e) => {
          throw connectionFailure(e, ctx.source);
        });
        if (json)
          return printJson({ schema, direction, dryRun: !!opts.dryRun, migrations: applied.map((m) => m.name) });
        const verb = opts.dryRun
          ? "would " + (direction === "up" ? "apply" : "revert")
          : direction === "up"
            ? "applied"
            : "reverted";
        console.log(
          applied.length ? applied.map((m) => `${verb} ${m.name}`).join("\n") : `schema ${schema} is up to date`,
        );
      }),
    );

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
        if (files instanceof PostgresBackend && report.files > 0)
          await refreshStatistics(files.pool, ctx.options.schema);
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
    .option("--limit <n>", "number of lines", int("--limit"), 500)
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
          orFail(result);
          if (ctx.options.json) printJson(result);
          else {
            for (const m of result.matches ?? []) console.log(`${m.path}:${m.line}:${m.text}`);
            if (result.truncated) console.error(`(stopped after ${opts.maxCount} matches)`);
          }
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

  program
    .command("watch")
    .description("print changes as they are committed (Ctrl-C to stop)")
    .option("--since <id>", "start after this change id (default: from now on)", int("--since"))
    .option("--paths <glob>", "only paths matching this glob")
    .action(
      action(async (ctx, opts: { since?: number; paths?: string }) => {
        const backend = await ctx.postgres();
        const sub = await backend.watch({ since: opts.since, paths: opts.paths });
        ctx.onClose(() => sub.close());
        if (!ctx.options.json)
          console.error(
            `watching workspace ${backend.workspace} from change ${sub.cursor} (${ctx.source}); Ctrl-C to stop`,
          );
        for await (const c of sub) {
          if (ctx.options.json) process.stdout.write(JSON.stringify(c) + "\n");
          else console.log(`${c.id}\t${c.at}\t${c.op.padEnd(6)}\t${c.path}\t(v${c.version}, ${formatBytes(c.size)})`);
        }
      }),
    );

  program
    .command("workspaces")
    .description("list workspaces with their file counts and sizes")
    .action(
      action(async (ctx) => {
        const backend = await ctx.postgres();
        const rows = await listWorkspaces(backend.pool, ctx.options.schema);
        if (ctx.options.json) return printJson(rows);
        console.log(
          table(
            ["workspace", "files", "size", "modified"],
            rows.map((r) => [r.workspace, r.files, formatBytes(r.bytes), r.modified_at ?? ""]),
          ),
        );
      }),
    );

  program
    .command("stats")
    .description("table and index sizes of the schema")
    .action(
      action(async (ctx) => {
        const backend = await ctx.postgres();
        const rows = await storageStats(backend.pool, ctx.options.schema);
        if (ctx.options.json) return printJson(rows);
        console.log(
          table(
            ["relation", "kind", "size", "rows (est.)"],
            rows.map((r) => [r.name, r.kind, formatBytes(r.bytes), r.estimated_rows ?? ""]),
          ),
        );
      }),
    );

  program
    .command("demo")
    .description("the guided tour behind `npm start`: import, run a deep agent, watch, grep")
    .option("--dir <dir>", "directory to import", ".")
    .action(
      action(async (ctx, opts: { dir: string }) => {
        const { runDemo } = await import("./demo.js");
        await runDemo(ctx, opts.dir);
      }),
    );

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return Number(process.exitCode ?? EXIT.ok);
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version "fail" with exit code 0; usage errors were already printed.
      return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const error = e instanceof CliError ? e : new CliError((e as Error)?.message ?? String(e));
    console.error(`error: ${error.message.split("\n")[0]}`);
    return error.exitCode;
  }
}

// Run when executed (node dist/cli/main.js, or tsx), not when imported by tests or by bin.ts (the
// bin link's target, which checks the CLI's packages first and calls main itself).
function executed(): boolean {
  try {
    return realpathSync(process.argv[1] ?? "") === fileURLToPath(import.meta.url);
  } catch {
    return false; // no script path (node -e, a REPL)
  }
}
if (executed()) {
  main(process.argv).then((code) => process.exit(code));
}
