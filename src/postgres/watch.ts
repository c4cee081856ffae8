/**
 * watch(): a resumable subscription to a workspace's change log (migrations/0002_changes.sql).
 *
 * The log is the truth; NOTIFY (through pg-listen, on a connection of its own) only says "read
 * now". Every read asks for `id > cursor` in id order, and a workspace's ids are given out in its
 * commit order (migrations/0028), so each change is delivered exactly once and in order — after a
 * dropped connection too: on reconnect the subscriber simply reads from its cursor again. A slow
 * periodic read covers a notification that never arrives.
 */
import micromatch from "micromatch";
import type pg from "pg";
import pgListen, { type Subscriber } from "pg-listen";
import { GLOB_OPTIONS } from "../glob.js";
import * as sql from "./sql/queries.js";
import type { RowOf } from "./sql/statement.js";
import { movedAwayFromPartition, SQLSTATE, sqlstateOf } from "./sqlstate.js";
import { clusterErrors, setupErrors } from "../protocol.js";
import { type Change, movedSide, ResyncRequiredError, type Subscription, type WatchOptions } from "../core/changes.js";

export { type Change, ResyncRequiredError, type Subscription, type WatchOptions } from "../core/changes.js";

interface WatchDeps {
  /** Where the change log is read (sql/changes.sql, sql/changes_head.sql). */
  pool: pg.Pool;
  schema: string;
  /** Settings of the LISTEN connection (one of its own). */
  listener: pg.ClientConfig;
  workspace: string;
  /**
   * `pool` is a partition of a cluster, reached without the front's maps: an empty read checks
   * that its read map still holds the workspace, and a split's move (DA022, or the role's
   * privileges there revoked with its last grant) is a resync.
   */
  partition?: boolean;
}

export async function watchChanges(deps: WatchDeps, options: WatchOptions): Promise<Subscription> {
  const rows = await sql.changesHead.run(deps.pool, deps.schema, { workspace: deps.workspace });
  const channel = rows[0].channel;
  const since = options.since ?? Number(rows[0].head);
  if (!Number.isSafeInteger(since) || since < 0) throw new Error(setupErrors.invalidSince(options.since));
  const subscription = new ChangeSubscription(deps, options, channel, since);
  await subscription.start();
  return subscription;
}

const toPatterns = (paths: string | string[] | undefined) =>
  paths === undefined ? null : (Array.isArray(paths) ? paths : [paths]).map((p) => p.replace(/^\/+/, ""));

class ChangeSubscription implements Subscription {
  #cursor: number;
  readonly #listener: Subscriber;
  readonly #patterns: string[] | null;
  /**
   * Changes read and not yet taken by the iterator. Without onChange, every change from the start
   * (the iterator may come later), and at most about a batch: the reader waits for the consumer
   * (#space), so a long backlog is not read into memory ahead of a slow iterator. With onChange,
   * only changes read once an iterator exists (a subscription used through onChange alone kept
   * every change here, for an iterator that never came), and the reader never waits (onChange
   * would stop behind an iterator).
   */
  readonly #queue: Change[] = [];
  #iterated = false;
  #space: (() => void) | null = null;
  /** Set by start() until the first catch-up ends or waits for the consumer. */
  #blocked: (() => void) | null = null;
  #waiting: { resolve: (r: IteratorResult<Change>) => void; reject: (e: Error) => void } | null = null;
  #failure: Error | null = null;
  #closed = false;
  #reading: Promise<void> | null = null;
  #readAgain = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly deps: WatchDeps,
    readonly options: WatchOptions,
    readonly channel: string,
    since: number,
  ) {
    this.#cursor = since;
    this.#patterns = toPatterns(options.paths);
    // pg-listen is CommonJS with an `exports.default`: from ESM the function is `.default`.
    this.#listener = pgListen.default(deps.listener, {
      retryLimit: Infinity,
      retryTimeout: 0, // never give up reconnecting; the log keeps what happens meanwhile
      retryInterval: (attempt: number) => Math.min(5_000, 100 * 2 ** attempt),
      paranoidChecking: 15_000,
    });
  }

  get cursor(): number {
    return this.#cursor;
  }

  async start(): Promise<void> {
    // The channel is this workspace's own (migrations/0005): the payload is only the newest id.
    this.#listener.notifications.on(this.channel, (payload: { id?: number }) => {
      if ((payload?.id ?? Infinity) <= this.#cursor) return;
      this.#scheduleRead();
    });
    this.#listener.events.on("error", (e) => this.#report(e));
    try {
      await this.#listener.connect();
      await this.#listener.listenTo(this.channel);
    } catch (e) {
      await this.close();
      throw e;
    }
    // pg-listen says "connected" again after each reconnect (channels re-LISTENed): catch up then.
    // A reconnect that finishes after close() opened a new connection: end that one too.
    this.#listener.events.on("connected", () =>
      this.#closed ? void this.#listener.close().catch(() => {}) : this.#read(),
    );
    this.#timer = setInterval(() => this.#read(), this.options.pollIntervalMs ?? 10_000);
    this.#timer.unref();
    // Whatever happened since `since`: start() returns once that is read, or once the reader
    // waits for the consumer to take a batch (which it can only do once start() returned).
    const blocked = new Promise<void>((resolve) => (this.#blocked = resolve));
    this.#read();
    await Promise.race([this.#reading, blocked]);
    this.#blocked = null;
  }

  #scheduled: NodeJS.Timeout | undefined;

  #scheduleRead(): void {
    const delay = this.options.coalesceMs ?? 5;
    if (delay <= 0) {
      this.#read();
      return;
    }
    this.#scheduled ??= setTimeout(() => {
      this.#scheduled = undefined;
      this.#read();
    }, delay);
  }

  /** Reads from the cursor until the log is exhausted; one read at a time, re-run on demand. */
  #read(): void {
    if (this.#closed) return;
    if (this.#reading) {
      this.#readAgain = true;
      return;
    }
    this.#reading = (async () => {
      do {
        this.#readAgain = false;
        await this.#drain();
      } while (this.#readAgain && !this.#closed);
    })()
      .catch((e) => this.#report(e))
      .finally(() => (this.#reading = null));
  }

  async #drain(): Promise<void> {
    const batch = this.options.batchSize ?? 1000;
    for (;;) {
      let rows: RowOf<typeof sql.changes>[];
      const { pool, schema, workspace, partition } = this.deps;
      try {
        rows = await sql.changes.run(pool, schema, { workspace, after: this.#cursor, limit: batch });
        // (A split's old partition keeps no row of a moved workspace a restricted role could read:
        // nothing would ever come, and nothing would say so.)
        if (partition && rows.length === 0) await sql.clusterReadsHere.run(pool, schema, { workspace });
      } catch (e) {
        if (sqlstateOf(e) === SQLSTATE.resyncRequired)
          throw new ResyncRequiredError(this.#cursor, (e as Error).message);
        if (partition && movedAwayFromPartition(e))
          throw new ResyncRequiredError(this.#cursor, clusterErrors.watchMoved(workspace, (e as Error).message));
        throw e;
      }
      for (const row of rows) {
        if (this.#closed) return;
        const change: Change = {
          id: Number(row.id),
          workspace: this.deps.workspace,
          path: row.path,
          op: row.op,
          version: Number(row.version),
          size: Number(row.size),
          at: row.at.toISOString(),
          ...movedSide(row.op, row.moved),
        };
        this.#cursor = change.id;
        if (this.#patterns && !micromatch.isMatch(change.path.slice(1), this.#patterns, GLOB_OPTIONS)) continue;
        this.#deliver(change);
        // (With onChange, onChange must go on whatever an iterator does: the queue is not waited for.)
        if (this.#queue.length >= batch && !this.options.onChange) {
          this.#blocked?.();
          await new Promise<void>((resolve) => (this.#space = resolve));
          if (this.#closed) return; // woken by close(): no further read
        }
      }
      if (rows.length < batch) return;
    }
  }

  #deliver(change: Change): void {
    try {
      this.options.onChange?.(change);
    } catch (e) {
      this.options.onError?.(e as Error);
    }
    if (this.#waiting) {
      const { resolve } = this.#waiting;
      this.#waiting = null;
      resolve({ value: change, done: false });
    } else if (this.#iterated || !this.options.onChange) {
      this.#queue.push(change);
    }
  }

  /** The consumer takes from the queue (or closed the subscription): a reader waiting for room goes on. */
  #taken(): void {
    const space = this.#space;
    this.#space = null;
    space?.();
  }

  /** A resync is final (the subscription stops); connection trouble is retried by pg-listen. */
  #report(e: Error): void {
    this.options.onError?.(e);
    if (!(e instanceof ResyncRequiredError)) return;
    this.#failure = e;
    void this.close();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    clearTimeout(this.#scheduled);
    this.#taken(); // a reader waiting for room ends (it sees #closed)
    await this.#listener.close().catch(() => {});
    if (this.#waiting) {
      const waiting = this.#waiting;
      this.#waiting = null;
      if (this.#failure) waiting.reject(this.#failure);
      else waiting.resolve({ value: undefined, done: true });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<Change> {
    this.#iterated = true;
    return {
      next: () => {
        this.#taken(); // the consumer asks for more: a reader waiting for room goes on
        const next = this.#queue.shift();
        if (next) return Promise.resolve({ value: next, done: false });
        if (this.#failure) return Promise.reject(this.#failure);
        if (this.#closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => (this.#waiting = { resolve, reject }));
      },
      return: async () => {
        await this.close();
        return { value: undefined, done: true };
      },
    };
  }
}
