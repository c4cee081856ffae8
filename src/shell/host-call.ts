/**
 * Storage calls made while a script runs. just-bash's defense in depth blocks globals the storage
 * drivers need (process.env, timers, ...) for the script's async context; a call of the backend is
 * host infrastructure, so it runs as trusted code (only that call: the script stays blocked).
 */
import { DefenseInDepthBox } from "just-bash";
import { MatchTimeoutError, runBounded } from "../bounded.js";

/** The command time limit when just-bash's context does not say (withShell always sets it). */
const SHELL_TIMEOUT_MS = 120_000;

export function hostCall<T>(run: () => T | Promise<T>): Promise<T> {
  return DefenseInDepthBox.runTrustedAsync(async () => run());
}

/**
 * Runs `tests` (the caller's patterns as JavaScript regexes, which backtrack: `(a+)+b` or
 * `*a*a*a*a*a*b` can keep one test busy for minutes, and the event loop with it) under the
 * command's time limit; null when it ran out (bounded.ts interrupts it).
 */
export function hostRegexTests<T>(ctx: { limits: { maxExecutionTimeMs?: number } }, tests: () => T): T | null {
  try {
    return runBounded(tests, ctx.limits.maxExecutionTimeMs ?? SHELL_TIMEOUT_MS);
  } catch (e) {
    if (e instanceof MatchTimeoutError) return null;
    throw e;
  }
}

/** What grep and find say when hostRegexTests ran out of time. */
export const HOST_MATCH_TIMEOUT = "matching the pattern took longer than the command's time limit";
