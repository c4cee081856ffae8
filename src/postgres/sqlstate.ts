/**
 * The SQLSTATE codes the driver tells apart: PostgreSQL's own, and the DA0xx codes our
 * migrations raise (each documented where it is raised).
 */
export const SQLSTATE = {
  /** Privilege missing, or a row-level security policy refused the row. */
  insufficientPrivilege: "42501",
  /** A regular expression PostgreSQL could not compile. */
  invalidRegex: "2201B",
  /** statement_timeout ran out (or the query was cancelled). */
  queryCanceled: "57014",
  /** 0002 fs_changes: the cursor is older than the retained change log. */
  resyncRequired: "DA001",
  /** 0005 changes_tree_check (at commit) and fs_write/fs_upload up front: the path lies under a file (DETAIL: that file). */
  parentIsFile: "DA002",
  /** 0005 changes_tree_check (at commit) and fs_write/fs_upload up front: a file was to be created where a directory is (DETAIL: the path). */
  isDirectory: "DA003",
  /** sql/pg_trgm_home.sql: pg_trgm is missing or unusable and this role cannot fix it (the message names the DBA's command). */
  pgTrgmUnusable: "DA004",
} as const;

/** The SQLSTATE of a database error, or undefined for anything else. */
export function sqlstateOf(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}
