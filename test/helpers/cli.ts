/** The built CLI (dist/cli/main.js, built by `npm test`'s pretest) as a subprocess. */
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const root = fileURLToPath(new URL("../..", import.meta.url));
export const bin = path.join(root, "dist/cli/main.js");

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Prepend the runner's --database-url, --schema and -w (default true). */
  base?: boolean;
}

/** A function running the CLI on one database, schema and workspace. */
export function cliRunner(url: string, schema: string, workspace: string) {
  return (args: string[], { env = {}, cwd = root, base = true }: RunOptions = {}): Promise<Run> => {
    const full = base ? ["--database-url", url, "--schema", schema, "-w", workspace, ...args] : args;
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [bin, ...full], {
        cwd,
        env: { ...process.env, ...env },
        stdio: ["pipe", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      child.stdin.end();
      child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  };
}

export const json = (r: Run) => JSON.parse(r.stdout);
