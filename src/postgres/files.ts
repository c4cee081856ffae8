/**
 * The protocol on SQL: each request BackendCore makes (list, read, write, edit, delete, grep,
 * glob, upload, download) mapped onto its typed statement (sql/queries.ts), each status onto an
 * outcome, each database error onto the protocol's words. PostgresBackend (./backend.ts) is this
 * plus what only PostgreSQL offers (initialize, views, the change feed, file history).
 * Connections, retries and timeouts live in connection.ts.
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
  type MkdirOutcome,
  type RelocateOutcome,
  type RelocateRequest,
  type WriteOutcome,
} from "../core/backend.js";
import { DEFAULTS } from "../core/defaults.js";
import type { BackendFeatures } from "../core/interface.js";
import { type CompiledGlob, GlobError, matchesBasename } from "../glob.js";
import { MAX_PATH_BYTES, type NormalizedPath } from "../paths.js";
import {
  clusterErrors,
  errors,
  type FileData,
  type FileInfo,
  type FileStat,
  type GrepMatch,
  INT4_MAX,
  InputError,
} from "../protocol.js";
import { RegexError, translateRegex } from "../regex/index.js";
import type { PostgresBackendConfig } from "./config.js";
import type { Partitions } from "./cluster/partitions.js";
import type { Connection, CursorReader, ReadSession } from "./connection.js";
import * as sql from "./sql/queries.js";
import { StreamTail } from "./stream-tail.js";
import type { Statement } from "./sql/statement.js";
import { isCancelled, movedAwayFromPartition, SQLSTATE, sqlstateOf } from "./sqlstate.js";

/** A read window as read.sql and read_version.sql take it (an offset past INT4 reads nothing). */
export function sqlWindow(window: { offset: number; limit: number }): { offset: number; limit: number } {
  return { offset: Math.min(window.offset, INT4_MAX), limit: window.limit };
}

/** A row of read.sql or read_version.sql as BackendCore's FileWindow. */
export function fileWindow(row: sql.WindowRow): FileWindow {
  if (row.bytes) return { mimeType: row.mime_type, bytes: row.bytes };
  return {
    mimeType: row.mime_type,
    totalLines: row.total_lines,
    window: { text: row.window_text, lines: row.window_lines },
  };
}

/** What every view (withWorkspace, withTag) of one backend shares. */
export interface Shared extends CoreState {
  readonly connection: Connection;
  /** The partitions, when `connection` is the PL/Proxy front of a cluster (cluster/partitions.ts). */
  readonly partitions: Partitions;
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

export abstract class PostgresFiles extends BackendCore<number, Shared, SqlMatcher> {
  readonly features: BackendFeatures = {
    kind: "postgres",
    versions: "counter",
    watch: true,
    serverSideSearch: true,
    atomicEdits: true,
  };

  /** The writer's tag history keeps with each version this instance writes (null: none). */
  readonly tag: string | null;

  protected constructor(shared: Shared, workspace: string, tag: string | null) {
    super(shared, workspace);
    this.tag = tag;
  }

  /** Ends the pool if this backend created it (never a pool passed in). */
  protected release(): Promise<void> {
    return Promise.all([this.state.connection.close(), this.state.partitions.close()]).then(() => {});
  }

  protected get maxFileBytes(): number {
    return this.state.config.maxFileBytes ?? DEFAULTS.maxFileBytes;
  }

  protected get timeoutMs(): number {
    return this.state.config.statementTimeoutMs ?? DEFAULTS.timeoutMs;
  }

  /** How a stream reads the second half of a big scope (config.streamSplit), or false. */
  get #streamSplit(): { minBytes: number; aheadBytes: number } | false {
    const split = this.state.config.streamSplit ?? {};
    if (split === false) return false;
    return {
      minBytes: split.minBytes ?? DEFAULTS.postgres.streamSplitBytes,
      aheadBytes: split.aheadBytes ?? DEFAULTS.postgres.streamAheadBytes,
    };
  }

  /**
   * One round trip, once open and initialized (a read-only statement may be retried:
   * connection.ts); a write of a tagged instance runs in a transaction that sets the tag.
   */
  protected async query<P extends object, R>(statement: Statement<P, R>, params: P): Promise<R[]> {
    await this.ready();
    if (this.tag !== null && !statement.readOnly) {
      return this.state.connection.runInTransaction({ tag: this.tag }, statement, params);
    }
    return this.state.connection.run(statement, params);
  }

  /**
   * Where a session of this workspace runs (a cursor, a LISTEN): this backend's database, or on a
   * cluster's front the partition holding the workspace (cluster/partitions.ts).
   */
  protected sessionConnection(): Promise<Connection> {
    const { connection, partitions } = this.state;
    return partitions.active ? partitions.of(this.workspace) : Promise.resolve(connection);
  }

  /**
   * A read session opened by `open` where the workspace's rows are (sessionConnection()). On a
   * cluster's front the partition is checked once the session's snapshot is taken: a split may
   * have moved the workspace after the front answered, and the old partition then reads nothing
   * of it. Moved (movedAwayFromPartition): the front is asked again, and the session opened there.
   */
  async #openWhereRead<T extends { session: ReadSession }>(
    open: (connection: Connection) => Promise<T>,
  ): Promise<{ connection: Connection; opened: T }> {
    for (let attempt = 1; ; attempt++) {
      const connection = await this.sessionConnection();
      let opened: T;
      try {
        opened = await open(connection);
      } catch (e) {
        // (A split's old partition revoked a restricted role's privileges there with its last grant.)
        if (!this.state.partitions.active || !movedAwayFromPartition(e) || attempt >= MOVED_ATTEMPTS) throw e;
        continue;
      }
      if (!this.state.partitions.active) return { connection, opened };
      try {
        await opened.session.run(sql.clusterReadsHere, { workspace: this.workspace });
        return { connection, opened };
      } catch (e) {
        await opened.session.close(); // (a failed statement closed it already: idempotent)
        if (sqlstateOf(e) === SQLSTATE.undefinedFunction)
          throw new Error(clusterErrors.partitionOutdated(this.state.schema));
        if (!movedAwayFromPartition(e) || attempt >= MOVED_ATTEMPTS) throw e;
      }
    }
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
    const rows = await this.query(sql.ls, { workspace: this.workspace, dir });
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
    const [row] = await this.query(sql.read, { workspace: this.workspace, path, ...sqlWindow(window) });
    return row ? fileWindow(row) : null;
  }

  protected async readData(path: string): Promise<FileData | null> {
    const [row] = await this.query(sql.readRaw, { workspace: this.workspace, path });
    if (!row) return null;
    return {
      content: row.bytes ? toBytes(row.bytes) : row.content,
      mimeType: row.mime_type,
      created_at: row.created_at.toISOString(),
      modified_at: row.modified_at.toISOString(),
    };
  }

  /** One statement: the file, else whether a directory is there (sql/stat.sql). */
  protected async statFile(path: string): Promise<FileStat<number> | "directory" | null> {
    const [row] = await this.query(sql.stat, { workspace: this.workspace, path });
    if (row.mime_type === null) return row.is_dir ? "directory" : null;
    // (a file's row: every column is set)
    return {
      path,
      mimeType: row.mime_type,
      isBinary: row.is_binary!,
      size: Number(row.size),
      lines: row.line_count!,
      version: Number(row.version),
      created_at: row.created_at!.toISOString(),
      modified_at: row.modified_at!.toISOString(),
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
      const [row] = await this.query(sql.write, { ...params, ifVersion });
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
    const [{ status, occurrences, version }] = await this.query(sql.edit, {
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
    const [row] = await this.query(sql.deleteTree, { workspace: this.workspace, path });
    return Number(row.deleted) > 0;
  }

  /** fs_mkdir: one statement; a file committed at the path meanwhile fails it at commit (DA002). */
  protected async makeDirectory(path: string, parents: boolean): Promise<MkdirOutcome> {
    try {
      const [row] = await this.query(sql.mkdir, { workspace: this.workspace, path, parents });
      switch (row.status) {
        case "created":
        case "exists":
        case "is_file":
          return { status: row.status };
        default:
          return { status: row.status, path: row.conflict };
      }
    } catch (e) {
      if (sqlstateOf(e) !== SQLSTATE.parentIsFile) throw e;
      const file = (e as pg.DatabaseError).detail ?? "";
      return file === path ? { status: "is_file" } : { status: "parent_is_file", path: file };
    }
  }

  /** One transaction (fs_move): locks both trees in path order, checks, then moves or copies. */
  protected async relocateTree(request: RelocateRequest): Promise<RelocateOutcome> {
    try {
      const [row] = await this.query(sql.move, {
        workspace: this.workspace,
        from: request.from,
        to: request.to,
        overwrite: request.overwrite,
        copy: request.operation === "copy",
        maxBytes: MAX_PATH_BYTES,
      });
      if (!row) throw new Error("fs_move answered no row (a null argument)");
      switch (row.status) {
        case "moved":
        case "copied":
          return { status: "ok", files: Number(row.files) };
        case "not_found":
          return { status: "not_found" };
        case "into_itself": // (BackendCore refuses these before asking)
          throw new InputError(errors.relocateOntoItself(request.operation, request.from, request.to));
        default:
          return { status: row.status, path: row.conflict };
      }
    } catch (e) {
      // The file/directory rule, enforced at commit against a transaction that raced this one.
      const code = sqlstateOf(e);
      if (code === SQLSTATE.parentIsFile)
        return { status: "parent_is_file", path: (e as pg.DatabaseError).detail ?? "" };
      if (code === SQLSTATE.isDirectory) return { status: "is_directory", path: (e as pg.DatabaseError).detail ?? "" };
      throw e;
    }
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
    const where = { ...lineScope(this.workspace, scope, glob), limit };
    try {
      if (operation === "grep") return await this.query(sql.grep, { ...where, pattern: matcher.pattern });
      await this.ready();
      return await this.state.connection.runInTransaction({ timeoutMs }, sql.search, { ...where, ...matcher });
    } catch (e) {
      throw searchError(e, matcher, glob, timeoutMs);
    }
  }

  /**
   * A cursor fs_search_open opened (0023: path order, or the trigram query for a sparse
   * pattern), read in batches — a small first one, so the first rows come early — on one pooled
   * connection for the stream's life, and, for a scope with enough text (config.streamSplit), its
   * second half read ahead on a second connection in the same snapshot (stream-tail.ts, 0025).
   * `timeoutMs` bounds the server's time over the open and every FETCH together, and the time
   * the stream waits for its second half (0: no limit); the time the consumer spends between
   * batches is not counted. The second half's read-ahead spends a budget of its own.
   */
  protected async *streamLines({
    matcher,
    scope,
    glob,
    timeoutMs,
  }: LineQuery<SqlMatcher>): AsyncGenerator<GrepMatch[]> {
    let head: CursorReader<GrepMatch> | undefined;
    let tail: StreamTail | undefined;
    // A budget of 0 is no limit, as statement_timeout = 0 is (statementTimeoutMs: 0).
    const limited = timeoutMs > 0;
    let spent = 0;
    const budget = () => (limited ? Math.max(1, timeoutMs - spent) : 0);
    const open = { cursor: SEARCH_CURSOR, ...lineScope(this.workspace, scope, glob), ...matcher };
    try {
      await this.ready();
      const split = this.#streamSplit;
      const opening = performance.now();
      const { connection, opened } = await this.#openWhereRead((c) =>
        c.openCursor<sql.SearchOpenParams, { pathOrder: boolean }, GrepMatch>(
          SEARCH_CURSOR,
          sql.searchOpen,
          { ...open, from: null, to: null },
          timeoutMs,
          split ? { kind: "repeatable" } : { kind: "own" },
        ),
      );
      head = opened.reader;
      spent = performance.now() - opening;
      // A second connection only for a read in path order: each part's trigram query would look
      // up the same index entries again (measured: a case-insensitive literal 154 -> 236 ms).
      if (split && opened.opened[0].pathOrder) {
        // The snapshot the head's cursor reads (REPEATABLE READ: the transaction's), for the tail.
        const snapshot = await opened.session.exportSnapshot();
        if (snapshot) tail = new StreamTail({ connection, snapshot, open, ...split, batch: STREAM_BATCH, timeoutMs });
      }
      // The head's rows come in path order: once the tail is open (its first path known) and the
      // head has not passed that path, the head stops at the first row there and the tail goes on.
      let last: string | undefined; // the head's last path given
      let cut: Buffer | undefined; // the tail's first path in UTF-8: the order of the "C" collation
      const atOrAfterCut = (path: string) => Buffer.compare(Buffer.from(path, "utf8"), cut!) >= 0;
      for (let batch = STREAM_FIRST_BATCH; ; batch = STREAM_BATCH) {
        if (limited && spent >= timeoutMs) throw new MatchTimeoutError(timeoutMs);
        const started = performance.now();
        const rows = await head.read(batch, budget());
        spent += performance.now() - started;
        if (tail && !cut && tail.usable) {
          cut = Buffer.from(tail.from!, "utf8");
          if (last !== undefined && atOrAfterCut(last)) {
            await tail.close(); // the head already passed the cut: it reads on alone
            tail = undefined;
          }
        }
        // The head's rows before the cut (all of them without a tail), then the tail's.
        let before = rows.length;
        if (tail && cut) {
          for (let i = 0, path = last; i < rows.length; i++) {
            if (rows[i].path === path) continue; // one comparison per file
            path = rows[i].path;
            if (atOrAfterCut(path)) {
              before = i;
              break;
            }
          }
        }
        if (before > 0) {
          last = rows[before - 1].path;
          yield before === rows.length ? rows : rows.slice(0, before);
        }
        if (tail && before < rows.length && tail.claim()) {
          await head.close();
          yield* tail.adopt(
            (ms) => (spent += ms),
            () => limited && spent >= timeoutMs,
            timeoutMs,
          );
          return;
        }
        if (tail && before < rows.length) {
          // The tail failed after its cut was taken: the head gives the rest itself, alone.
          await tail.close();
          tail = undefined;
          last = rows[rows.length - 1].path;
          yield rows.slice(before);
        }
        if (rows.length < batch) return;
      }
    } catch (e) {
      throw searchError(e, matcher, glob, timeoutMs);
    } finally {
      await Promise.all([head?.close(), tail?.close()]);
    }
  }

  protected async globFiles(compiled: CompiledGlob, scope: NormalizedPath): Promise<FileInfo[]> {
    try {
      const rows = await this.query(sql.glob, {
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
        const rows = await this.query(sql.upload, values);
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
    for (const row of await this.query(sql.download, { workspace: this.workspace, paths })) {
      const i = Number(row.ord) - 1;
      if (row.bytes) found[i] = row.bytes;
      else if (row.content !== null) found[i] = Buffer.from(row.content, "utf8");
      else found[i] = row.is_dir ? "is_directory" : "file_not_found";
    }
    return found;
  }
}

/** Where a grep/search looks and which files it keeps, as sql/search.sql and search_open.sql take it. */
function lineScope(workspace: string, scope: NormalizedPath, glob: CompiledGlob | null) {
  return {
    workspace,
    path: scope.path,
    allowExact: !scope.trailingSlash,
    glob: glob?.pattern ?? null,
    globRegex: glob?.regex ?? null,
    globBasename: glob ? matchesBasename(glob.pattern) : false,
  };
}

/** The name of a stream's cursor (one stream per pooled connection at a time). */
const SEARCH_CURSOR = "deepagents_search";
/** Sessions a stream opens on a cluster before a workspace that keeps moving fails it (DA022). */
const MOVED_ATTEMPTS = 3;
/** Rows of a stream's first FETCH (its first match comes as soon as these are found), then of each. */
const STREAM_FIRST_BATCH = 64;
const STREAM_BATCH = 1024;

/** A search's failure in the words BackendCore knows: its budget spent, a regex or glob refused. */
function searchError(e: unknown, matcher: SqlMatcher, glob: CompiledGlob | null, timeoutMs: number): unknown {
  if (e instanceof MatchTimeoutError || isCancelled(e)) return new MatchTimeoutError(timeoutMs);
  const code = sqlstateOf(e);
  if (code === SQLSTATE.invalidRegex && matcher.regex) {
    return new RegexError(matcher.pattern, `PostgreSQL refused it: ${(e as Error).message}`);
  }
  if (code === SQLSTATE.invalidRegex && glob) return refusedGlob(glob, e);
  return e;
}

/** A glob whose compiled regular expression PostgreSQL refused (SQLSTATE 2201B). */
function refusedGlob(glob: CompiledGlob, e: unknown): GlobError {
  return new GlobError(glob.pattern, `PostgreSQL rejected its compiled form: ${(e as Error).message}`);
}
