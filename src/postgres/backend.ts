/**
 * PostgresBackend: deepagents' BackendProtocolV2 where every call is one round trip to one SQL
 * function installed by our migrations (migrations/, statements in sql/, typed in sql/queries.ts).
 * BackendCore validates input and shapes results; this file maps each request onto its statement
 * and each status onto an outcome. Connections, retries and timeouts live in connection.ts.
 */
import type pg from "pg";
import { MatchTimeoutError } from "../bounded.js";
import { type FileBody, toBytes } from "../content.js";
import {
  BackendCore,
  type CoreState,
  type EditOutcome,
  type EditRequest,
  type FileError,
  type FileWindow,
  type LineQuery,
  type WriteOutcome,
} from "../core/backend.js";
import { DEFAULTS } from "../core/defaults.js";
import type { BackendFeatures, VersionOptions } from "../core/interface.js";
import { type CompiledGlob, GlobError, matchesBasename } from "../glob.js";
import type { NormalizedPath } from "../paths.js";
import {
  errors,
  type FileData,
  type FileInfo,
  type FileStat,
  type GrepMatch,
  INT4_MAX,
  InputError,
} from "../protocol.js";
import { RegexError, translateRegex } from "../regex/index.js";
import { type PostgresBackendConfig, validateSchema } from "./config.js";
import { Connection } from "./connection.js";
import { type OpenOptions, openSchema } from "./open.js";
import * as sql from "./sql/queries.js";
import type { Statement } from "./sql/statement.js";
import { SQLSTATE, sqlstateOf } from "./sqlstate.js";
import { type Subscription, type WatchOptions, watchChanges } from "./watch.js";
import * as history from "./history.js";
import type {
  Checkpoint,
  DiffOptions,
  HistoryResult,
  HistorySettings,
  PathChange,
  RewindOptions,
  RewindResult,
  VersionedWorkspace,
} from "../core/history.js";
import type { ReadResult, WriteResult } from "../protocol.js";

/** Optimistic concurrency for write/edit: the version the caller last saw (0 = must not exist). */
export type WriteOptions = VersionOptions<number>;

export type InitializeOptions = OpenOptions;

interface Shared extends CoreState {
  readonly connection: Connection;
  readonly schema: string;
  readonly config: PostgresBackendConfig;
}

/** A search as fs_search takes it: a regex is translated to ARE and carries its own case rules. */
interface SqlMatcher {
  pattern: string;
  regex: boolean;
  ignoreCase: boolean;
  /** The relaxed pattern that prefilters chunks (src/regex/), or null for a literal. */
  chunkPattern: string | null;
}

export class PostgresBackend extends BackendCore<number, Shared, SqlMatcher> implements VersionedWorkspace {
  readonly features: BackendFeatures = {
    kind: "postgres",
    versions: "counter",
    watch: true,
    serverSideSearch: true,
    atomicEdits: true,
  };

  constructor(config?: PostgresBackendConfig);
  /** @internal withWorkspace() */
  constructor(config: PostgresBackendConfig, shared: Shared, workspace: string);
  constructor(config: PostgresBackendConfig = {}, shared?: Shared, workspace?: string) {
    const schema = shared?.schema ?? validateSchema(config.schema);
    super(
      shared ?? { connection: new Connection(config, schema), schema, config, closed: false },
      shared ? workspace : (config.workspace ?? DEFAULTS.workspace),
    );
  }

  get schema(): string {
    return this.state.schema;
  }

  /** The pool this backend queries through (shared by all workspaces of this backend). */
  get pool(): pg.Pool {
    return this.state.connection.pool;
  }

  /**
   * Checks the server (PostgreSQL 14+, UTF-8) and applies pending migrations unless
   * `{ migrate: false }`, in which case it only verifies that the schema is up to date.
   * Operations call it on first use, so calling it explicitly is optional but surfaces
   * connection problems early.
   */
  initialize(options: InitializeOptions = {}): Promise<void> {
    const { connection, schema, config } = this.state;
    return this.initializeOnce(() => openSchema(connection.pool, schema, this.workspace, config, options));
  }

  withWorkspace(name: string): PostgresBackend {
    return new PostgresBackend(this.state.config, this.state, name);
  }

  /** Ends the pool if this backend created it (never a pool passed in). */
  protected release(): Promise<void> {
    return this.state.connection.close();
  }

  protected get maxFileBytes(): number {
    return this.state.config.maxFileBytes ?? DEFAULTS.maxFileBytes;
  }

  protected get timeoutMs(): number {
    return this.state.config.statementTimeoutMs ?? DEFAULTS.timeoutMs;
  }

  /**
   * Subscribe to this workspace's changes (write, edit, upload, delete — one per file), in id
   * order, exactly once, resuming from `since`; see watch.ts. Close the subscription when done.
   */
  async watch(options: WatchOptions = {}): Promise<Subscription> {
    await this.ready();
    const { connection, schema } = this.state;
    // The listener needs a connection of its own, with the same settings as the pool's.
    const listener = connection.clientConfig();
    return watchChanges({ pool: connection.pool, schema, listener, workspace: this.workspace }, options);
  }

  /**
   * Retention of the change log (all workspaces of the schema): drop changes older than
   * `olderThanMs` and/or all but the newest `keepPerWorkspace` of each workspace. A watcher whose
   * cursor falls below what was dropped gets a ResyncRequiredError. Returns how many were dropped.
   */
  async pruneChanges(options: { olderThanMs?: number; keepPerWorkspace?: number }): Promise<number> {
    const olderThan =
      options.olderThanMs === undefined ? null : `${Math.max(0, Math.floor(options.olderThanMs))} milliseconds`;
    const [row] = await this.#query(sql.pruneChanges, {
      olderThan,
      keepPerWorkspace: options.keepPerWorkspace ?? null,
    });
    return Number(row.pruned);
  }

  // --- file history and checkpoints (history.ts; the contract: src/core/history.ts) ------------

  readonly #history: history.HistoryContext = {
    workspace: this.workspace,
    query: (statement, params) => this.#query(statement, params),
    failure: (operation, e) => this.failure(operation, e),
  };

  history(path: string): Promise<HistoryResult> {
    return history.fileHistory(this.#history, path);
  }
  readVersion(path: string, version: number, offset?: number, limit?: number): Promise<ReadResult> {
    return history.readVersion(this.#history, path, version, offset, limit);
  }
  restore(path: string, version: number, options?: WriteOptions): Promise<WriteResult & { version?: number }> {
    return history.restore(this.#history, path, version, options);
  }
  checkpoint(options?: { label?: string; tag?: string }): Promise<Checkpoint> {
    return history.checkpoint(this.#history, options);
  }
  checkpoints(): Promise<Checkpoint[]> {
    return history.checkpoints(this.#history);
  }
  deleteCheckpoint(id: number): Promise<boolean> {
    return history.deleteCheckpoint(this.#history, id);
  }
  rewind(checkpoint: number, options?: RewindOptions): Promise<RewindResult> {
    return history.rewind(this.#history, checkpoint, options);
  }
  diff(from: number, to?: number | null, options?: DiffOptions): Promise<PathChange[]> {
    return history.diff(this.#history, from, to ?? null, options);
  }
  /** Applies the retention to this workspace (or every one): the schema owner's job, like pruneChanges. */
  pruneHistory(options: { allWorkspaces?: boolean } = {}): Promise<{ versions: number; blobs: number }> {
    return history.pruneHistory(this.#history, options.allWorkspaces === true);
  }
  historySettings(): Promise<HistorySettings> {
    return history.historySettings(this.#history);
  }
  /**
   * History on/off and retention for this workspace, or with `{ schemaDefault: true }` for every
   * workspace without its own (the schema owner's). Turning it off drops the history kept.
   */
  setHistory(
    settings: Partial<HistorySettings>,
    options: { schemaDefault?: boolean } = {},
  ): Promise<{ versions: number; checkpoints: number; blobs: number }> {
    return history.setHistory(this.#history, options.schemaDefault ? "" : this.workspace, settings);
  }

  /** One round trip, once open and initialized (a read-only statement may be retried: connection.ts). */
  async #query<P extends object, R>(statement: Statement<P, R>, params: P): Promise<R[]> {
    await this.ready();
    return this.state.connection.run(statement, params);
  }

  protected checkVersion(ifVersion: unknown): number | null {
    if (ifVersion === undefined || ifVersion === null) return null;
    if (typeof ifVersion !== "number" || !Number.isSafeInteger(ifVersion) || ifVersion < 0) {
      throw new InputError(errors.invalidIfVersion(ifVersion, "a non-negative integer"));
    }
    return ifVersion;
  }

  protected storageFailure(operation: string, e: unknown): string {
    // Row-level security refused the row (a workspace not granted to this role), or a privilege is missing.
    if (sqlstateOf(e) === SQLSTATE.insufficientPrivilege) {
      return errors.permissionDenied(operation, this.workspace, (e as Error).message);
    }
    return errors.storage(operation, (e as Error)?.message ?? String(e));
  }

  protected async listDirectory(dir: string): Promise<FileInfo[]> {
    const rows = await this.#query(sql.ls, { workspace: this.workspace, dir });
    return rows.map((r) => ({
      path: r.path,
      is_dir: r.is_dir,
      size: Number(r.size),
      modified_at: r.is_dir ? "" : r.modified_at.toISOString(),
    }));
  }

  protected async readWindow(
    path: string,
    _display: string,
    window: { offset: number; limit: number },
  ): Promise<FileWindow | null> {
    const offset = Math.min(window.offset, INT4_MAX);
    const [row] = await this.#query(sql.read, { workspace: this.workspace, path, offset, limit: window.limit });
    if (!row) return null;
    if (row.bytes) return { mimeType: row.mime_type, bytes: row.bytes };
    const text = { text: row.window_text, lines: row.window_lines };
    return { mimeType: row.mime_type, totalLines: row.total_lines, window: text };
  }

  protected async readData(path: string): Promise<FileData | null> {
    const [row] = await this.#query(sql.readRaw, { workspace: this.workspace, path });
    if (!row) return null;
    return {
      content: row.bytes ? toBytes(row.bytes) : row.content,
      mimeType: row.mime_type,
      created_at: row.created_at.toISOString(),
      modified_at: row.modified_at.toISOString(),
    };
  }

  protected async statFile(path: string): Promise<FileStat<number> | null> {
    const [row] = await this.#query(sql.stat, { workspace: this.workspace, path });
    if (!row) return null;
    return {
      path,
      mimeType: row.mime_type,
      isBinary: row.is_binary,
      size: Number(row.size),
      lines: row.line_count,
      version: Number(row.version),
      created_at: row.created_at.toISOString(),
      modified_at: row.modified_at.toISOString(),
    };
  }

  protected async writeFile(
    path: string,
    _display: string,
    body: FileBody,
    ifVersion: number | null,
  ): Promise<WriteOutcome<number>> {
    try {
      const params = { workspace: this.workspace, path, text: body.text, bytes: body.bytes, mimeType: body.mimeType };
      const [row] = await this.#query(sql.write, { ...params, ifVersion });
      const version = Number(row.version);
      if (row.status === "version_mismatch") return { status: "version_mismatch", current: version };
      if (row.status === "parent_is_file") return { status: "parent_is_file", file: row.conflict };
      if (row.status === "is_directory") return { status: "is_directory" };
      return { status: "ok", version };
    } catch (e) {
      // The same rule, enforced at commit against a transaction that raced this one.
      const code = sqlstateOf(e);
      if (code === SQLSTATE.parentIsFile)
        return { status: "parent_is_file", file: (e as pg.DatabaseError).detail ?? "" };
      if (code === SQLSTATE.isDirectory) return { status: "is_directory" };
      throw e;
    }
  }

  protected async editFile(
    path: string,
    _display: string,
    edit: EditRequest,
    ifVersion: number | null,
  ): Promise<EditOutcome<number>> {
    const [{ status, occurrences, version }] = await this.#query(sql.edit, {
      workspace: this.workspace,
      path,
      ...edit,
      ifVersion,
      maxBytes: this.maxFileBytes,
    });
    switch (status) {
      case "ok":
        return { status, occurrences, version: Number(version) };
      case "version_mismatch":
        return { status, current: Number(version) };
      case "too_large":
        return { status, size: Number(version) };
      default:
        return { status, occurrences };
    }
  }

  /** Recursive and atomic: one statement locks the subtree in path order and deletes it. */
  protected async deleteTree(path: string): Promise<boolean> {
    const [row] = await this.#query(sql.deleteTree, { workspace: this.workspace, path });
    return Number(row.deleted) > 0;
  }

  /**
   * A case-insensitive literal, or a regular expression of the language of src/regex/ translated to
   * PostgreSQL ARE (constructs ARE would read differently are refused, never approximated).
   */
  protected compileMatcher(pattern: string, regex: boolean, ignoreCase: boolean): SqlMatcher {
    if (!regex) return { pattern, regex: false, ignoreCase, chunkPattern: null };
    const translated = translateRegex(pattern, ignoreCase);
    return { pattern: translated.source, regex: true, ignoreCase: false, chunkPattern: translated.chunkSource };
  }

  /**
   * grep runs fs_grep; search runs fs_search in its own transaction under SET LOCAL
   * statement_timeout (the budget). The trigram index prefilters chunks either way.
   */
  protected async findLines({
    operation,
    matcher,
    scope,
    glob,
    limit,
    timeoutMs,
  }: LineQuery<SqlMatcher>): Promise<GrepMatch[]> {
    const where = {
      workspace: this.workspace,
      path: scope.path,
      allowExact: !scope.trailingSlash,
      glob: glob?.pattern ?? null,
      globRegex: glob?.regex ?? null,
      globBasename: glob ? matchesBasename(glob.pattern) : false,
      limit,
    };
    try {
      if (operation === "grep") return await this.#query(sql.grep, { ...where, pattern: matcher.pattern });
      await this.ready();
      return await this.state.connection.runWithTimeout(timeoutMs, sql.search, { ...where, ...matcher });
    } catch (e) {
      const code = sqlstateOf(e);
      if (code === SQLSTATE.queryCanceled) throw new MatchTimeoutError(timeoutMs);
      if (code === SQLSTATE.invalidRegex && matcher.regex) {
        throw new RegexError(matcher.pattern, `PostgreSQL refused it: ${(e as Error).message}`);
      }
      if (code === SQLSTATE.invalidRegex && glob) throw refusedGlob(glob, e);
      throw e;
    }
  }

  protected async globFiles(compiled: CompiledGlob, scope: NormalizedPath): Promise<FileInfo[]> {
    try {
      const rows = await this.#query(sql.glob, {
        workspace: this.workspace,
        path: scope.path,
        allowExact: !scope.trailingSlash,
        base: compiled.base,
        pattern: compiled.pattern,
        regex: compiled.regex,
      });
      return rows.map((r) => ({
        path: r.path,
        is_dir: false,
        size: Number(r.size),
        modified_at: r.modified_at.toISOString(),
      }));
    } catch (e) {
      if (sqlstateOf(e) === SQLSTATE.invalidRegex) throw refusedGlob(compiled, e);
      throw e;
    }
  }

  /**
   * One statement for the whole batch. Returns the per-file error of each path it refused: under
   * a file, or a directory ("invalid_path" / "is_directory"), or every path when row-level
   * security refused the batch. A batch that lost a race on the file/directory rule at commit
   * wrote nothing; it is sent once more, and the conflicting paths are then refused up front.
   */
  protected async uploadBatch(batch: Map<string, FileBody>): Promise<Map<string, FileError>> {
    const paths = [...batch.keys()];
    const bodies = [...batch.values()];
    const values = {
      workspace: this.workspace,
      paths,
      texts: bodies.map((b) => b.text),
      bytes: bodies.map((b) => b.bytes),
      mimeTypes: bodies.map((b) => b.mimeType),
    };
    for (let attempt = 1; ; attempt++) {
      try {
        const rows = await this.#query(sql.upload, values);
        return new Map(rows.map((r) => [r.path, r.status === "is_directory" ? "is_directory" : "invalid_path"]));
      } catch (e) {
        const code = sqlstateOf(e);
        // Row-level security refused the batch (one statement: nothing was written).
        if (code === SQLSTATE.insufficientPrivilege) return new Map(paths.map((p) => [p, "permission_denied"]));
        if ((code === SQLSTATE.parentIsFile || code === SQLSTATE.isDirectory) && attempt < 3) continue;
        throw e;
      }
    }
  }

  /** One statement for the whole batch. */
  protected async downloadBatch(paths: string[]): Promise<Array<Buffer | "is_directory" | "file_not_found">> {
    const found: Array<Buffer | "is_directory" | "file_not_found"> = paths.map(() => "file_not_found");
    for (const row of await this.#query(sql.download, { workspace: this.workspace, paths })) {
      const i = Number(row.ord) - 1;
      if (row.bytes) found[i] = row.bytes;
      else if (row.content !== null) found[i] = Buffer.from(row.content, "utf8");
      else found[i] = row.is_dir ? "is_directory" : "file_not_found";
    }
    return found;
  }
}

/** A glob whose compiled regular expression PostgreSQL refused (SQLSTATE 2201B). */
function refusedGlob(glob: CompiledGlob, e: unknown): GlobError {
  return new GlobError(glob.pattern, `PostgreSQL rejected its compiled form: ${(e as Error).message}`);
}
