/**
 * PostgresBackend configuration: how to reach the server and how to behave once there.
 * Connection settings become one pg.PoolConfig / pg.ClientConfig, shared by the backend's pool
 * and by migrate()'s dedicated client.
 */
import type pg from "pg";
import { DEFAULTS } from "../core/defaults.js";
import { setupErrors } from "../protocol.js";

export type SslMode = "disable" | "prefer" | "require" | "verify-ca" | "verify-full";

export interface ConnectionOptions {
  /** postgres://user:pass@host:port/db?sslmode=... */
  connectionString?: string;
  host?: string;
  port?: number;
  database?: string;
  user?: string;
  password?: string;
  ssl?: pg.ClientConfig["ssl"];
  /** libpq-style shorthand for `ssl` when connectionString is not used. */
  sslmode?: SslMode;
}

export interface PostgresBackendConfig extends ConnectionOptions {
  /** An existing pool to use instead of opening one; close() then leaves it open. */
  pool?: pg.Pool;
  /** Schema holding our tables, functions and migrations table. Default "deepagents". */
  schema?: string;
  /** Workspace (namespace of files) this instance reads and writes. Default "default". */
  workspace?: string;
  /**
   * Who or what writes through this instance (e.g. "agent:researcher"), kept with every version
   * in file history (`history()`'s `tag`). Up to 200 characters. Each tagged write costs three more
   * round trips (its own transaction). `withTag()` gives a view with another tag.
   */
  tag?: string;
  /** Idle connections the pool keeps open. Default 2. */
  minPoolSize?: number;
  /** Most connections the pool opens. Default 10. */
  maxPoolSize?: number;
  /** Server-side statement_timeout for every query, in ms. Default 30000. */
  statementTimeoutMs?: number;
  /**
   * How long a call waits for a free pooled connection (or a new one to connect) before it fails
   * with an error instead of hanging. Default 10000 ms.
   */
  connectionTimeoutMs?: number;
  /**
   * A streamed search (grepStream/searchStream) of a scope holding `minBytes` of text or more
   * reads its second half at once on a second pooled connection, in the same snapshot, when one
   * is free (it never waits for one), holding at most `aheadBytes` of its matches ahead of the
   * consumer: both cores of the server for a scan the trigram index cannot narrow. Same rows,
   * same order. Defaults: 16 MiB and 32 MiB; false reads every stream on one connection.
   */
  streamSplit?: { minBytes?: number; aheadBytes?: number } | false;
  /** Largest file accepted by write/edit/upload, in bytes. Default 64 MiB. */
  maxFileBytes?: number;
  /**
   * Connect as a database role restricted to some workspaces by row-level security (see
   * grantWorkspace()). initialize() then never migrates (that role cannot); it checks that the
   * schema is current, that row-level security applies to the role, and that the workspace is
   * granted to it. Default false.
   */
  rowLevelSecurity?: boolean;
}

/** The schema when none is given (core/defaults.ts). */
export const DEFAULT_SCHEMA = DEFAULTS.schema;
const APPLICATION_NAME = "deepagents-backends";

// Plain lower-case identifiers only: the name goes into SQL as an identifier and into
// node-pg-migrate's own catalog queries, and users never need to quote it.
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function validateSchema(schema: string | undefined): string {
  const name = schema ?? DEFAULT_SCHEMA;
  if (!SCHEMA_NAME.test(name)) {
    throw new Error(setupErrors.invalidSchema(name));
  }
  return name;
}

export function sslFromMode(mode: SslMode | undefined): pg.ClientConfig["ssl"] {
  switch (mode) {
    case undefined:
    case "disable":
      return undefined;
    case "prefer":
    case "require":
      return { rejectUnauthorized: false };
    case "verify-ca":
    case "verify-full":
      return { rejectUnauthorized: true };
    default:
      throw new Error(setupErrors.invalidSslMode(mode));
  }
}

/** Client settings for one connection (without pool sizing). */
export function clientConfig(options: ConnectionOptions & { statementTimeoutMs?: number }): pg.ClientConfig {
  const config: pg.ClientConfig = {
    application_name: APPLICATION_NAME,
    statement_timeout: options.statementTimeoutMs ?? DEFAULTS.timeoutMs,
  };
  if (options.connectionString) config.connectionString = options.connectionString;
  if (options.host !== undefined) config.host = options.host;
  if (options.port !== undefined) config.port = options.port;
  if (options.database !== undefined) config.database = options.database;
  if (options.user !== undefined) config.user = options.user;
  if (options.password !== undefined) config.password = options.password;
  const ssl = options.ssl ?? sslFromMode(options.sslmode);
  if (ssl !== undefined) config.ssl = ssl;
  return config;
}

/**
 * Refuses a streamSplit that is not false or { minBytes?, aheadBytes? } of whole byte counts
 * (minBytes goes to SQL as a bigint: 1.5 or Infinity there would fail every split, silently).
 */
export function validateStreamSplit(split: PostgresBackendConfig["streamSplit"]): void {
  if (split === undefined || split === false) return;
  for (const field of ["minBytes", "aheadBytes"] as const) {
    const value = (split as Record<string, unknown>)?.[field];
    if (value !== undefined && !(Number.isSafeInteger(value) && (value as number) >= 0)) {
      throw new Error(setupErrors.invalidStreamSplit(field, value));
    }
  }
}

export function poolConfig(options: PostgresBackendConfig): pg.PoolConfig {
  const max = options.maxPoolSize ?? DEFAULTS.postgres.maxPoolSize;
  const min = Math.min(options.minPoolSize ?? DEFAULTS.postgres.minPoolSize, max);
  if (!(max >= 1)) throw new Error(setupErrors.invalidPoolSize(options.maxPoolSize));
  return {
    ...clientConfig(options),
    max,
    min,
    idleTimeoutMillis: DEFAULTS.postgres.idleTimeoutMs,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? DEFAULTS.postgres.connectionTimeoutMs,
  };
}
