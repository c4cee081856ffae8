/**
 * One typed definition per file of sql/ (test/sql-boundary.test.ts holds the two lists equal).
 * Parameter names are the file's `:names`. Row types are what node-postgres returns for the
 * columns the SQL functions declare (their live definitions: docs/schema.sql; in migrations/ later ones
 * replacing earlier): bigint and numeric as string, integer as number, timestamptz as Date,
 * bytea as Buffer, text[] as string[], void as "".
 */
import { type NoParams, statement } from "./statement.js";

type Workspace = { workspace: string };
type FileKey = { workspace: string; path: string };

/** Where a grep or search looks, and which files it keeps (glob.ts compiles the glob). */
type LineScope = FileKey & {
  allowExact: boolean;
  glob: string | null;
  globRegex: string | null;
  globBasename: boolean;
  limit: number | null;
};

export type LineRow = { path: string; line: number; text: string };

// --- files (the agent protocol) ---------------------------------------------------------------

/** A directory: size "0" and no modified_at. */
export const ls = statement<
  Workspace & { dir: string },
  { path: string; size: string } & ({ is_dir: false; modified_at: Date } | { is_dir: true; modified_at: null })
>("ls", { readOnly: true });

/** A window of a file (read.sql, read_version.sql): binary whole, text as lines after offset. */
export type WindowRow = {
  mime_type: string;
  bytes: Buffer | null;
  total_lines: number;
  window_text: string | null;
  window_lines: number;
};

export const read = statement<FileKey & { offset: number; limit: number }, WindowRow>("read", { readOnly: true });

/** A file has exactly one body: content (text) or bytes (binary). */
type Body = { content: string; bytes: null } | { content: null; bytes: Buffer };

export const readRaw = statement<FileKey, { mime_type: string; created_at: Date; modified_at: Date } & Body>(
  "read_raw",
  { readOnly: true },
);

/** A file's metadata; no file: NULLs, and whether a directory is there (else is_dir false). */
export const stat = statement<
  FileKey,
  {
    mime_type: string | null;
    is_binary: boolean | null;
    size: string | null;
    line_count: number | null;
    version: string | null;
    created_at: Date | null;
    modified_at: Date | null;
    is_dir: boolean;
  }
>("stat", { readOnly: true });

export const write = statement<
  FileKey & { text: string | null; bytes: Buffer | null; mimeType: string; ifVersion: number | null },
  /**
   * version: the new one; for version_mismatch the current one (0: no such file); "0" when
   * nothing was written because of the path in the way (conflict).
   */
  { version: string } & (
    | { status: "created" | "updated" | "version_mismatch"; conflict: null }
    | { status: "parent_is_file" | "is_directory"; conflict: string }
  )
>("write", { wakes: "workspace" });

export type EditStatus =
  | "ok"
  | "not_found"
  | "binary"
  | "empty_old"
  | "no_match"
  | "multiple"
  | "version_mismatch"
  | "too_large";

export const edit = statement<
  FileKey & {
    oldString: string;
    newString: string;
    replaceAll: boolean;
    ifVersion: number | null;
    maxBytes: number;
  },
  /** version: the new one, the current one, or for too_large the size it would have (NULL: not_found). */
  { status: EditStatus; occurrences: number; version: string | null }
>("edit", { wakes: "workspace" });

export const deleteTree = statement<FileKey, { deleted: string }>("delete", { wakes: "workspace" });

/** mkdir (fs_mkdir, migration 0027). */
export const mkdir = statement<
  FileKey & { parents: boolean },
  | { status: "created" | "exists"; conflict: null }
  | { status: "is_file"; conflict: string }
  | { status: "parent_is_file" | "parent_missing"; conflict: string }
>("mkdir");

/** A move or copy of a file or directory (fs_move, migration 0026). */
export const move = statement<
  Workspace & { from: string; to: string; overwrite: boolean; copy: boolean; maxBytes: number },
  | { status: "moved" | "copied"; files: string; conflict: null }
  | { status: "not_found"; files: string; conflict: null }
  | {
      status: "into_itself" | "target_exists" | "parent_is_file" | "is_directory" | "too_long";
      files: string;
      conflict: string;
    }
>("move", { wakes: "workspace" });

export const grep = statement<LineScope & { pattern: string }, LineRow>("grep", { readOnly: true });

export const search = statement<
  LineScope & { pattern: string; regex: boolean; ignoreCase: boolean; chunkPattern: string | null },
  LineRow
>("search", { readOnly: true });

/**
 * Opens a cursor over search's lines, uncapped, of the part [from, to) of the scope
 * (fs_search_open, 0023 and 0025); read by ReadSession.cursor.
 */
export type SearchOpenParams = Omit<LineScope, "limit"> & {
  cursor: string;
  pattern: string;
  regex: boolean;
  ignoreCase: boolean;
  chunkPattern: string | null;
  from: string | null;
  to: string | null;
};
export const searchOpen = statement<SearchOpenParams, { cursor: string; pathOrder: boolean }>("search_open", {
  readOnly: true,
});

/** The snapshot a read session's REPEATABLE READ transaction reads, for another to import (read-session.ts). */
export const exportSnapshot = statement<NoParams, { id: string | null }>("export_snapshot", { readOnly: true });

/** Cancels what one backend runs (a read session's own, on close: read-session.ts). */
export const cancelBackend = statement<{ pid: number }, { cancelled: boolean }>("cancel_backend");

/** Where a streamed search's scope is cut into parts of about equal bytes (fs_search_split, 0025). */
export const searchSplit = statement<
  FileKey & { allowExact: boolean; parts: number; minBytes: number },
  { bounds: string[] }
>("search_split", { readOnly: true });

export const glob = statement<
  FileKey & { allowExact: boolean; base: string; pattern: string; regex: string },
  { path: string; size: string; modified_at: Date }
>("glob", { readOnly: true });

export const upload = statement<
  Workspace & {
    paths: string[];
    texts: Array<string | null>;
    bytes: Array<Buffer | null>;
    mimeTypes: string[];
  },
  { path: string; status: "parent_is_file" | "is_directory"; conflict: string }
>("upload", { wakes: "workspace" });

export const download = statement<
  Workspace & { paths: string[] },
  /** ord: the path's position in `paths`, from 1. */
  { ord: string; content: string | null; bytes: Buffer | null; is_dir: boolean }
>("download", { readOnly: true });

// --- change log (watch.ts) --------------------------------------------------------------------

export const changes = statement<
  Workspace & { after: number; limit: number },
  {
    id: string;
    path: string;
    op: "create" | "update" | "delete";
    version: string;
    size: string;
    at: Date;
    /** A move (0026): the path the file went to (on its delete) or came from (on its create). */
    moved: string | null;
  }
>("changes", { readOnly: true });

export const changesHead = statement<Workspace, { head: string; channel: string }>("changes_head", {
  readOnly: true,
});

/** Wakes the watchers of workspaces changed by commits that sent no NOTIFY (wake-ups.ts). */
export const wakeUp = statement<{ workspaces: string[] }, { woken: number }>("wake_up");

export const pruneChanges = statement<
  { olderThan: string | null; keepPerWorkspace: number | null },
  { pruned: string }
>("prune_changes");

// --- history and checkpoints (history.ts; migration 0008) -------------------------------------

export const history = statement<
  FileKey,
  {
    version: string;
    op: "create" | "update" | "delete";
    change_id: string | null;
    size: string;
    mime_type: string | null;
    at: Date;
    tag: string | null;
    /** A move (0026): where the file went (its deletion) or came from (its first version here). */
    moved: string | null;
  }
>("history", { readOnly: true });

export const readVersion = statement<FileKey & { version: number; offset: number; limit: number }, WindowRow>(
  "read_version",
  { readOnly: true },
);

/** Inside a write's transaction: the writer's tag file history keeps (connection.ts). */
export const setTag = statement<{ tag: string }, { set_config: string }>("set_tag");

export const restore = statement<
  FileKey & { version: number; ifVersion: number | null },
  { version: string } & (
    | { status: "created" | "updated" | "version_mismatch" | "no_version"; conflict: null }
    | { status: "parent_is_file" | "is_directory"; conflict: string }
  )
>("restore", { wakes: "workspace" });

export const checkpoint = statement<
  Workspace & { label: string | null; tag: string | null },
  { id: string; change_id: string; created_at: Date }
>("checkpoint");

export const checkpoints = statement<
  Workspace,
  { id: string; change_id: string; label: string | null; tag: string | null; created_at: Date }
>("checkpoints", { readOnly: true });

export const deleteCheckpoint = statement<Workspace & { id: number }, { deleted: boolean }>("delete_checkpoint");

export const diff = statement<
  Workspace & { from: number; to: number | null; scope: string[] | null },
  {
    path: string;
    op: "created" | "updated" | "deleted";
    from_version: string | null;
    from_size: string | null;
    to_version: string | null;
    to_size: string | null;
    binary_change: boolean;
  }
>("diff", { readOnly: true });

export const rewind = statement<
  Workspace & { id: number; scope: string[] | null; dryRun: boolean },
  {
    path: string;
    op: "created" | "updated" | "deleted";
    version_before: string | null;
    size_before: string | null;
    restored_version: string | null;
    size_after: string | null;
    version: string | null;
    undo_checkpoint: string | null;
  }
>("rewind", { wakes: "workspace" });

export const fork = statement<
  Workspace & { target: string; at: number | null; history: boolean },
  { files: string; bytes: string; versions: string }
>("fork", { wakes: "target" });

export const pruneHistory = statement<{ workspace: string | null }, { versions: string; blobs: string }>(
  "prune_history",
);

export const pruneChunks = statement<NoParams, { chunk_sets: string }>("prune_chunks");

export const setHistory = statement<
  { scope: string; enabled: boolean | null; keepVersions: number | null; keepDays: number | null },
  { versions: string; checkpoints: string; blobs: string }
>("set_history");

export const historySettings = statement<
  Workspace,
  { enabled: boolean; keep_versions: number | null; keep_days: number | null }
>("history_settings", { readOnly: true });

// --- setup and operators (backend initialize(), admin.ts, rls.ts) ------------------------------

export const serverInfo = statement<{ schema: string }, { version: number; encoding: string; proxy: boolean }>(
  "server_info",
  {
    readOnly: true,
  },
);

export const rlsCheck = statement<Workspace, { role: string; active: boolean; granted: boolean }>("rls_check", {
  readOnly: true,
});

export const grantWorkspace = statement<{ role: string; workspace: string | null }, { granted: boolean }>(
  "grant_workspace",
);

export const revokeWorkspace = statement<{ role: string; workspace: string | null }, { revoked: boolean }>(
  "revoke_workspace",
);

export const workspaces = statement<NoParams, { workspace: string; files: string; bytes: string; modified_at: Date }>(
  "workspaces",
  { readOnly: true },
);

export const stats = statement<
  { schema: string },
  /** estimated_rows: NULL for an index (and a table the statistics collector has not seen). */
  { name: string; kind: "table" | "index"; bytes: string; estimated_rows: string | null }
>("stats", { readOnly: true });

// --- migrations (migrate.ts) ------------------------------------------------------------------

export const schemaVersion = statement<NoParams, { name: string }>("schema_version", { readOnly: true });

export const schemaExists = statement<{ schema: string }, { exists: boolean }>("schema_exists", { readOnly: true });

export const migrationsInstalled = statement<NoParams, { installed: boolean }>("migrations_installed", {
  readOnly: true,
});

/** A DO block: no rows. */
export const migrationsDrop = statement<NoParams, never>("migrations_drop");

export const advisoryLock = statement<{ lockValue: number }, { pg_advisory_lock: "" }>("advisory_lock");

export const advisoryUnlock = statement<{ lockValue: number }, { pg_advisory_unlock: boolean }>("advisory_unlock");

/** Both columns are named set_config: the driver keeps one. */
export const pgTrgmScope = statement<{ schema: string; direction: "up" | "down" }, { set_config: string }>(
  "pg_trgm_scope",
);

/** A DO block: no rows. */
export const pgTrgmHome = statement<NoParams, never>("pg_trgm_home");

// --- a sharded deployment (cluster/) ----------------------------------------------------------

/** A partition's functions (sql/cluster_install.sql reads them as JSON). */
export type FunctionSignature = {
  name: string;
  arguments: string;
  result: string;
  inputs: string[];
  output_types: string[];
  returns_set: boolean;
  volatile: boolean;
  public_execute: boolean;
};

export const clusterSignatures = statement<{ schema: string }, FunctionSignature>("cluster_signatures", {
  readOnly: true,
});

export const clusterMigrations = statement<NoParams, { name: string; run_on: Date }>("cluster_migrations", {
  readOnly: true,
});

export const clusterScope = statement<{ definition: string }, { set_config: string }>("cluster_scope");

/** DO blocks: no rows. */
export const clusterInstall = statement<NoParams, never>("cluster_install");
export const clusterUninstall = statement<NoParams, never>("cluster_uninstall");
export const clusterPartitionCheck = statement<NoParams, never>("cluster_partition_check");
export const clusterPartitionGuard = statement<NoParams, never>("cluster_partition_guard");
export const clusterPartitionDrop = statement<NoParams, never>("cluster_partition_drop");
export const clusterForget = statement<NoParams, never>("cluster_forget");
export const clusterPartitionEmpty = statement<NoParams, never>("cluster_partition_empty");

/** The partition holding a workspace, and its libpq options. */
export const clusterPartition = statement<Workspace, { partition: number; options: string }>("cluster_partition", {
  readOnly: true,
});

/** On a split's new partition: a copied grant's time of grant (after grant_workspace made it again). */
export const clusterGrantTime = statement<{ role: string; workspace: string | null; grantedAt: string }, never>(
  "cluster_grant_time",
);

/** On a partition: whether its read map holds the workspace (DA022 if not), in a read session. */
export const clusterReadsHere = statement<Workspace, { here: boolean }>("cluster_reads_here", { readOnly: true });

/** Every partition of the schema's cluster when this database is its proxy; no rows otherwise. */
export const clusterPartitions = statement<{ schema: string }, { partition: number; options: string }>(
  "cluster_partitions",
  { readOnly: true },
);
