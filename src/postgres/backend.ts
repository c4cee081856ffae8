/**
 * PostgresBackend: deepagents' BackendProtocolV2 where every call is one round trip to one SQL
 * function installed by our migrations (migrations/, statements in sql/, typed in sql/queries.ts),
 * with what only PostgreSQL offers: views of other workspaces and tags, the change feed
 * (watch.ts) and file history with checkpoints (history.ts). The protocol itself is files.ts;
 * BackendCore (src/core) validates input and shapes results.
 */
import type pg from "pg";
import { DEFAULTS } from "../core/defaults.js";
import {
  type LoggedCheckpoint,
  type DiffOptions,
  type ForkOptions,
  type ForkResult,
  type HistoryResult,
  type HistorySettings,
  optionalLabel,
  type PathChange,
  type RewindOptions,
  type RewindResult,
  type VersionedWorkspace,
} from "../core/history.js";
import type { VersionOptions } from "../core/interface.js";
import type { ReadResult, WriteResult } from "../protocol.js";
import { type PostgresBackendConfig, validateSchema, validateStreamSplit } from "./config.js";
import { Partitions } from "./cluster/partitions.js";
import { Connection } from "./connection.js";
import { PostgresFiles, type Shared } from "./files.js";
import * as history from "./history.js";
import { checkRowLevelSecurity, type OpenOptions, openSchema } from "./open.js";
import * as sql from "./sql/queries.js";
import { type Subscription, type WatchOptions, watchChanges } from "./watch.js";

/** Optimistic concurrency for write/edit: the version the caller last saw (0 = must not exist). */
export type WriteOptions = VersionOptions<number>;

export type InitializeOptions = OpenOptions;

/** A writer's tag: a string of at most 200 characters without control characters, or none. */
function validateTag(tag: unknown): string | null {
  try {
    return optionalLabel(tag, "tag") || null; // "" is no tag
  } catch (e) {
    throw new Error((e as Error).message.replace(/^Error: /, ""));
  }
}

export class PostgresBackend extends PostgresFiles implements VersionedWorkspace {
  constructor(config?: PostgresBackendConfig);
  /** @internal withWorkspace(), withTag() */
  constructor(config: PostgresBackendConfig, shared: Shared, workspace: string, tag: string | null);
  constructor(config: PostgresBackendConfig = {}, shared?: Shared, workspace?: string, tag?: string | null) {
    const schema = shared?.schema ?? validateSchema(config.schema);
    if (!shared) validateStreamSplit(config.streamSplit);
    super(
      shared ?? PostgresBackend.#shared(config, schema),
      shared ? (workspace as string) : (config.workspace ?? DEFAULTS.workspace),
      shared ? (tag ?? null) : validateTag(config.tag),
    );
  }

  static #shared(config: PostgresBackendConfig, schema: string): Shared {
    const connection = new Connection(config, schema);
    return { connection, partitions: new Partitions(connection, config, schema), schema, config, closed: false };
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
    const { connection, partitions, schema, config } = this.state;
    return this.initializeOnce(async () => {
      partitions.active = (await openSchema(connection.pool, schema, this.workspace, config, options)).proxy;
      if (partitions.active) connection.wakeUpsFromCommits();
      if (partitions.active && config.rowLevelSecurity)
        await checkRowLevelSecurity((await partitions.of(this.workspace)).pool, schema, this.workspace);
    });
  }

  withWorkspace(name: string): PostgresBackend {
    return new PostgresBackend(this.state.config, this.state, name, this.tag);
  }

  /** A view of this workspace, over the same connections, whose writes carry another tag (null: none). */
  withTag(tag: string | null): PostgresBackend {
    return new PostgresBackend(this.state.config, this.state, this.workspace, validateTag(tag));
  }

  /**
   * Subscribe to this workspace's changes (write, edit, upload, delete — one per file), in id
   * order, exactly once, resuming from `since`; see watch.ts. Close the subscription when done.
   */
  async watch(options: WatchOptions = {}): Promise<Subscription> {
    await this.ready();
    const { schema } = this.state;
    // On a cluster's front: the partition's (NOTIFY is per server), where the log is read too.
    const connection = await this.sessionConnection();
    // The listener needs a connection of its own, with the same settings as the pool's.
    const listener = connection.clientConfig();
    return watchChanges(
      { pool: connection.pool, schema, listener, workspace: this.workspace, partition: this.state.partitions.active },
      options,
    );
  }

  /**
   * Retention of the change log (all workspaces of the schema): drop changes older than
   * `olderThanMs` and/or all but the newest `keepPerWorkspace` of each workspace. A watcher whose
   * cursor falls below what was dropped gets a ResyncRequiredError. Returns how many were dropped.
   */
  async pruneChanges(options: { olderThanMs?: number; keepPerWorkspace?: number }): Promise<number> {
    const olderThan =
      options.olderThanMs === undefined ? null : `${Math.max(0, Math.floor(options.olderThanMs))} milliseconds`;
    const [row] = await this.query(sql.pruneChanges, {
      olderThan,
      keepPerWorkspace: options.keepPerWorkspace ?? null,
    });
    return Number(row.pruned);
  }

  // --- file history and checkpoints (history.ts; the contract: src/core/history.ts) ------------

  readonly #history: history.HistoryContext = {
    workspace: this.workspace,
    query: (statement, params) => this.query(statement, params),
    failure: (operation, e) => this.failure(operation, e),
    checkVersion: (ifVersion) => this.checkVersion(ifVersion),
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
  checkpoint(options?: { label?: string; tag?: string }): Promise<LoggedCheckpoint> {
    return history.checkpoint(this.#history, options);
  }
  checkpoints(): Promise<LoggedCheckpoint[]> {
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
  fork(workspace: string, options?: ForkOptions): Promise<ForkResult> {
    return history.fork(this.#history, workspace, options);
  }
  /**
   * Applies the retention to this workspace (or every one), and sweeps search chunks no file uses:
   * the schema owner's job, like pruneChanges.
   */
  pruneHistory(
    options: { allWorkspaces?: boolean } = {},
  ): Promise<{ versions: number; blobs: number; chunkSets: number }> {
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
}
