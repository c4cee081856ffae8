/**
 * PostgresBackend: deepagents' BackendProtocolV2 where every call is one round trip to one SQL
 * function installed by our migrations (see migrations/ and sql/). TypeScript here only
 * validates input (paths.ts, content.ts), shapes results and maps statuses to protocol strings.
 */
import pg from "pg";
import type {
  BackendProtocolV2,
  DeleteResult,
  EditResult,
  FileDownloadResponse,
  FileInfo,
  FileUploadResponse,
  GlobResult,
  GrepMatch,
  GrepResult,
  LsResult,
  ReadRawResult,
  ReadResult,
  WriteResult,
} from "../protocol.js";
import { SQLSTATE, sqlstateOf } from "./sqlstate.js";
import {
  editFailure,
  errors,
  grepLimit,
  INT4_MAX,
  readPagination,
  textReadResult,
  type SearchOptions,
  type SearchResult,
  type StatResult,
} from "../protocol.js";
import { RegexError, translateRegex, type TranslatedRegex } from "../regex.js";
import {
  batchClashes,
  dirPrefix,
  fileErrorCode,
  normalizeFilePath,
  normalizePath,
  validateWorkspace,
} from "../paths.js";
import { compileGlob, matchesBasename } from "../glob.js";
import {
  bodyForUpload,
  bodyForWrite,
  checkEditStrings,
  ContentError,
  isStorableText,
  searchBudgetMs,
  toBytes,
  type FileBody,
} from "../content.js";
import { inputFailure } from "../failures.js";
import {
  clientConfig,
  DEFAULT_MAX_FILE_BYTES,
  DEFAULT_WORKSPACE,
  poolConfig,
  validateSchema,
  type PostgresBackendConfig,
} from "./config.js";
import { migrate } from "./migrate.js";
import { migrationStatus } from "./admin.js";
import { statementsFor, type Statements } from "./statements.js";
import { watchChanges, type Subscription, type WatchOptions } from "./watch.js";

/** Optimistic concurrency for write/edit: the version the caller last saw (0 = must not exist). */
export interface WriteOptions {
  ifVersion?: number;
}

export interface InitializeOptions {
  /** Apply pending migrations (default true); false only checks the schema is up to date. */
  migrate?: boolean;
}

/** State shared by a backend and every withWorkspace() view of it. */
interface Shared {
  readonly pool: pg.Pool;
  readonly ownsPool: boolean;
  readonly schema: string;
  readonly sql: Statements;
  readonly maxFileBytes: number;
  readonly config: PostgresBackendConfig;
  initialized?: Promise<void>;
  closed: boolean;
}

const MIN_SERVER_VERSION = 140000;
const READ_ONLY = { retry: true };

/** The connection died under the query (as opposed to the query failing on a live one). */
function isConnectionLost(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  return (
    (typeof err?.code === "string" &&
      (err.code.startsWith("57P") || err.code.startsWith("08") || err.code === "ECONNRESET" || err.code === "EPIPE")) ||
    /Connection terminated|connection.*(closed|ended)|Client has encountered a connection error/i.test(
      err?.message ?? "",
    )
  );
}

export class PostgresBackend implements BackendProtocolV2 {
  readonly workspace: string;
  readonly #shared: Shared;

  constructor(config?: PostgresBackendConfig);
  /** @internal withWorkspace() */
  constructor(config: PostgresBackendConfig, shared: Shared, workspace: string);
  constructor(config: PostgresBackendConfig = {}, shared?: Shared, workspace?: string) {
    if (shared) {
      this.#shared = shared;
      this.workspace = validateWorkspace(workspace);
      return;
    }
    const schema = validateSchema(config.schema);
    this.workspace = validateWorkspace(config.workspace ?? DEFAULT_WORKSPACE);
    const pool = config.pool ?? new pg.Pool(poolConfig(config));
    if (!config.pool) {
      // An idle connection killed by the server must not crash the process; the pool drops it.
      pool.on("error", () => {});
    }
    this.#shared = {
      pool,
      ownsPool: !config.pool,
      schema,
      sql: statementsFor(schema),
      maxFileBytes: config.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES,
      config,
      closed: false,
    };
  }

  get schema(): string {
    return this.#shared.schema;
  }

  /** The pool this backend queries through (shared by all workspaces of this backend). */
  get pool(): pg.Pool {
    return this.#shared.pool;
  }

  /**
   * Checks the server (PostgreSQL 14+, UTF-8) and applies pending migrations unless
   * `{ migrate: false }`, in which case it only verifies that the schema is up to date.
   * Operations call it on first use, so calling it explicitly is optional but surfaces
   * connection problems early.
   */
  initialize(options: InitializeOptions = {}): Promise<void> {
    const shared = this.#shared;
    shared.initialized ??= this.#initialize(options).catch((e) => {
      shared.initialized = undefined;
      throw e;
    });
    return shared.initialized;
  }

  async #initialize({ migrate: shouldMigrate = true }: InitializeOptions): Promise<void> {
    const { pool, schema, config } = this.#shared;
    if (config.rowLevelSecurity) shouldMigrate = false; // a restricted role cannot migrate
    const { rows } = await pool.query(this.#shared.sql.server_info);
    if (rows[0].version < MIN_SERVER_VERSION) {
      throw new Error(`deepagents-backends needs PostgreSQL 14 or newer (server is ${rows[0].version})`);
    }
    if (rows[0].encoding !== "UTF8") {
      throw new Error(`deepagents-backends needs a UTF8 database (server_encoding is ${rows[0].encoding})`);
    }
    if (shouldMigrate) {
      await migrate({ ...config, pool, schema, direction: "up" });
      return;
    }
    const { pending: missing } = await migrationStatus(pool, schema).catch((e) => {
      if (config.rowLevelSecurity && sqlstateOf(e) === SQLSTATE.insufficientPrivilege) {
        throw new Error(
          `rowLevelSecurity: this role cannot read schema "${schema}" (${(e as Error).message}); grant it a workspace first (grantWorkspace() as the schema owner)`,
        );
      }
      throw e;
    });
    if (missing.length > 0) {
      throw new Error(
        `Schema "${schema}" is not up to date (missing migrations: ${missing.join(", ")}); ` +
          "run `deepagents-backends migrate` or migrate() first",
      );
    }
    if (config.rowLevelSecurity) await this.#checkRowLevelSecurity();
  }

  /**
   * rowLevelSecurity: refuse to run unrestricted (the owner, a superuser or a BYPASSRLS role would
   * see every workspace) or in a workspace the role was not granted.
   */
  async #checkRowLevelSecurity(): Promise<void> {
    const { pool, schema, sql } = this.#shared;
    const { rows } = await pool.query(sql.rls_check, [this.workspace]);
    const { role, active, granted } = rows[0];
    if (!active) {
      throw new Error(
        `rowLevelSecurity is on, but row-level security does not apply to role "${role}" on "${schema}".files ` +
          "(it owns the table, is a superuser or has BYPASSRLS): connect as a role restricted with grantWorkspace()",
      );
    }
    if (!granted) {
      throw new Error(
        `Workspace ${JSON.stringify(this.workspace)} is not granted to role "${role}": grantWorkspace(pool, "${schema}", "${role}", workspace) as the schema owner`,
      );
    }
  }

  /** A view of another workspace over the same pool and schema. */
  withWorkspace(name: string): PostgresBackend {
    return new PostgresBackend(this.#shared.config, this.#shared, name);
  }

  /** Ends the pool if this backend created it (never a pool passed in). Idempotent. */
  async close(): Promise<void> {
    const shared = this.#shared;
    if (shared.closed) return;
    shared.closed = true;
    if (shared.ownsPool) await shared.pool.end();
  }

  /**
   * Subscribe to this workspace's changes (write, edit, upload, delete — one per file), in id
   * order, exactly once, resuming from `since`; see watch.ts. Close the subscription when done.
   */
  async watch(options: WatchOptions = {}): Promise<Subscription> {
    await this.initialize();
    const { config, pool, sql } = this.#shared;
    // The listener needs a connection of its own, with the same settings as the pool's.
    const connection: pg.ClientConfig = config.pool
      ? { ...(pool as unknown as { options: pg.ClientConfig }).options }
      : clientConfig(config);
    return watchChanges(
      { pool, connection, workspace: this.workspace, changesSql: sql.changes, headSql: sql.changes_head },
      options,
    );
  }

  /**
   * Retention of the change log (all workspaces of the schema): drop changes older than
   * `olderThanMs` and/or all but the newest `keepPerWorkspace` of each workspace. A watcher whose
   * cursor falls below what was dropped gets a ResyncRequiredError. Returns how many were dropped.
   */
  async pruneChanges(options: { olderThanMs?: number; keepPerWorkspace?: number }): Promise<number> {
    const age =
      options.olderThanMs === undefined ? null : `${Math.max(0, Math.floor(options.olderThanMs))} milliseconds`;
    const { rows } = await this.#query(this.#shared.sql.prune_changes, [age, options.keepPerWorkspace ?? null]);
    return Number(rows[0].pruned);
  }

  /**
   * One round trip. A read-only statement (`retry`) is retried once on a connection that turned
   * out to be dead (killed by the server, dropped by the network): nothing it did can have
   * taken effect. Writes are never retried here: a lost reply could hide a committed change.
   */
  async #query(text: string, values: unknown[], { retry = false } = {}): Promise<pg.QueryResult> {
    if (this.#shared.closed) throw new Error("backend is closed");
    await this.initialize();
    try {
      return await this.#shared.pool.query(text, values);
    } catch (e) {
      if (!retry || !isConnectionLost(e)) throw e;
      return this.#shared.pool.query(text, values);
    }
  }

  /**
   * Expected failures become the protocol's `{ error }`; anything else is a storage failure.
   * `glob` names the glob in play, for a compiled pattern PostgreSQL refused (SQLSTATE 2201B).
   */
  #failure(operation: string, e: unknown, glob?: string | null): string {
    const expected = inputFailure(e);
    if (expected) return expected;
    // Row-level security refused the row (a workspace not granted to this role), or a privilege is missing.
    if (sqlstateOf(e) === SQLSTATE.insufficientPrivilege) {
      return errors.permissionDenied(operation, this.workspace, (e as Error).message);
    }
    if (glob && sqlstateOf(e) === SQLSTATE.invalidRegex) {
      return errors.invalidGlob(glob, `PostgreSQL rejected its compiled form: ${(e as Error).message}`);
    }
    return errors.storage(operation, (e as Error)?.message ?? String(e));
  }

  async ls(path: string): Promise<LsResult> {
    try {
      const dir = dirPrefix(normalizePath(path, { emptyIsRoot: true }).path);
      const { rows } = await this.#query(this.#shared.sql.ls, [this.workspace, dir], READ_ONLY);
      const files: FileInfo[] = rows.map((r) => ({
        path: r.path,
        is_dir: r.is_dir,
        size: Number(r.size),
        modified_at: r.is_dir ? "" : r.modified_at.toISOString(),
      }));
      // deepagents orders ls output with localeCompare; keep its order exactly.
      files.sort((a, b) => a.path.localeCompare(b.path));
      return { files };
    } catch (e) {
      return { error: this.#failure("ls", e) };
    }
  }

  async read(filePath: string, offset: number = 0, limit: number = 500): Promise<ReadResult> {
    try {
      const path = normalizeFilePath(filePath);
      const window = readPagination(offset, limit);
      const { rows } = await this.#query(
        this.#shared.sql.read,
        [this.workspace, path, Math.min(window.offset, INT4_MAX), window.limit],
        READ_ONLY,
      );
      if (rows.length === 0) return { error: errors.readNotFound(filePath) };
      const row = rows[0];
      if (row.bytes) return { content: toBytes(row.bytes), mimeType: row.mime_type };
      return textReadResult(row.mime_type, row.total_lines, window.offset, window.limit, {
        text: row.window_text,
        lines: row.window_lines,
      });
    } catch (e) {
      return { error: this.#failure("read", e) };
    }
  }

  async readRaw(filePath: string): Promise<ReadRawResult> {
    try {
      const path = normalizeFilePath(filePath);
      const { rows } = await this.#query(this.#shared.sql.read_raw, [this.workspace, path], READ_ONLY);
      if (rows.length === 0) return { error: errors.readNotFound(filePath) };
      const row = rows[0];
      return {
        data: {
          content: row.bytes ? toBytes(row.bytes) : row.content,
          mimeType: row.mime_type,
          created_at: row.created_at.toISOString(),
          modified_at: row.modified_at.toISOString(),
        },
      };
    } catch (e) {
      return { error: this.#failure("readRaw", e) };
    }
  }

  /** Metadata of one file without its content (an extension beyond the protocol). */
  async stat(filePath: string): Promise<StatResult> {
    try {
      const path = normalizeFilePath(filePath);
      const { rows } = await this.#query(this.#shared.sql.stat, [this.workspace, path], READ_ONLY);
      if (rows.length === 0) return { error: errors.readNotFound(filePath) };
      const row = rows[0];
      return {
        data: {
          path,
          mimeType: row.mime_type,
          isBinary: row.is_binary,
          size: Number(row.size),
          lines: row.line_count,
          version: Number(row.version),
          created_at: row.created_at.toISOString(),
          modified_at: row.modified_at.toISOString(),
        },
      };
    } catch (e) {
      return { error: this.#failure("stat", e) };
    }
  }

  /**
   * Create or overwrite. For a binary file type (by extension) the content is base64. With
   * `{ ifVersion }` it writes only if the file is at that version (0: only if it does not exist).
   */
  async write(
    filePath: string,
    content: string,
    options: WriteOptions = {},
  ): Promise<WriteResult & { version?: number }> {
    try {
      const path = normalizeFilePath(filePath);
      const ifVersion = checkIfVersion(options.ifVersion);
      const body = bodyForWrite(filePath, path, content, this.#shared.maxFileBytes);
      const { rows } = await this.#query(this.#shared.sql.write, [
        this.workspace,
        path,
        body.text,
        body.bytes,
        body.mimeType,
        ifVersion,
      ]);
      const { status, version, conflict } = rows[0];
      if (status === "version_mismatch")
        return { error: errors.versionMismatch(filePath, ifVersion!, Number(version)) };
      if (status === "parent_is_file") return { error: errors.parentIsFile(filePath, conflict) };
      if (status === "is_directory") return { error: errors.isDirectory(filePath) };
      return { path: filePath, filesUpdate: null, version: Number(version) };
    } catch (e) {
      // The same rule, enforced at commit against a transaction that raced this one.
      const code = sqlstateOf(e);
      if (code === SQLSTATE.parentIsFile)
        return { error: errors.parentIsFile(filePath, (e as pg.DatabaseError).detail ?? "") };
      if (code === SQLSTATE.isDirectory) return { error: errors.isDirectory(filePath) };
      return { error: this.#failure("write", e) };
    }
  }

  async edit(
    filePath: string,
    oldString: string,
    newString: string,
    replaceAll: boolean = false,
    options: WriteOptions = {},
  ): Promise<EditResult & { version?: number }> {
    try {
      const path = normalizeFilePath(filePath);
      const ifVersion = checkIfVersion(options.ifVersion);
      checkEditStrings(filePath, oldString, newString);
      const { rows } = await this.#query(this.#shared.sql.edit, [
        this.workspace,
        path,
        oldString,
        newString,
        replaceAll === true,
        ifVersion,
        this.#shared.maxFileBytes,
      ]);
      const { status, occurrences, version } = rows[0];
      switch (status) {
        case "ok":
          return { path: filePath, filesUpdate: null, occurrences, version: Number(version) };
        case "version_mismatch":
          return { error: errors.versionMismatch(filePath, ifVersion!, Number(version)) };
        case "too_large":
          return { error: errors.tooLarge(filePath, Number(version), this.#shared.maxFileBytes) };
        default:
          return { error: editFailure(status, filePath, oldString, occurrences) };
      }
    } catch (e) {
      return { error: this.#failure("edit", e) };
    }
  }

  /** Recursive and atomic: the path and everything under it. Glob characters are literal. */
  async delete(filePath: string): Promise<DeleteResult> {
    try {
      const { path } = normalizePath(filePath);
      const { rows } = await this.#query(this.#shared.sql.delete, [this.workspace, path]);
      if (Number(rows[0].deleted) === 0) return { error: errors.notFound(filePath) };
      return { path: filePath, filesUpdate: null };
    } catch (e) {
      return { error: this.#failure("delete", e) };
    }
  }

  /** Literal search, line by line, server-side. */
  async grep(
    pattern: string,
    path: string | null = "/",
    glob: string | null = null,
    maxCount: number | null = null,
  ): Promise<GrepResult> {
    try {
      if (typeof pattern !== "string") throw new ContentError("Error: grep pattern must be a string");
      const scope = normalizePath(path ?? "/", { emptyIsRoot: true });
      const filter = glob ? compileGlob(glob) : null;
      const cap = grepLimit(maxCount);
      // Stored text is valid UTF-8 without NUL: such a pattern cannot occur in it.
      if (!isStorableText(pattern)) return { matches: [] };
      const { rows } = await this.#query(
        this.#shared.sql.grep,
        [
          this.workspace,
          scope.path,
          !scope.trailingSlash,
          filter?.pattern ?? null,
          filter?.regex ?? null,
          filter ? matchesBasename(filter.pattern) : false,
          pattern,
          cap === null ? null : cap + 1,
        ],
        READ_ONLY,
      );
      const matches: GrepMatch[] = rows.map((r) => ({ path: r.path, line: r.line, text: r.text }));
      if (cap !== null && matches.length > cap) return { matches: matches.slice(0, cap), truncated: true };
      return { matches };
    } catch (e) {
      return { error: this.#failure("grep", e, glob) };
    }
  }

  /**
   * grep beyond the protocol, in SQL: a case-insensitive literal, or a regular expression of
   * regex.ts's language (JavaScript's, `u` flag) translated to PostgreSQL ARE (constructs ARE
   * would read differently are refused, never approximated). The trigram index prefilters chunks; the cost
   * is bounded by `SET LOCAL statement_timeout` (`timeoutMs`, default `statementTimeoutMs`).
   */
  async search(options: SearchOptions & { timeoutMs?: number }): Promise<SearchResult> {
    const { pattern } = options;
    let timeoutMs = 0;
    try {
      if (typeof pattern !== "string") throw new ContentError("Error: search pattern must be a string");
      const ignoreCase = options.ignoreCase === true;
      let regex: TranslatedRegex | null = null;
      if (options.regex) {
        try {
          regex = translateRegex(pattern, ignoreCase);
        } catch (e) {
          if (e instanceof RegexError) return { error: errors.invalidRegex(pattern, e.reason) };
          throw e;
        }
      }
      const scope = normalizePath(options.path ?? "/", { emptyIsRoot: true });
      const glob = options.glob ? compileGlob(options.glob) : null;
      const cap = grepLimit(options.maxCount);
      // A literal that is not storable text cannot occur in stored text (a translated regex is
      // always storable: regex.ts escapes what is not).
      if (!regex && !isStorableText(pattern)) return { matches: [] };
      timeoutMs = searchBudgetMs(options.timeoutMs, this.#shared.config.statementTimeoutMs ?? 30_000);
      // A regex carries its own case rules (regex.ts) and runs case-sensitively; its chunk
      // prefilter is the relaxed pattern, the exact one tests each line.
      const rows = await this.#withTimeout(timeoutMs, this.#shared.sql.search, [
        this.workspace,
        scope.path,
        !scope.trailingSlash,
        glob?.pattern ?? null,
        glob?.regex ?? null,
        glob ? matchesBasename(glob.pattern) : false,
        regex ? regex.source : pattern,
        regex !== null,
        regex ? false : ignoreCase,
        cap === null ? null : cap + 1,
        regex ? regex.chunkSource : null,
      ]);
      const matches: GrepMatch[] = rows.map((r) => ({ path: r.path, line: r.line, text: r.text }));
      if (cap !== null && matches.length > cap) return { matches: matches.slice(0, cap), truncated: true };
      return { matches };
    } catch (e) {
      const code = sqlstateOf(e);
      if (code === SQLSTATE.queryCanceled) return { error: errors.searchTimeout(timeoutMs) };
      if (code === SQLSTATE.invalidRegex && options.regex)
        return { error: errors.invalidRegex(pattern, `PostgreSQL refused it: ${(e as Error).message}`) };
      return { error: this.#failure("search", e, options.glob) };
    }
  }

  /** One statement in its own transaction under SET LOCAL statement_timeout. */
  async #withTimeout(timeoutMs: number, text: string, values: unknown[]): Promise<pg.QueryResultRow[]> {
    if (this.#shared.closed) throw new Error("backend is closed");
    await this.initialize();
    const client = await this.#shared.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query(`BEGIN; SET LOCAL statement_timeout = ${timeoutMs}`);
      const { rows } = await client.query(text, values);
      await client.query("COMMIT");
      return rows;
    } catch (e) {
      await client.query("ROLLBACK").catch((rollback) => (broken = rollback));
      throw e;
    } finally {
      client.release(broken); // a connection that cannot even roll back is discarded
    }
  }

  /**
   * Files matching a glob under `path`, newest first. An absolute pattern ("/src/**\/*.ts") is
   * matched from the root whatever `path` is.
   */
  async glob(pattern: string, path: string = "/"): Promise<GlobResult> {
    try {
      const absolute = typeof pattern === "string" && pattern.startsWith("/");
      const compiled = compileGlob(absolute ? pattern.replace(/^\/+/, "") : pattern);
      const scope = absolute ? { path: "/", trailingSlash: true } : normalizePath(path, { emptyIsRoot: true });
      const { rows } = await this.#query(
        this.#shared.sql.glob,
        [this.workspace, scope.path, !scope.trailingSlash, compiled.base, compiled.pattern, compiled.regex],
        READ_ONLY,
      );
      const files: FileInfo[] = rows.map((r) => ({
        path: r.path,
        is_dir: false,
        size: Number(r.size),
        modified_at: r.modified_at.toISOString(),
      }));
      return { files };
    } catch (e) {
      return { error: this.#failure("glob", e, pattern) };
    }
  }

  /**
   * Byte-exact batch upload in one statement. Text types are stored as text when the bytes are
   * valid UTF-8, otherwise as binary. Results are per file, in input order.
   */
  async uploadFiles(files: Array<[string, Uint8Array]>): Promise<FileUploadResponse[]> {
    const responses: FileUploadResponse[] = [];
    const stored: Array<string | null> = []; // the normalised path of each response, if valid
    const batch = new Map<string, FileBody>();
    for (const [input, bytes] of files) {
      try {
        const path = normalizeFilePath(input);
        batch.set(path, bodyForUpload(path, bytes, this.#shared.maxFileBytes)); // last one wins
        responses.push({ path: input, error: null });
        stored.push(path);
      } catch (e) {
        responses.push({ path: input, error: fileErrorCode(e) });
        stored.push(null);
      }
    }
    for (const [path, clash] of batchClashes(batch.keys())) {
      batch.delete(path);
      responses.forEach((r, i) => {
        if (stored[i] === path) r.error = clash.code;
      });
    }
    if (batch.size > 0) {
      const refused = await this.#upload(batch);
      responses.forEach((r, i) => {
        if (stored[i] !== null) r.error = refused.get(stored[i]) ?? r.error;
      });
    }
    return responses;
  }

  /**
   * One statement for the whole batch. Returns the per-file error of each path it refused: under
   * a file, or a directory ("invalid_path" / "is_directory"), or every path when row-level
   * security refused the batch. A batch that lost a race on the file/directory rule at commit
   * wrote nothing; it is sent once more, and the conflicting paths are then refused up front.
   */
  async #upload(batch: Map<string, FileBody>): Promise<Map<string, FileUploadResponse["error"]>> {
    const paths = [...batch.keys()];
    const bodies = [...batch.values()];
    const values = [
      this.workspace,
      paths,
      bodies.map((b) => b.text),
      bodies.map((b) => b.bytes),
      bodies.map((b) => b.mimeType),
    ];
    for (let attempt = 1; ; attempt++) {
      try {
        const { rows } = await this.#query(this.#shared.sql.upload, values);
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

  /** Byte-exact batch download in one statement; results in input order. */
  async downloadFiles(paths: string[]): Promise<FileDownloadResponse[]> {
    const responses: FileDownloadResponse[] = paths.map((path) => ({ path, content: null, error: null }));
    const lookups: { index: number; path: string }[] = [];
    paths.forEach((input, index) => {
      try {
        lookups.push({ index, path: normalizeFilePath(input) });
      } catch (e) {
        responses[index].error = fileErrorCode(e);
      }
    });
    if (lookups.length > 0) {
      const { rows } = await this.#query(
        this.#shared.sql.download,
        [this.workspace, lookups.map((l) => l.path)],
        READ_ONLY,
      );
      for (const row of rows) {
        const response = responses[lookups[Number(row.ord) - 1].index];
        if (row.bytes) response.content = toBytes(row.bytes);
        else if (row.content !== null) response.content = toBytes(Buffer.from(row.content, "utf8"));
        else response.error = row.is_dir ? "is_directory" : "file_not_found";
      }
    }
    return responses;
  }
}

function checkIfVersion(ifVersion: number | undefined): number | null {
  if (ifVersion === undefined || ifVersion === null) return null;
  if (!Number.isSafeInteger(ifVersion) || ifVersion < 0) {
    throw new ContentError(`Error: ifVersion must be a non-negative integer (got ${ifVersion})`);
  }
  return ifVersion;
}
