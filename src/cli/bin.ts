#!/usr/bin/env node
/**
 * The `deepagents-backends` command (this package's bin and deepagents-backends-cli's). Checks that
 * the CLI's packages are installed before loading any of them, so a library install that runs the
 * bin gets one line naming the command to use instead of a module-resolution stack trace.
 */
import { CLI_PACKAGE_HINT, missingCliPackages } from "./requirements.js";

const missing = missingCliPackages();
if (missing.length > 0) {
  console.error(
    `error: the deepagents-backends CLI needs ${missing.join(", ")}, not installed here: ${CLI_PACKAGE_HINT}`,
  );
  process.exit(1);
}
const { main } = await import("./main.js");
const { flushStdout } = await import("./output.js");
const code = await main(process.argv);
await flushStdout();
// A write error reported while flushing (quietStdoutErrors) sets the exit code.
process.exit(code || Number(process.exitCode ?? 0));
