/**
 * BackendCore: everything a backend of this package does that is not storage. It validates
 * every argument (paths.ts, content.ts, glob.ts, protocol.ts), shapes every result and words
 * every error the same way on every store, and hands a subclass already-normalised requests:
 * "list this directory", "write this body unless the version moved", "find lines matching this
 * in this subtree". A subclass implements those primitives (PostgreSQL: one SQL function each;
 * S3: object requests) and nothing else of the protocol.
 */
import { MatchTimeoutError } from "../bounded.js";
import {
  bodyForUpload,
  bodyForWrite,
  checkEditStrings,
  type FileBody,
  isStorableText,
  searchBudgetMs,
  toBytes,
} from "../content.js";
import { inputFailure } from "../failures.js";
import { type CompiledGlob, compileGlob } from "../glob.js";
import {
  batchClashes,
  dirPrefix,
  fileErrorCode,
  MAX_PATH_BYTES,
  type NormalizedPath,
  normalizeFilePath,
  normalizePath,
  validateWorkspace,
} from "../paths.js";
import {
  type DeleteResult,
  type EditResult,
  editFailure,
  errors,
  type FileData,
  type FileDownloadResponse,
  type FileInfo,
  type FileStat,
  type FileUploadResponse,
  type GlobResult,
  type GrepMatch,
  type GrepResult,
  grepLimit,
  type MkdirOptions,
  type MkdirResult,
  type LsResult,
  type ReadRawResult,
  type ReadResult,
  type RelocateOptions,
  type RelocateResult,
  readPagination,
  type SearchOptions,
  type SearchResult,
  type StatResult,
  setupErrors,
  textReadResult,
  type WriteResult,
} from "../protocol.js";
import { RegexError } from "../regex/index.js";
import { DEFAULTS } from "./defaults.js";
import type { BackendFeatures, DeepAgentsBackend, Version, VersionOptions } from "./interface.js";
import type {
  CoreState,
  EditOutcome,
  EditRequest,
  FileError,
  FileWindow,
  LineQuery,
  MkdirOutcome,
  RelocateOutcome,
  RelocateRequest,
  WriteOutcome,
} from "./requests.js";

export type * from "./requests.js";

/**
 * V: the version type (number or ETag). S: the shared state. M: a compiled search pattern
 * (an SQL argument list, a line test function, ...).
 */
export abstract class BackendCore<V extends Version, S extends CoreState, M> implements DeepAgentsBackend<V> {
  readonly workspace: string;
  protected readonly state: S;

  protected constructor(state: S, workspace: unknown) {
    this.state = state;
    this.workspace = validateWorkspace(workspace);
  }

  abstract readonly features: BackendFeatures;
  abstract withWorkspace(name: string): BackendCore<V, S, M>;
  abstract initialize(): Promise<void>;
  /** What close() releases (a pool or client this backend created). */
  protected abstract release(): Promise<void>;
  protected abstract get maxFileBytes(): number;
  /** The default time budget of search(). */
  protected abstract get timeoutMs(): number;

  /** Throws for an ifVersion of the wrong kind; returns it (null when not given). */
  protected abstract checkVersion(ifVersion: unknown): V | 0 | null;
  /** A storage failure, worded for the agent (inputFailure() has been tried already). */
  protected abstract storageFailure(operation: string, e: unknown): string;
  /** Throws a PathError for a path this store cannot hold (S3: the key would be too long). */
  protected checkStorablePath(_path: string): void {}

  protected abstract listDirectory(dir: string): Promise<FileInfo[]>;
  protected abstract readWindow(
    path: string,
    display: string,
    window: { offset: number; limit: number },
  ): Promise<FileWindow | null>;
  protected abstract readData(path: string, display: string): Promise<FileData | null>;
  /** The file's metadata, "directory" when a directory is there (made, or holding files), or null. */
  protected abstract statFile(path: string): Promise<FileStat<V> | "directory" | null>;
  protected abstract writeFile(
    path: string,
    display: string,
    body: FileBody,
    ifVersion: V | 0 | null,
  ): Promise<WriteOutcome<V>>;
  protected abstract editFile(
    path: string,
    display: string,
    edit: EditRequest,
    ifVersion: V | 0 | null,
  ): Promise<EditOutcome<V>>;
  /** Deletes `path` and everything under it; false when there was nothing. */
  protected abstract deleteTree(path: string): Promise<boolean>;
  /** mkdir of a normalised path other than the root; `parents` as mkdir -p. */
  protected abstract makeDirectory(path: string, parents: boolean): Promise<MkdirOutcome>;
  /** Moves or copies `from` (a file, or a directory and everything under it) to `to`. */
  protected abstract relocateTree(request: RelocateRequest): Promise<RelocateOutcome>;
  /** Compiles a search pattern (throws RegexError for one outside the language of src/regex/). */
  protected abstract compileMatcher(pattern: string, regex: boolean, ignoreCase: boolean): M;
  protected abstract findLines(query: LineQuery<M>): Promise<GrepMatch[]>;
  /**
   * The lines findLines would find uncapped, in the same order, as they are found, in batches
   * (one async step per batch, not per line: a stream of 150,000 lines spent 60 ms more on a
   * second generator step per line); query.limit is a hint: the caller stops pulling at its cap.
   * Returning early (the consumer stopped) must stop the work in the store and release what the
   * stream held.
   */
  protected abstract streamLines(query: LineQuery<M>): AsyncGenerator<GrepMatch[]>;
  protected abstract globFiles(glob: CompiledGlob, scope: NormalizedPath): Promise<FileInfo[]>;
  /** Writes a batch of distinct, non-clashing paths; returns the error of each path it refused. */
  protected abstract uploadBatch(batch: Map<string, FileBody>): Promise<Map<string, FileError>>;
  /** The bytes of each path (in order), or why there are none. */
  protected abstract downloadBatch(paths: string[]): Promise<Array<Buffer | "is_directory" | "file_not_found">>;

  /** Runs `open` once for this backend and all its views; a failure lets the next call retry. */
  protected initializeOnce(open: () => Promise<void>): Promise<void> {
    const state = this.state;
    state.initialized ??= open().catch((e) => {
      state.initialized = undefined;
      throw e;
    });
    return state.initialized;
  }

  /** Before any storage call: not closed, initialized. */
  protected async ready(): Promise<void> {
    if (this.state.closed) throw new Error(setupErrors.closed());
    await this.initialize();
  }

  /** Releases what this backend created, once; later operations fail with "backend is closed". */
  async close(): Promise<void> {
    if (this.state.closed) return;
    this.state.closed = true;
    await this.release();
  }

  protected failure(operation: string, e: unknown): string {
    return inputFailure(e) ?? this.storageFailure(operation, e);
  }

  async ls(path: string): Promise<LsResult> {
    try {
      const dir = dirPrefix(normalizePath(path, { emptyIsRoot: true }).path);
      await this.ready();
      const files = await this.listDirectory(dir);
      // deepagents orders ls output with localeCompare; keep its order exactly.
      files.sort((a, b) => a.path.localeCompare(b.path));
      return { files };
    } catch (e) {
      return { error: this.failure("ls", e) };
    }
  }

  async read(filePath: string, offset = 0, limit: number = DEFAULTS.readLimit): Promise<ReadResult> {
    try {
      const path = normalizeFilePath(filePath);
      const window = readPagination(offset, limit);
      await this.ready();
      const file = await this.readWindow(path, filePath, window);
      return file ? readResult(file, window) : { error: errors.readNotFound(filePath) };
    } catch (e) {
      return { error: this.failure("read", e) };
    }
  }

  async readRaw(filePath: string): Promise<ReadRawResult> {
    try {
      const path = normalizeFilePath(filePath);
      await this.ready();
      const data = await this.readData(path, filePath);
      return data ? { data } : { error: errors.readNotFound(filePath) };
    } catch (e) {
      return { error: this.failure("readRaw", e) };
    }
  }

  /**
   * Makes a directory that exists while empty, until delete() takes it (an extension beyond the
   * protocol). Files still make their parents implicitly; those exist while a file is below.
   */
  async mkdir(dirPath: string, options: MkdirOptions = {}): Promise<MkdirResult> {
    try {
      const { path } = normalizePath(dirPath, { emptyIsRoot: true });
      const parents = options?.parents ?? false;
      if (typeof parents !== "boolean") return { error: errors.invalidParents(parents) };
      if (path === "/") return parents ? { path: dirPath, created: false } : { error: errors.directoryExists(dirPath) };
      await this.ready();
      this.checkStorablePath(path);
      const outcome = await this.makeDirectory(path, parents);
      switch (outcome.status) {
        case "created":
          return { path: dirPath, created: true };
        case "exists":
          return parents ? { path: dirPath, created: false } : { error: errors.directoryExists(dirPath) };
        case "is_file":
          return { error: errors.fileExists(dirPath) };
        case "parent_is_file":
          return { error: errors.parentIsFile(dirPath, outcome.path) };
        case "parent_missing":
          return { error: errors.parentMissing(dirPath, outcome.path) };
      }
    } catch (e) {
      return { error: this.failure("mkdir", e) };
    }
  }

  /** Metadata of one file without its content (an extension beyond the protocol). */
  async stat(filePath: string): Promise<StatResult<V>> {
    try {
      const path = normalizeFilePath(filePath);
      await this.ready();
      const data = await this.statFile(path);
      if (data === "directory") return { error: errors.isDirectory(filePath), isDirectory: true };
      return data ? { data } : { error: errors.readNotFound(filePath) };
    } catch (e) {
      return { error: this.failure("stat", e) };
    }
  }

  /**
   * Create or overwrite. For a binary file type (by extension) the content is base64. With
   * `{ ifVersion }` it writes only if the file is at that version (0: only if it does not exist).
   */
  async write(
    filePath: string,
    content: string,
    options: VersionOptions<V> = {},
  ): Promise<WriteResult & { version?: V }> {
    try {
      const path = normalizeFilePath(filePath);
      const ifVersion = this.checkVersion(options.ifVersion);
      const body = bodyForWrite(filePath, path, content, this.maxFileBytes);
      await this.ready();
      this.checkStorablePath(path);
      return writeResult(filePath, ifVersion, await this.writeFile(path, filePath, body, ifVersion));
    } catch (e) {
      return { error: this.failure("write", e) };
    }
  }

  async edit(
    filePath: string,
    oldString: string,
    newString: string,
    replaceAll = false,
    options: VersionOptions<V> = {},
  ): Promise<EditResult & { version?: V }> {
    try {
      const path = normalizeFilePath(filePath);
      const ifVersion = this.checkVersion(options.ifVersion);
      checkEditStrings(filePath, oldString, newString);
      await this.ready();
      this.checkStorablePath(path);
      const edit = { oldString, newString, replaceAll: replaceAll === true };
      const outcome = await this.editFile(path, filePath, edit, ifVersion);
      switch (outcome.status) {
        case "ok":
          return { path: filePath, filesUpdate: null, occurrences: outcome.occurrences, version: outcome.version };
        case "version_mismatch":
          return { error: errors.versionMismatch(filePath, ifVersion ?? 0, outcome.current) };
        case "too_large":
          return { error: errors.tooLarge(filePath, outcome.size, this.maxFileBytes) };
        case "conflict":
          return { error: errors.editConflict(filePath, outcome.attempts) };
        default:
          return { error: editFailure(outcome.status, filePath, oldString, outcome.occurrences ?? 0) };
      }
    } catch (e) {
      return { error: this.failure("edit", e) };
    }
  }

  /** Recursive: the path and everything under it. Glob characters are literal. */
  async delete(filePath: string): Promise<DeleteResult> {
    try {
      const { path } = normalizePath(filePath);
      await this.ready();
      if (!(await this.deleteTree(path))) return { error: errors.notFound(filePath) };
      return { path: filePath, filesUpdate: null };
    } catch (e) {
      return { error: this.failure("delete", e) };
    }
  }

  /**
   * Moves (renames) a file or a whole directory (an extension beyond the protocol). On PostgreSQL
   * one transaction; on S3 a copy then a delete per file (see the README). A file in the way is
   * an error unless `overwrite`, which replaces it; a target directory's other files stay.
   */
  async move(from: string, to: string, options: RelocateOptions = {}): Promise<RelocateResult> {
    return this.#relocate("move", from, to, options);
  }

  /** Copies a file or a whole directory, like move() but leaving the source. */
  async copy(from: string, to: string, options: RelocateOptions = {}): Promise<RelocateResult> {
    return this.#relocate("copy", from, to, options);
  }

  async #relocate(
    operation: "move" | "copy",
    from: string,
    to: string,
    options: RelocateOptions,
  ): Promise<RelocateResult> {
    try {
      const source = normalizePath(from).path;
      const target = normalizePath(to).path;
      const overwrite = options?.overwrite ?? false;
      if (typeof overwrite !== "boolean") return { error: errors.invalidOverwrite(overwrite) };
      if (
        source === "/" ||
        target === "/" ||
        source === target ||
        target.startsWith(`${source}/`) ||
        source.startsWith(`${target}/`)
      ) {
        return { error: errors.relocateOntoItself(operation, from, to) };
      }
      await this.ready();
      this.checkStorablePath(target);
      const outcome = await this.relocateTree({ operation, from: source, to: target, overwrite });
      switch (outcome.status) {
        case "ok":
          return { path: to, from, files: outcome.files, filesUpdate: null };
        case "not_found":
          return { error: errors.notFound(from) };
        case "target_exists":
          return { error: errors.targetExists(outcome.path) };
        case "parent_is_file":
          return { error: errors.parentIsFile(to, outcome.path) };
        case "is_directory":
          return { error: errors.isDirectory(outcome.path) };
        case "too_long":
          return { error: errors.pathTooLong(outcome.path, MAX_PATH_BYTES) };
      }
    } catch (e) {
      return { error: this.failure(operation, e) };
    }
  }

  /** Literal search, line by line. */
  async grep(
    pattern: string,
    path: string | null = "/",
    glob: string | null = null,
    maxCount: number | null = null,
  ): Promise<GrepResult> {
    return this.#find("grep", { pattern, path: path ?? "/", glob, maxCount });
  }

  /**
   * grep beyond the protocol: a regular expression of the language of src/regex/ (JavaScript's, `u`
   * flag, per line) and/or a case-insensitive literal, within a time budget (`timeoutMs`).
   */
  async search(options: SearchOptions): Promise<SearchResult> {
    return this.#find("search", options);
  }

  /**
   * grep() as an async iterator (an extension beyond the protocol): the same matches in the same
   * order, handed over as the store finds them, in bounded memory (on PostgreSQL a server-side
   * cursor read in batches; on S3 one file at a time). Leaving the loop early stops the search in
   * the store; `maxCount` ends the stream after that many matches. A failure is thrown as a
   * SearchStreamError whose message is grep()'s error.
   */
  grepStream(
    pattern: string,
    path: string | null = "/",
    glob: string | null = null,
    maxCount: number | null = null,
  ): AsyncGenerator<GrepMatch> {
    return this.#stream("grep", { pattern, path: path ?? "/", glob, maxCount });
  }

  /**
   * search() as an async iterator, like grepStream(); `timeoutMs` bounds the time the store
   * spends finding the matches (not the time the consumer spends between two of them).
   */
  searchStream(options: SearchOptions): AsyncGenerator<GrepMatch> {
    return this.#stream("search", options);
  }

  async #find(operation: "grep" | "search", options: SearchOptions): Promise<GrepResult> {
    const prepared = this.#lineQuery(operation, options);
    if ("error" in prepared) return { error: prepared.error };
    const { query, cap } = prepared;
    if (query === null) return { matches: [] };
    try {
      await this.ready();
      const matches = await this.findLines({ ...query, limit: cap === null ? null : cap + 1 });
      if (cap !== null && matches.length > cap) return { matches: matches.slice(0, cap), truncated: true };
      return { matches };
    } catch (e) {
      return { error: this.#findFailure(operation, options.pattern, query.timeoutMs, e) };
    }
  }

  async *#stream(operation: "grep" | "search", options: SearchOptions): AsyncGenerator<GrepMatch> {
    const prepared = this.#lineQuery(operation, options);
    if ("error" in prepared) throw new SearchStreamError(prepared.error);
    const { query, cap } = prepared;
    if (query === null) return;
    let count = 0;
    try {
      await this.ready();
      // maxCount 0 yields nothing, but asks the store as search() does (its errors are the same).
      if (cap === 0) return void (await this.findLines({ ...query, limit: 1 }));
      for await (const batch of this.streamLines({ ...query, limit: cap })) {
        for (const match of batch) {
          yield match;
          if (++count === cap) return;
        }
      }
    } catch (e) {
      throw new SearchStreamError(this.#findFailure(operation, options.pattern, query.timeoutMs, e));
    }
  }

  /**
   * A grep/search request checked and compiled (query null: a literal that cannot occur in stored
   * text, so nothing matches), with its cap; or the error of a bad argument.
   */
  #lineQuery(
    operation: "grep" | "search",
    options: SearchOptions,
  ): { query: Omit<LineQuery<M>, "limit"> | null; cap: number | null } | { error: string } {
    const { pattern } = options;
    if (typeof pattern !== "string") return { error: errors.patternNotString(operation) };
    let timeoutMs = 0;
    try {
      const regex = options.regex === true;
      // Stored text is valid UTF-8 without NUL: a literal that is not cannot occur in it (a regex
      // is compiled: src/regex/ escapes what is not storable).
      const matcher =
        regex || isStorableText(pattern) ? this.compileMatcher(pattern, regex, options.ignoreCase === true) : null;
      timeoutMs = searchBudgetMs(options.timeoutMs, this.timeoutMs);
      const scope = normalizePath(options.path ?? "/", { emptyIsRoot: true });
      const glob = options.glob ? compileGlob(options.glob) : null;
      const cap = grepLimit(options.maxCount);
      return { query: matcher === null ? null : { operation, matcher, scope, glob, timeoutMs }, cap };
    } catch (e) {
      return { error: this.#findFailure(operation, pattern, timeoutMs, e) };
    }
  }

  /** The one-line error of a failed grep/search (a stream's SearchStreamError carries the same). */
  #findFailure(operation: "grep" | "search", pattern: string, timeoutMs: number, e: unknown): string {
    if (e instanceof RegexError) return errors.invalidRegex(pattern, e.reason);
    if (e instanceof MatchTimeoutError) return errors.searchTimeout(timeoutMs);
    return this.failure(operation, e);
  }

  /**
   * Files matching a glob under `path`, newest first. An absolute pattern ("/src/**\/*.ts") is
   * matched from the root whatever `path` is.
   */
  async glob(pattern: string, path = "/"): Promise<GlobResult> {
    try {
      const absolute = typeof pattern === "string" && pattern.startsWith("/");
      const compiled = compileGlob(absolute ? pattern.replace(/^\/+/, "") : pattern);
      const scope = absolute ? { path: "/", trailingSlash: true } : normalizePath(path, { emptyIsRoot: true });
      await this.ready();
      return { files: await this.globFiles(compiled, scope) };
    } catch (e) {
      if (e instanceof MatchTimeoutError) return { error: errors.globTimeout(pattern, e.timeoutMs) };
      return { error: this.failure("glob", e) };
    }
  }

  /**
   * Byte-exact, per-file results in input order; a path given twice is written once (last wins).
   * Text types are stored as text when the bytes are valid UTF-8, otherwise as binary. Within the
   * batch, of two paths where one lies below the other the later in input order is refused.
   */
  async uploadFiles(files: Array<[string, Uint8Array]>): Promise<FileUploadResponse[]> {
    const responses: FileUploadResponse[] = [];
    const batch = new Map<string, FileBody>();
    const indices = new Map<string, number[]>(); // the responses of each normalised path
    for (const [input, bytes] of files) {
      try {
        const path = normalizeFilePath(input);
        this.checkStorablePath(path);
        batch.set(path, bodyForUpload(path, bytes, this.maxFileBytes));
        responses.push({ path: input, error: null });
        indices.set(path, [...(indices.get(path) ?? []), responses.length - 1]);
      } catch (e) {
        responses.push({ path: input, error: fileErrorCode(e) });
      }
    }
    const refuse = (path: string, error: FileError) => {
      for (const i of indices.get(path) ?? []) responses[i].error = error;
    };
    for (const [path, clash] of batchClashes(batch.keys())) {
      refuse(path, clash.code);
      batch.delete(path);
    }
    if (batch.size > 0) {
      await this.ready();
      for (const [path, error] of await this.uploadBatch(batch)) refuse(path, error);
    }
    return responses;
  }

  /** Byte-exact; results in input order. */
  async downloadFiles(paths: string[]): Promise<FileDownloadResponse[]> {
    const responses: FileDownloadResponse[] = paths.map((path) => ({ path, content: null, error: null }));
    const lookups: { index: number; path: string }[] = [];
    paths.forEach((input, index) => {
      try {
        const path = normalizeFilePath(input);
        this.checkStorablePath(path);
        lookups.push({ index, path });
      } catch (e) {
        responses[index].error = fileErrorCode(e);
      }
    });
    if (lookups.length > 0) {
      await this.ready();
      const found = await this.downloadBatch(lookups.map((l) => l.path));
      found.forEach((result, i) => {
        const response = responses[lookups[i].index];
        if (typeof result === "string") response.error = result;
        else response.content = toBytes(result);
      });
    }
    return responses;
  }
}

/** Why grepStream()/searchStream() ended early: its message is the error grep()/search() would return. */
export class SearchStreamError extends Error {
  override name = "SearchStreamError";
}

/** read()'s answer for a window of a file (readVersion() answers the same way). */
export function readResult(file: FileWindow, window: { offset: number; limit: number }): ReadResult {
  if (file.bytes) return { content: toBytes(file.bytes), mimeType: file.mimeType };
  return textReadResult(file.mimeType, file.totalLines, window.offset, window.limit, file.window);
}

/** write()'s answer for an outcome (restore() answers the same way). */
export function writeResult<V extends Version>(
  filePath: string,
  ifVersion: V | 0 | null,
  outcome: WriteOutcome<V>,
): WriteResult & { version?: V } {
  switch (outcome.status) {
    case "ok":
      return { path: filePath, filesUpdate: null, version: outcome.version };
    case "version_mismatch":
      return { error: errors.versionMismatch(filePath, ifVersion ?? 0, outcome.current) };
    case "parent_is_file":
      return { error: errors.parentIsFile(filePath, outcome.file) };
    case "is_directory":
      return { error: errors.isDirectory(filePath) };
  }
}
