/**
 * The storage-independent part of the public API. Every entry (deepagents-backends,
 * deepagents-backends/postgres, deepagents-backends/s3) re-exports it, so a user of one backend
 * gets the errors, path and MIME helpers without loading the other backend's driver.
 */
export type {
  FileStat,
  GrepMatch,
  MkdirOptions,
  MkdirResult,
  RelocateOptions,
  RelocateResult,
  StatResult,
  SearchOptions,
  SearchResult,
} from "./protocol.js";
export { EMPTY_FILE_CONTENT, errors } from "./protocol.js";
export { normalizePath, normalizeFilePath, PathError, MAX_PATH_BYTES } from "./paths.js";
export { getMimeType, isTextMimeType } from "./mime.js";
export type { BackendFeatures, DeepAgentsBackend, Version, VersionOptions } from "./core/interface.js";
export { DEFAULTS } from "./core/defaults.js";
// For a backend of another store (GCS, Azure Blob, ...): extend BackendCore and implement its
// primitives (docs/ARCHITECTURE.md, "Adding a backend").
export { BackendCore, SearchStreamError } from "./core/backend.js";
export type * from "./core/requests.js";
// File history and checkpoints (PostgresBackend implements VersionedWorkspace).
export type {
  Checkpoint,
  LoggedCheckpoint,
  DiffOptions,
  FileVersion,
  HistoryResult,
  HistorySettings,
  PathChange,
  RewindChange,
  RewindOptions,
  RewindResult,
  VersionedWorkspace,
} from "./core/history.js";
// LangGraph time travel that rewinds files (any backend implementing VersionedWorkspace).
export { FILES_CHECKPOINT_KEY, fileCheckpointOf, rewindFiles, withFileCheckpoints } from "./time-travel.js";
export type { FileCheckpointOptions } from "./time-travel.js";
