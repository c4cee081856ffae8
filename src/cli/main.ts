#!/usr/bin/env node
/**
 * deepagents-backends: the operator's CLI. Exit codes: 0 ok, 1 not found / no match / failed,
 * 2 usage, 3 connection. Every error is one line on stderr; --json prints results for scripts.
 */
import { readFileSync, realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Command, CommanderError, Option } from "commander";
import { DEFAULTS } from "../core/defaults.js";
import { addAdminCommands } from "./commands/admin.js";
import { addFileCommands } from "./commands/files.js";
import { addHistoryCommands } from "./commands/history.js";
import { addMcpCommand } from "./commands/mcp.js";
import { DEFAULT_DATA_DIR } from "./context.js";
import { CliError, EXIT, flushStdout, quietStdoutErrors } from "./output.js";

const version = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")).version;

export function buildProgram(): Command {
  const program = new Command("deepagents-backends")
    .description(
      "File storage for LangChain Deep Agents on PostgreSQL (or S3): migrate, import/export, inspect, search, watch, history.",
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

  addAdminCommands(program);
  addFileCommands(program);
  addHistoryCommands(program);
  addMcpCommand(program);

  return program;
}

export async function main(argv: string[]): Promise<number> {
  quietStdoutErrors();
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
    // The backends' messages start with "Error: " (deepagents' convention for tool answers).
    console.error(`error: ${error.message.split("\n")[0].replace(/^Error: /, "")}`);
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
  main(process.argv).then(async (code) => {
    await flushStdout();
    // A write error reported while flushing (quietStdoutErrors) sets the exit code.
    process.exit(code || Number(process.exitCode ?? 0));
  });
}
