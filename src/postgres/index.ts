/**
 * deepagents-backends/postgres: PostgresBackend and its tools. Loads pg and pg-listen, and
 * node-pg-migrate when a schema is migrated (peer dependencies a PostgreSQL user installs), never
 * the AWS SDK.
 */
export { PostgresBackend } from "./backend.js";
export type { WriteOptions, InitializeOptions } from "./backend.js";
export { migrate } from "./migrate.js";
export type { MigrateOptions, MigrationRecord } from "./migrate.js";
export type { ClusterOptions } from "./cluster/options.js";
export { splitCluster, type SplitReport } from "./cluster/split.js";
export { grantWorkspace, revokeWorkspace } from "./rls.js";
export type { PostgresBackendConfig, ConnectionOptions, SslMode } from "./config.js";
export { ResyncRequiredError } from "./watch.js";
export type { Change, WatchOptions, Subscription } from "./watch.js";
export * from "../shared.js";
