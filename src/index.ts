export { PostgresBackend } from "./postgres/backend.js";
export type { FileStat, StatResult, WriteOptions, InitializeOptions } from "./postgres/backend.js";
export { migrate } from "./postgres/migrate.js";
export type { MigrateOptions, MigrationRecord } from "./postgres/migrate.js";
export type { PostgresBackendConfig, ConnectionOptions, SslMode } from "./postgres/config.js";
export { EMPTY_FILE_CONTENT, errors } from "./protocol.js";
export { normalizePath, normalizeFilePath, PathError, MAX_PATH_BYTES } from "./paths.js";
export { getMimeType, isTextMimeType } from "./mime.js";
