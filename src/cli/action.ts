/**
 * What every CLI command shares: running with a Context that is closed however the command ends
 * (Ctrl-C included), integer options, and standard input as strict UTF-8.
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { Context, type GlobalOptions } from "./context.js";
import { CliError, EXIT } from "./output.js";

/** Runs a command with a Context, closing it (and the embedded server) however it ends. */
export function action<A extends unknown[]>(fn: (ctx: Context, ...args: A) => Promise<void>) {
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
export function stdinText(): string {
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

export const int = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new CliError(`${name} must be a non-negative integer (got ${value})`, EXIT.usage);
  return n;
};

/** A positive safe integer (a version or a checkpoint id). */
export const positiveInt = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new CliError(`${name} must be a positive integer (got ${value})`, EXIT.usage);
  return n;
};
