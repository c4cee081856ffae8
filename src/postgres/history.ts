/**
 * File history and checkpoints on PostgreSQL (migration 0008): each method validates its input,
 * runs one statement and shapes the rows. Storage, deltas, retention and the rules of rewind are
 * in the SQL functions (docs/schema.sql: fs_history, fs_read_version, fs_restore, fs_checkpoint,
 * fs_diff, fs_rewind, prune_history, set_history); the types are src/core/history.ts's.
 */
import type pg from "pg";
import { readResult, writeResult } from "../core/backend.js";
import { movedSide } from "../core/changes.js";
import {
  type LoggedCheckpoint,
  type DiffOptions,
  type FileVersion,
  type ForkOptions,
  type ForkResult,
  forkHistoryOption,
  forkTarget,
  type HistoryResult,
  type HistorySettings,
  optionalLabel,
  optionalLimit,
  type PathChange,
  positiveId,
  scopeOf,
  type RewindOptions,
  type RewindResult,
  unifiedPatch,
} from "../core/history.js";
import { normalizeFilePath, validateWorkspace } from "../paths.js";
import {
  errors,
  historyErrors,
  INT4_MAX,
  InputError,
  type ReadResult,
  readPagination,
  type WriteResult,
} from "../protocol.js";
import { DEFAULTS } from "../core/defaults.js";
import { fileWindow, sqlWindow } from "./files.js";
import * as sql from "./sql/queries.js";
import type { Statement } from "./sql/statement.js";
import { SQLSTATE, sqlstateOf } from "./sqlstate.js";

/** What the backend lends this module: its workspace, its round trip, its error wording. */
export interface HistoryContext {
  readonly workspace: string;
  query<P extends object, R>(statement: Statement<P, R>, params: P): Promise<R[]>;
  /** The protocol's message for a failure (input errors, permission, storage). */
  failure(operation: string, e: unknown): string;
  /** write()'s check of `ifVersion` (null: none given). */
  checkVersion(ifVersion: unknown): number | null;
}

const num = (value: string | null): number | null => (value === null ? null : Number(value));

/** Thrown errors of the workspace-level calls: our SQLSTATEs in our words, the rest as the protocol says them. */
function thrown(ctx: HistoryContext, operation: string, e: unknown): Error {
  const code = sqlstateOf(e);
  const detail = (e as pg.DatabaseError).detail ?? "";
  if (code === SQLSTATE.insufficientPrivilege && (operation === "pruneHistory" || operation === "setHistory")) {
    return new Error(historyErrors.needsOwner(operation));
  }
  if (code === SQLSTATE.historyOff) return new Error(historyErrors.historyOff(ctx.workspace));
  if (code === SQLSTATE.noCheckpoint) return new InputError(historyErrors.noCheckpoint(Number(detail), ctx.workspace));
  if (code === SQLSTATE.checkpointBeforeLog)
    return new InputError(historyErrors.checkpointBeforeLog(Number(detail), ctx.workspace));
  if (code === SQLSTATE.forkIntoItself) return new InputError(historyErrors.forkIntoItself(ctx.workspace));
  if (code === SQLSTATE.forkTargetHasFiles) return new InputError(historyErrors.forkTargetHasFiles(detail));
  if (code === SQLSTATE.historyDamaged) return new Error(historyErrors.damaged((e as Error).message));
  if (code === SQLSTATE.rewindVersionGone)
    return new InputError(historyErrors.noVersion(detail, (e as pg.DatabaseError).hint ?? "?"));
  // The file/directory rule at commit (a rewind of some paths only): its message names both paths.
  if (code === SQLSTATE.parentIsFile || code === SQLSTATE.isDirectory)
    return new Error(`Error: ${(e as Error).message}`);
  return e instanceof InputError ? e : new Error(ctx.failure(operation, e));
}

export async function fileHistory(ctx: HistoryContext, filePath: string): Promise<HistoryResult> {
  try {
    const path = normalizeFilePath(filePath);
    const rows = await ctx.query(sql.history, { workspace: ctx.workspace, path });
    if (rows.length === 0) return { error: historyErrors.noHistory(filePath) };
    const versions: FileVersion[] = rows.map((r) => ({
      version: Number(r.version),
      op: r.op,
      changeId: num(r.change_id),
      size: Number(r.size),
      mimeType: r.mime_type,
      at: r.at.toISOString(),
      tag: r.tag,
      ...movedSide(r.op, r.moved),
    }));
    return { versions };
  } catch (e) {
    return { error: ctx.failure("history", e) };
  }
}

export async function readVersion(
  ctx: HistoryContext,
  filePath: string,
  version: number,
  offset = 0,
  limit: number = DEFAULTS.readLimit,
): Promise<ReadResult> {
  try {
    const path = normalizeFilePath(filePath);
    const v = positiveId(version, "version");
    const window = readPagination(offset, limit);
    const [row] = await ctx.query(sql.readVersion, {
      workspace: ctx.workspace,
      path,
      version: v,
      ...sqlWindow(window),
    });
    return row ? readResult(fileWindow(row), window) : { error: historyErrors.noVersion(filePath, v) };
  } catch (e) {
    return { error: ctx.failure("readVersion", e) };
  }
}

export async function restore(
  ctx: HistoryContext,
  filePath: string,
  version: number,
  options: { ifVersion?: number } = {},
): Promise<WriteResult & { version?: number }> {
  try {
    const path = normalizeFilePath(filePath);
    const v = positiveId(version, "version");
    const ifVersion = ctx.checkVersion(options.ifVersion);
    const rows = await ctx.query(sql.restore, { workspace: ctx.workspace, path, version: v, ifVersion }).catch((e) => {
      // The file/directory rule, enforced at commit against a transaction that raced this one.
      const code = sqlstateOf(e);
      if (code === SQLSTATE.parentIsFile)
        return { error: errors.parentIsFile(filePath, (e as pg.DatabaseError).detail ?? "") };
      if (code === SQLSTATE.isDirectory) return { error: errors.isDirectory(filePath) };
      throw e;
    });
    if (!Array.isArray(rows)) return rows;
    const row = rows[0];
    const current = Number(row.version);
    switch (row.status) {
      case "no_version":
        return { error: historyErrors.noVersion(filePath, v) };
      case "created":
      case "updated":
        return writeResult(filePath, ifVersion, { status: "ok", version: current });
      case "version_mismatch":
        return writeResult(filePath, ifVersion, { status: "version_mismatch", current });
      case "parent_is_file":
        return writeResult(filePath, ifVersion, { status: "parent_is_file", file: row.conflict });
      case "is_directory":
        return writeResult(filePath, ifVersion, { status: "is_directory" });
    }
  } catch (e) {
    return { error: ctx.failure("restore", e) };
  }
}

function checkpointOf(r: {
  id: string;
  change_id: string;
  label?: string | null;
  tag?: string | null;
  created_at: Date;
}) {
  return {
    id: Number(r.id),
    changeId: Number(r.change_id),
    label: r.label ?? null,
    tag: r.tag ?? null,
    createdAt: r.created_at.toISOString(),
  };
}

export async function checkpoint(
  ctx: HistoryContext,
  options: { label?: string; tag?: string } = {},
): Promise<LoggedCheckpoint> {
  try {
    const label = optionalLabel(options.label, "label");
    const tag = optionalLabel(options.tag, "tag");
    const [row] = await ctx.query(sql.checkpoint, { workspace: ctx.workspace, label, tag });
    return checkpointOf({ ...row, label, tag });
  } catch (e) {
    throw thrown(ctx, "checkpoint", e);
  }
}

export async function checkpoints(ctx: HistoryContext): Promise<LoggedCheckpoint[]> {
  try {
    return (await ctx.query(sql.checkpoints, { workspace: ctx.workspace })).map(checkpointOf);
  } catch (e) {
    throw thrown(ctx, "checkpoints", e);
  }
}

export async function deleteCheckpoint(ctx: HistoryContext, id: number): Promise<boolean> {
  try {
    const [row] = await ctx.query(sql.deleteCheckpoint, { workspace: ctx.workspace, id: positiveId(id, "checkpoint") });
    return row.deleted;
  } catch (e) {
    throw thrown(ctx, "deleteCheckpoint", e);
  }
}

const side = (version: string | null, size: string | null) =>
  version === null ? null : { version: Number(version), size: Number(size) };

export async function diff(
  ctx: HistoryContext,
  from: number,
  to: number | null = null,
  options: DiffOptions = {},
): Promise<PathChange[]> {
  try {
    const params = {
      workspace: ctx.workspace,
      from: positiveId(from, "checkpoint"),
      to: to === null || to === undefined ? null : positiveId(to, "checkpoint"),
      scope: scopeOf(options.paths),
    };
    const rows = await ctx.query(sql.diff, params);
    const changes: PathChange[] = rows.map((r) => ({
      path: r.path,
      op: r.op,
      before: side(r.from_version, r.from_size),
      after: side(r.to_version, r.to_size),
      binary: r.binary_change,
    }));
    if (options.unified) {
      for (const c of changes) if (!c.binary) c.patch = await patchOf(ctx, c, options.context);
    }
    return changes;
  } catch (e) {
    throw thrown(ctx, "diff", e);
  }
}

/** The unified diff of one text change, from the two versions' whole texts. */
async function patchOf(ctx: HistoryContext, c: PathChange, context?: number): Promise<string> {
  const text = async (s: { version: number } | null) => {
    if (!s) return "";
    const [row] = await ctx.query(sql.readVersion, {
      workspace: ctx.workspace,
      path: c.path,
      version: s.version,
      offset: 0,
      limit: INT4_MAX,
    });
    // A version the window cut: its lines joined back (chunk_lines keeps the final empty line).
    return row?.window_text ?? "";
  };
  return unifiedPatch(c.path, await text(c.before), await text(c.after), context);
}

export async function rewind(ctx: HistoryContext, id: number, options: RewindOptions = {}): Promise<RewindResult> {
  try {
    const dryRun = options.dryRun === true;
    const rows = await ctx.query(sql.rewind, {
      workspace: ctx.workspace,
      id: positiveId(id, "checkpoint"),
      scope: scopeOf(options.paths),
      dryRun,
    });
    const changes = rows.map((r) => ({
      path: r.path,
      op: r.op,
      before: side(r.version_before, r.size_before),
      after: side(r.restored_version, r.size_after),
      written: num(r.version),
    }));
    return { changes, dryRun, undo: rows.length > 0 ? num(rows[0].undo_checkpoint) : null };
  } catch (e) {
    throw thrown(ctx, "rewind", e);
  }
}

export async function fork(ctx: HistoryContext, target: string, options: ForkOptions = {}): Promise<ForkResult> {
  const workspace = forkTarget(target, validateWorkspace);
  try {
    const at = options.at === undefined ? null : positiveId(options.at, "checkpoint");
    const history = forkHistoryOption(options.history);
    const [row] = await ctx.query(sql.fork, { workspace: ctx.workspace, target: workspace, at, history });
    // (The planner's statistics of the new workspace: refreshed by the copy's own INSERT, 0021.)
    const files = Number(row.files);
    return { workspace, files, bytes: Number(row.bytes), at, versions: Number(row.versions) };
  } catch (e) {
    // A file written into the target while the fork copied: the target has files after all.
    const code = sqlstateOf(e);
    if (code === SQLSTATE.uniqueViolation) throw new InputError(historyErrors.forkTargetHasFiles(workspace));
    if (code === SQLSTATE.historyOff) throw new Error(historyErrors.forkHistoryOff(workspace));
    if (code === SQLSTATE.forkHistoryNeedsOwner) throw new Error(historyErrors.forkHistoryNeedsOwner(workspace));
    if (code === SQLSTATE.forkTargetHasHistory) throw new InputError(historyErrors.forkTargetHasHistory(workspace));
    if (code === SQLSTATE.forkAcrossPartitions)
      throw new InputError(historyErrors.forkAcrossPartitions(ctx.workspace, workspace));
    throw thrown(ctx, "fork", e);
  }
}

export async function pruneHistory(
  ctx: HistoryContext,
  allWorkspaces: boolean,
): Promise<{ versions: number; blobs: number; chunkSets: number }> {
  try {
    const [row] = await ctx.query(sql.pruneHistory, { workspace: allWorkspaces ? null : ctx.workspace });
    const [swept] = await ctx.query(sql.pruneChunks, {});
    return { versions: Number(row.versions), blobs: Number(row.blobs), chunkSets: Number(swept.chunk_sets) };
  } catch (e) {
    throw thrown(ctx, "pruneHistory", e);
  }
}

export async function historySettings(ctx: HistoryContext): Promise<HistorySettings> {
  try {
    const [row] = await ctx.query(sql.historySettings, { workspace: ctx.workspace });
    return { enabled: row.enabled, keepVersions: row.keep_versions, keepDays: row.keep_days };
  } catch (e) {
    throw thrown(ctx, "historySettings", e);
  }
}

/** The schema's default (scope "") or one workspace's settings; undefined fields take the default's. */
export async function setHistory(
  ctx: HistoryContext,
  scope: string,
  settings: Partial<HistorySettings>,
): Promise<{ versions: number; checkpoints: number; blobs: number }> {
  try {
    const enabled = settings.enabled ?? null;
    if (enabled !== null && typeof enabled !== "boolean") {
      throw new InputError(historyErrors.invalidArgument("enabled", "true or false", enabled));
    }
    const [row] = await ctx.query(sql.setHistory, {
      scope,
      enabled,
      keepVersions: optionalLimit(settings.keepVersions, "keepVersions"),
      keepDays: optionalLimit(settings.keepDays, "keepDays"),
    });
    return { versions: Number(row.versions), checkpoints: Number(row.checkpoints), blobs: Number(row.blobs) };
  } catch (e) {
    throw thrown(ctx, "setHistory", e);
  }
}
