/**
 * Every default of the package in one place (as node-postgres keeps its own in defaults.js): the
 * backends, the CLI and the docs read them from here, so a default is changed once.
 */
const MiB = 1024 * 1024;

export const DEFAULTS = {
  /** The workspace a backend reads and writes when none is configured. */
  workspace: "default",
  /** The PostgreSQL schema holding our tables, functions and migrations table. */
  schema: "deepagents",
  /** Largest file a write, edit or upload may store, in bytes. */
  maxFileBytes: 64 * MiB,
  /**
   * Time budget of one operation in ms: PostgreSQL's statement_timeout on every connection, and
   * the default budget of search() on both backends.
   */
  timeoutMs: 30_000,
  /** read()'s default number of lines, as deepagents' own backends. */
  readLimit: 500,
  postgres: {
    /** Idle connections the pool keeps open. */
    minPoolSize: 2,
    /** Most connections the pool opens. */
    maxPoolSize: 10,
    /** ms an idle connection above minPoolSize is kept. */
    idleTimeoutMs: 30_000,
    /** ms to wait for a connection (from the pool or the server) before failing. */
    connectionTimeoutMs: 10_000,
    /**
     * Text in a streamed search's scope from which its second half is read on a second connection
     * at once (streamSplit.minBytes), in bytes: below it one cursor is fast enough.
     */
    streamSplitBytes: 16 * MiB,
    /** Bytes of matches that second half may read ahead of the consumer (streamSplit.aheadBytes). */
    streamAheadBytes: 32 * MiB,
  },
  s3: {
    /** Objects fetched at once by grep/search/downloads. */
    concurrency: 16,
    /** In-process cache of decoded texts by ETag, in bytes. */
    cacheBytes: 64 * MiB,
    /** Largest object read() and edit() fetch, in bytes (downloads have no limit). */
    maxReadBytes: 32 * MiB,
    /** Conditional-write attempts of one edit under contention before it reports a conflict. */
    maxEditAttempts: 64,
    /** Socket read timeout of one request, in ms. */
    readTimeoutMs: 30_000,
  },
} as const;
