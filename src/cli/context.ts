/**
 * Which storage a CLI command talks to, and its lifecycle: --database-url, then DATABASE_URL,
 * then libpq's PG* variables; with none of them an embedded PostgreSQL persisted under
 * --data-dir, started on demand, shared by every command running on it, and stopped when the last
 * of them ends (or is Ctrl-C'd). --s3-bucket selects S3 instead.
 */
import path from "node:path";
import { PostgresBackend } from "../postgres/backend.js";
import type { S3Backend } from "../s3/backend.js";
import type { DeepAgentsBackend } from "../core/interface.js";
import { attachEmbeddedPostgres, type SharedServer } from "../postgres/embedded/index.js";
import { isConnectRefusal } from "../postgres/sqlstate.js";
import { CliError, EXIT } from "./output.js";

export interface GlobalOptions {
  databaseUrl?: string;
  dataDir: string;
  schema: string;
  workspace: string;
  json?: boolean;
  s3Bucket?: string;
  s3Endpoint?: string;
  s3Prefix?: string;
  s3Region?: string;
}

export const DEFAULT_DATA_DIR = path.join(".deepagents", "pg");

const PG_ENV = ["PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGSERVICE"];

export class Context {
  #server: SharedServer | undefined;
  #attaching: Promise<SharedServer> | undefined;
  #backends: Array<{ close(): Promise<void> }> = [];
  #cleanups: Array<() => Promise<void>> = [];

  constructor(readonly options: GlobalOptions) {}

  /** Where the connection comes from, for messages. */
  get source(): string {
    if (this.options.databaseUrl) return "--database-url";
    if (process.env.DATABASE_URL) return "DATABASE_URL";
    if (PG_ENV.some((v) => process.env[v])) return "PG* environment variables";
    return `embedded PostgreSQL in ${this.options.dataDir}`;
  }

  /** A connection string, starting the embedded server when nothing else is configured. */
  async connectionString(): Promise<string | undefined> {
    if (this.options.databaseUrl) return this.options.databaseUrl;
    if (process.env.DATABASE_URL) return process.env.DATABASE_URL;
    if (PG_ENV.some((v) => process.env[v])) return undefined; // pg reads PG* itself
    if (this.#server) return this.#server.connectionString;
    try {
      // Shared with every other command on this data directory: started by the first, stopped by the
      // last. One attach per command, however many backends ask at once.
      this.#attaching ??= attachEmbeddedPostgres({ dataDir: this.options.dataDir });
      this.#server = await this.#attaching;
    } catch (e) {
      throw new CliError(
        `could not start the embedded PostgreSQL in ${this.options.dataDir}: ${(e as Error | undefined)?.message ?? String(e)}`,
        EXIT.connection,
      );
    }
    return this.#server.connectionString;
  }

  /**
   * PostgresBackend for the workspace, migrated and connected (exit 3 when unreachable); with
   * `initialize: false` not even connected yet (for `migrate status` on an empty database).
   */
  async postgres(workspace = this.options.workspace, { initialize = true } = {}): Promise<PostgresBackend> {
    const backend = new PostgresBackend({
      connectionString: await this.connectionString(),
      schema: this.options.schema,
      workspace,
      minPoolSize: 0,
      maxPoolSize: 4,
    });
    this.#backends.push(backend);
    if (initialize) {
      await backend.initialize().catch((e) => {
        throw connectionFailure(e, this.source);
      });
    }
    return backend;
  }

  /** S3Backend when --s3-bucket is given (keys from the AWS environment / default chain). */
  async s3(workspace = this.options.workspace): Promise<S3Backend> {
    // Loaded on use: the AWS SDK is a fifth of a second of every command's start-up.
    const { S3Backend } = await import("../s3/backend.js");
    const backend = new S3Backend({
      bucket: this.options.s3Bucket!,
      endpoint: this.options.s3Endpoint ?? process.env.S3_ENDPOINT,
      prefix: this.options.s3Prefix,
      region: this.options.s3Region,
      workspace,
      accessKeyId: process.env.AWS_ACCESS_KEY_ID,
      secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
      maxRetries: 1,
    });
    this.#backends.push(backend);
    await backend.initialize().catch((e) => {
      throw new CliError((e as Error).message, EXIT.connection);
    });
    return backend;
  }

  /** The file backend a protocol command works on: S3 with --s3-bucket, else PostgreSQL. */
  async files(): Promise<DeepAgentsBackend> {
    return this.options.s3Bucket ? this.s3() : this.postgres();
  }

  onClose(fn: () => Promise<void>): void {
    this.#cleanups.push(fn);
  }

  #closing: Promise<void> | undefined;

  /**
   * Closes everything opened and stops the embedded server cleanly. Idempotent, and every caller
   * (Ctrl-C and the command's own end) waits for the same shutdown to finish.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    for (const fn of this.#cleanups.splice(0)) await fn().catch(() => {});
    for (const b of this.#backends.splice(0)) await b.close().catch(() => {});
    const server = this.#server;
    this.#server = undefined;
    await server?.release().catch(() => {});
  }
}

/** Connection-class failures become exit code 3 with one line saying where we tried. */
export function connectionFailure(e: unknown, source: string): CliError {
  const err = e as { code?: string; message?: string };
  const socketCodes = ["ECONNREFUSED", "ENOTFOUND", "EHOSTUNREACH", "ETIMEDOUT", "ECONNRESET"];
  if (
    (err.code && (socketCodes.includes(err.code) || isConnectRefusal(err.code))) ||
    /connect|timeout|terminated/i.test(err.message ?? "")
  ) {
    return new CliError(`cannot connect to PostgreSQL (${source}): ${err.message || err.code}`, EXIT.connection);
  }
  return new CliError(err.message ?? String(e), EXIT.failure);
}
