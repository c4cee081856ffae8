/**
 * The one module naming the SQLSTATEs the driver handles: PostgreSQL's own, and the DA0xx codes
 * our migrations raise (each documented where it is raised). No other module of src/ spells a code.
 */
export const SQLSTATE = {
  /** Privilege missing, or a row-level security policy refused the row. */
  insufficientPrivilege: "42501",
  /**
   * deadlock_detected: PostgreSQL broke a cycle of lock waits by failing this transaction, which
   * was rolled back whole: run again (connection.ts). A move locks its source rows before it
   * writes its new paths, the one order writers do not share.
   */
  deadlockDetected: "40P01",
  /** undefined_function: a cluster partition made by an older version (files.ts, cluster_reads_here). */
  undefinedFunction: "42883",
  /** unique_violation: a row with that key was written meanwhile (e.g. into a fork's target). */
  uniqueViolation: "23505",
  /** A regular expression PostgreSQL could not compile. */
  invalidRegex: "2201B",
  /** statement_timeout ran out (or the query was cancelled). */
  queryCanceled: "57014",
  /** lock_not_available: lock_timeout ran out (cluster/install.ts retries a change of a partition's maps). */
  lockNotAvailable: "55P03",
  /** undefined_table: e.g. the migrations table of a schema never migrated (also what a name in a schema the role may no longer use resolves to: movedAwayFromPartition). */
  undefinedTable: "42P01",
  /** invalid_schema_name: the schema does not exist. */
  invalidSchemaName: "3F000",
  /** invalid_password: authentication failed. */
  invalidPassword: "28P01",
  /** invalid_authorization_specification: no such role, or pg_hba.conf refused it. */
  invalidAuthorization: "28000",
  /** invalid_catalog_name: the database does not exist. */
  invalidCatalogName: "3D000",
  /** cannot_connect_now: the server is starting up or shutting down. */
  cannotConnectNow: "57P03",
  /** 0002 fs_changes: the cursor is older than the retained change log. */
  resyncRequired: "DA001",
  /** 0005 changes_tree_check (at commit) and fs_write/fs_upload up front: the path lies under a file (DETAIL: that file). */
  parentIsFile: "DA002",
  /** 0005 changes_tree_check (at commit) and fs_write/fs_upload up front: a file was to be created where a directory is (DETAIL: the path). */
  isDirectory: "DA003",
  /** sql/pg_trgm_home.sql: pg_trgm is missing or unusable and this role cannot fix it (the message names the DBA's command). */
  pgTrgmUnusable: "DA004",
  /** 0008 version_data: a version is neither stored nor current (raw SQL removed what history needs). */
  historyDamaged: "DA010",
  /** 0008 fs_checkpoint: history is off for the workspace. */
  historyOff: "DA011",
  /** 0008 checkpoint_position: no such checkpoint in the workspace. */
  noCheckpoint: "DA012",
  /** 0010 fs_fork: the target is the source. */
  forkIntoItself: "DA013",
  /** 0010 fs_fork: the target workspace has files. */
  forkTargetHasFiles: "DA014",
  /** 0013 fs_fork with history: the role cannot write version rows (DETAIL: the target). */
  forkHistoryNeedsOwner: "DA015",
  /** 0013 fs_fork with history: the target had files once and has history of its own (DETAIL: it). */
  forkTargetHasHistory: "DA016",
  /** 0017 fork_log_start: a fork mark for a workspace that is not new (fs_fork then logs file by file; DETAIL: it). */
  forkLogNotNew: "DA017",
  /** 0017 checkpoint_position: the checkpoint is older than the workspace's horizon (taken while a fork or prune_changes committed; DETAIL: its id). */
  checkpointBeforeLog: "DA018",
  /** 0020 fs_rewind: a version the rewind would write back went meanwhile (DETAIL: the path; HINT: the version). */
  rewindVersionGone: "DA019",
  /** sql/cluster_install.sql, on a PL/Proxy database: a fork between workspaces of two partitions. */
  forkAcrossPartitions: "DA020",
  /** sql/cluster_install.sql: the cluster was installed with another number of partitions. */
  partitionCountChanged: "DA021",
  /** sql/cluster_partition_guard.sql cluster_here(): the workspace is not (or no longer) on this partition: a split moves it. */
  workspaceMoving: "DA022",
} as const;

/** The SQLSTATE of a database error, or undefined for anything else. */
export function sqlstateOf(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/**
 * The statement was cancelled (statement_timeout, a cancel request). PostgreSQL's regex engine,
 * interrupted while it compiles or runs a pattern, reports the cancel as an invalid regular
 * expression ("invalid regular expression: operation cancelled", 2201B): that is a cancel too,
 * not a bad pattern.
 */
export function isCancelled(e: unknown): boolean {
  const code = sqlstateOf(e);
  return (
    code === SQLSTATE.queryCanceled ||
    (code === SQLSTATE.invalidRegex && /operation cancell?ed/.test((e as Error)?.message ?? ""))
  );
}

/**
 * The server ended the session (57P01 admin_shutdown — pg_terminate_backend() too —, 57P02
 * crash_shutdown, 57P03 cannot_connect_now, 57P04 database_dropped, 57P05 idle_session_timeout,
 * ...): class 57 "operator intervention", subclass P.
 */
export function isOperatorIntervention(code: string): boolean {
  return code.startsWith("57P");
}

/** Class 08, connection exception: the connection failed or broke. */
export function isConnectionException(code: string): boolean {
  return code.startsWith("08");
}

/**
 * The server would not let us in (as opposed to failing a query): wrong password or role, no such
 * database, or a server starting up or shutting down.
 */
export function isConnectRefusal(code: string): boolean {
  return (
    code === SQLSTATE.invalidPassword ||
    code === SQLSTATE.invalidAuthorization ||
    code === SQLSTATE.invalidCatalogName ||
    code === SQLSTATE.cannotConnectNow
  );
}

/**
 * A session opened on a cluster's partition directly (a watch, a streamed search) failed because
 * a split moved its workspace away: the partition's read map refuses it (DA022), or a restricted
 * role's privileges there went with its last grant (permission denied; or, for a name the
 * function resolves through its search_path in a schema the role may no longer use, "does not
 * exist").
 */
export function movedAwayFromPartition(e: unknown): boolean {
  const code = sqlstateOf(e);
  return (
    code === SQLSTATE.workspaceMoving || code === SQLSTATE.insufficientPrivilege || code === SQLSTATE.undefinedTable
  );
}
