/**
 * withShell(): a backend of this package as a deepagents sandbox (SandboxBackendProtocolV2), so
 * `createDeepAgent({ backend: withShell(backend) })` gives the agent an `execute` tool whose
 * commands run in just-bash, a bash interpreter in this process, over the files in the store.
 * Every other method is the backend's own: deepagents' file tools and the shell see the same files.
 *
 * Each command runs in a fresh interpreter: variables, functions and the working directory last
 * for that one command (as a new `bash -c` each time), files persist. Nothing reaches the host:
 * no host filesystem, no network (just-bash has none unless configured), no processes.
 */
import type { ExecuteResponse, SandboxBackendProtocolV2 } from "deepagents";
import { Bash, type BashOptions, getCommandNames } from "just-bash";
import type { DeepAgentsBackend } from "../core/interface.js";
import { findCommand } from "./find-command.js";
import { grepCommand } from "./grep-command.js";
import { formatResponse } from "./output.js";
import { normalizeShellPath } from "./shell-paths.js";
import { SystemPaths } from "./system-paths.js";
import { WorkspaceFs } from "./workspace-fs.js";

/** just-bash's bounds on one command (not exported by name from just-bash's entry). */
export type ExecutionLimits = NonNullable<BashOptions["executionLimits"]>;

export interface ShellOptions {
  /** Wall-clock limit of one command in ms; then it is stopped (exit code 124). Default 120 000. */
  timeoutMs?: number;
  /** Output returned to the agent, in UTF-8 bytes; beyond it is cut (`truncated: true`). Default 100 000. */
  maxOutputBytes?: number;
  /** Working directory each command starts in. Default "/" (the workspace root). */
  cwd?: string;
  /** Environment variables each command starts with. */
  env?: Record<string, string>;
  /**
   * just-bash's bounds on one command (loop iterations, recursion depth, commands run, output
   * size, ...), over its "hardened" profile; `maxExecutionTimeMs` follows `timeoutMs`.
   */
  executionLimits?: ExecutionLimits;
  /** Stops every command running when aborted (e.g. at shutdown). */
  signal?: AbortSignal;
}

export interface ExecuteOptions {
  /** Stops this command when aborted (it ends with a non-zero exit code). */
  signal?: AbortSignal;
}

/** The backend with an `execute` method and a sandbox `id`: what deepagents detects as a sandbox. */
export type ShellBackend<B extends DeepAgentsBackend> = B &
  SandboxBackendProtocolV2 & {
    execute(command: string, options?: ExecuteOptions): Promise<ExecuteResponse>;
    readonly id: string;
    /** The backend the shell runs over. */
    readonly backend: B;
  };

export const SHELL_DEFAULTS = { timeoutMs: 120_000, maxOutputBytes: 100_000 } as const;

/**
 * `backend` with a shell. The result is the backend itself for every method it has (a view, not
 * a copy: closing one closes the other); withWorkspace() answers a shell over the other workspace.
 */
export function withShell<B extends DeepAgentsBackend>(backend: B, options: ShellOptions = {}): ShellBackend<B> {
  const run = shellRunner(backend, options);
  const id = `shell-${crypto.randomUUID().slice(0, 8)}`;
  const own: Record<PropertyKey, unknown> = {
    execute: run,
    id,
    backend,
    withWorkspace: (name: string) => withShell(backend.withWorkspace(name), options),
  };
  return new Proxy(backend, {
    get(target, property) {
      if (Object.hasOwn(own, property)) return own[property];
      const value = Reflect.get(target, property, target);
      // Bound to the backend: its methods use private fields, which a proxy does not carry.
      return typeof value === "function" ? value.bind(target) : value;
    },
    has: (target, property) => Object.hasOwn(own, property) || Reflect.has(target, property),
  }) as ShellBackend<B>;
}

function shellRunner(backend: DeepAgentsBackend, options: ShellOptions) {
  const timeoutMs = positive(options.timeoutMs, SHELL_DEFAULTS.timeoutMs, "timeoutMs");
  const maxOutputBytes = positive(options.maxOutputBytes, SHELL_DEFAULTS.maxOutputBytes, "maxOutputBytes");
  const cwd = normalizeShellPath(options.cwd ?? "/");
  // grep, egrep, fgrep and find are just-bash's own names: they replace the bundled commands.
  const system = new SystemPaths(getCommandNames());
  const fs = new WorkspaceFs(backend, system);
  const customCommands = [
    grepCommand(backend, system),
    grepCommand(backend, system, "egrep", "-E"),
    grepCommand(backend, system, "fgrep", "-F"),
    findCommand(backend, system),
  ];

  return async (command: string, call: ExecuteOptions = {}): Promise<ExecuteResponse> => {
    if (!command || typeof command !== "string") {
      return { output: "Error: Command must be a non-empty string.", exitCode: 1, truncated: false };
    }
    const timeout = AbortSignal.timeout(timeoutMs);
    const signals = [timeout, options.signal, call.signal].filter((s): s is AbortSignal => s !== undefined);
    const bash = new Bash({
      fs,
      cwd,
      env: { HOME: "/", ...options.env },
      customCommands,
      executionLimitProfile: "hardened",
      // just-bash checks its deadline as the script runs (exit 124); the signal also stops work
      // waiting on the store. A loop that never waits runs in microtasks, where no timer fires.
      executionLimits: { ...options.executionLimits, maxExecutionTimeMs: timeoutMs },
    });
    const started = Date.now();
    try {
      const result = await bash.exec(command, { cwd, signal: AbortSignal.any(signals) });
      if (timeout.aborted || (result.exitCode === 124 && Date.now() - started >= timeoutMs)) {
        return timedOut(timeoutMs);
      }
      return formatResponse(result.stdout, result.stderr, result.exitCode, maxOutputBytes);
    } catch (e) {
      if (timeout.aborted) return timedOut(timeoutMs);
      const message = e instanceof Error ? e.message : String(e);
      return formatResponse("", `Error executing command: ${message}`, 1, maxOutputBytes);
    }
  };
}

/** LocalShellBackend's words and exit code for a command that ran out of time. */
function timedOut(timeoutMs: number): ExecuteResponse {
  return {
    output: `Error: Command timed out after ${(timeoutMs / 1000).toFixed(1)} seconds.`,
    exitCode: 124,
    truncated: false,
  };
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`withShell: ${name} must be a positive integer`);
  return value;
}
