/**
 * The connection layer of PostgresBackend: its pool (opened here, or the caller's), whether the
 * backend is closed, and how a statement of ./sql/ runs on it — one round trip, retried only when
 * that cannot repeat an effect, or inside a transaction with its own statement_timeout.
 */
import pg from "pg";
import { setupErrors } from "../protocol.js";
import { unwrapRemoteError } from "./cluster/remote-errors.js";
import { clientConfig, type PostgresBackendConfig, poolConfig } from "./config.js";
import { setTag, wakeUp } from "./sql/queries.js";
import type { Statement } from "./sql/statement.js";
import {
  beginReadSession,
  type CursorReader,
  localTimeout,
  type ReadSession,
  type SnapshotChoice,
} from "./read-session.js";
import { isConnectionException, isOperatorIntervention, SQLSTATE, sqlstateOf } from "./sqlstate.js";
import { WakeUps } from "./wake-ups.js";

/** Node's errno codes of a socket that broke under a query. */
const SOCKET_BROKE = new Set(["ECONNRESET", "EPIPE"]);

/** The connection died under the query (as opposed to the query failing on a live one). */
export function isConnectionLost(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  return (
    (typeof err?.code === "string" &&
      (isOperatorIntervention(err.code) || isConnectionException(err.code) || SOCKET_BROKE.has(err.code))) ||
    /Connection terminated|connection.*(closed|ended)|Client has encountered a connection error/i.test(
      err?.message ?? "",
    )
  );
}

/** PostgreSQL failed the statement's transaction to break a deadlock (it was rolled back whole). */
const isDeadlock = (e: unknown) => sqlstateOf(e) === SQLSTATE.deadlockDetected;
/** How often a deadlock victim is run in all before its error is the answer. */
const DEADLOCK_ATTEMPTS = 3;
/**
 * Before a deadlock victim runs again: a pause (attempt × 25-75 ms), so that the transactions it
 * waited for take the row locks its abort freed. PostgreSQL hands a freed row lock to whoever asks
 * next: a retry sent at once could take it again and close the same cycle (seen in CI: three
 * attempts of a move, three deadlocks).
 */
const afterDeadlock = (attempt: number) =>
  new Promise<void>((resolve) => setTimeout(resolve, attempt * 50 * (0.5 + Math.random())));

export type { CursorReader, ReadSession, SnapshotChoice } from "./read-session.js";

type SizedPool = pg.Pool & { options: { max: number } };

export class Connection {
  /** The pool every statement runs on (shared by all workspaces of a backend). */
  readonly pool: pg.Pool;
  readonly schema: string;
  readonly #config: PostgresBackendConfig;
  readonly #ownsPool: boolean;
  #closed = false;
  /** The read sessions of open streams (beginRead, openCursor), closed by close(). */
  readonly #sessions = new Set<ReadSession>();
  /** Holders of a connection they can give back when a call would wait for the pool (onPoolWait). */
  readonly #yielders = new Set<() => void>();
  /**
   * Wake-ups sent after the commits of statements that change files (wake-ups.ts); null once
   * wakeUpsFromCommits() said the server notifies from the commits itself.
   */
  #wakeUps: WakeUps | null;

  constructor(config: PostgresBackendConfig, schema: string) {
    this.#config = config;
    this.schema = schema;
    this.#ownsPool = !config.pool;
    this.pool = config.pool ?? new pg.Pool(poolConfig(config));
    if (this.#ownsPool) {
      // An idle connection killed by the server must not crash the process; the pool drops it.
      this.pool.on("error", () => {});
    }
    this.#wakeUps = new WakeUps((workspaces) => wakeUp.run(this.pool, schema, { workspaces }));
  }

  /**
   * The server this pool reaches sends wake-ups from the writers' commits itself (a cluster's
   * front: the partitions' commits notify, sql/cluster_install.sql), so none is sent after them.
   */
  wakeUpsFromCommits(): void {
    this.#wakeUps = null;
  }

  /** `run()` of `statement`, and for one that may change files, the wake-up of its watchers after. */
  #waking<P extends object, R>(statement: Statement<P, R>, params: P, run: () => Promise<R[]>): Promise<R[]> {
    if (!this.#wakeUps || statement.wakes === undefined) return run();
    return this.#wakeUps.around(String(params[statement.wakes]), run);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Throws once close() was called. */
  assertOpen(): void {
    if (this.#closed) throw new Error(setupErrors.closed());
  }

  /**
   * Closes the cursors still open (a stream's next read then fails with "backend is closed"), and
   * ends the pool if it was opened here (never a pool passed in). Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#sessions].map((c) => c.close()));
    await this.#wakeUps?.settled();
    if (this.#ownsPool) await this.pool.end();
  }

  /**
   * The settings of a connection of its own (a LISTEN for watch()), the same as the pool's: those
   * of the pool passed in, or the ones the owned pool was opened with.
   */
  clientConfig(): pg.ClientConfig {
    return this.#config.pool
      ? { ...(this.pool as unknown as { options: pg.ClientConfig }).options }
      : clientConfig(this.#config);
  }

  /**
   * One round trip. A read-only statement (`readOnly` in its definition, sql/queries.ts) is
   * retried once on a connection that turned out to be dead (killed by the server, dropped by the
   * network): nothing it did can have taken effect. Writes are never retried for that: a lost
   * reply could hide a committed change. Any statement the server failed as a deadlock victim is
   * run again (up to DEADLOCK_ATTEMPTS in all): its transaction was rolled back whole.
   */
  run<P extends object, R>(statement: Statement<P, R>, params: P): Promise<R[]> {
    return this.#waking(statement, params, () => this.#run(statement, params));
  }

  async #run<P extends object, R>(statement: Statement<P, R>, params: P): Promise<R[]> {
    const { text, values } = statement.bind(this.schema, params);
    let reconnected = !statement.readOnly;
    for (let attempt = 1; ; attempt++) {
      this.#relieve();
      try {
        return (await this.pool.query(text, values)).rows;
      } catch (e) {
        unwrapRemoteError(e);
        if (!reconnected && isConnectionLost(e)) reconnected = true;
        else if (isDeadlock(e) && attempt < DEADLOCK_ATTEMPTS) await afterDeadlock(attempt);
        else throw e;
      }
    }
  }

  /**
   * A cursor that `statement` opens under the name `name` (a function that OPENs it), read in
   * batches on one connection of the pool, in a transaction of its own that lasts until close():
   * one snapshot for every row, and the rows the client holds are one batch. Nothing runs on the
   * server between two reads; close() (ROLLBACK) drops the cursor, and so does close() of this
   * Connection for every cursor still open. `timeoutMs` is the open's statement_timeout (0: none,
   * as in PostgreSQL). Beginning and opening are retried once on a connection that turned out to
   * be dead (a read-only statement), as run() does.
   */
  async openCursor<P extends object, O, R>(
    name: string,
    statement: Statement<P, O>,
    params: P,
    timeoutMs: number,
    snapshot: SnapshotChoice = { kind: "own" },
  ): Promise<{ reader: CursorReader<R>; opened: O[]; session: ReadSession }> {
    for (let attempt = 1; ; attempt++) {
      try {
        const session = (await this.beginRead(timeoutMs, snapshot, { wait: true }))!;
        return { ...(await session.cursor<P, O, R>(name, statement, params)), session };
      } catch (e) {
        if (attempt === 1 && statement.readOnly && isConnectionLost(e)) continue;
        throw e;
      }
    }
  }

  /**
   * A read session (read-session.ts) under `timeoutMs` of statement_timeout (0: none). With
   * `wait: false` it is begun only if the pool would still have a connection free after it
   * (nobody queued): undefined otherwise — for work that helps but must never hold a connection
   * that the caller's other calls need (a stream's second connection; see onPoolWait).
   */
  async beginRead(
    timeoutMs: number,
    snapshot: SnapshotChoice,
    { wait }: { wait: boolean },
  ): Promise<ReadSession | undefined> {
    this.assertOpen();
    if (wait) this.#relieve();
    else if (this.#free() < 2) return undefined;
    const client = await this.pool.connect();
    if (this.#closed) {
      // close() ran while this waited for a connection: it could not end a session not yet begun.
      client.release();
      throw new Error(setupErrors.closed());
    }
    const session = await beginReadSession({
      client,
      schema: this.schema,
      snapshot,
      timeoutMs,
      clientConfig: () => this.clientConfig(),
      ended: (s) => this.#sessions.delete(s),
    });
    if (this.#closed) {
      // close() ran during BEGIN: it could not end a session it did not know yet.
      await session.close();
      throw new Error(setupErrors.closed());
    }
    this.#sessions.add(session);
    return session;
  }

  /**
   * Registers `giveUp`, called when a call of this Connection is about to wait for the pool (no
   * connection free): a holder of a connection it can do without gives it back. Returns the
   * unregistration. Calls made on the pool directly, not through here, are seen only by
   * pool.waitingCount (which such a holder also checks).
   */
  onPoolWait(giveUp: () => void): () => void {
    this.#yielders.add(giveUp);
    return () => this.#yielders.delete(giveUp);
  }

  /** Connections the pool could hand out now without anyone waiting. */
  #free(): number {
    const pool = this.pool as SizedPool;
    return pool.idleCount + Math.max(0, pool.options.max - pool.totalCount) - pool.waitingCount;
  }

  /** Before a call that may wait for the pool: the holders that can give a connection back do. */
  #relieve(): void {
    if (this.#yielders.size === 0 || this.#free() > 0) return;
    for (const giveUp of [...this.#yielders]) giveUp();
  }

  /**
   * One statement in its own transaction, under `SET LOCAL statement_timeout` and/or with the
   * writer's tag (sql/set_tag.sql: the session setting file history records): a round trip to
   * begin, one to set the tag, one for the statement, one to commit.
   */
  runInTransaction<P extends object, R>(
    settings: { timeoutMs?: number; tag?: string | null },
    statement: Statement<P, R>,
    params: P,
  ): Promise<R[]> {
    return this.#waking(statement, params, () => this.#runInTransaction(settings, statement, params));
  }

  async #runInTransaction<P extends object, R>(
    settings: { timeoutMs?: number; tag?: string | null },
    statement: Statement<P, R>,
    params: P,
  ): Promise<R[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#transaction(settings, statement, params);
      } catch (e) {
        // (a deadlock victim's transaction was rolled back whole: run it again, as run() does)
        if (!(isDeadlock(e) && attempt < DEADLOCK_ATTEMPTS)) throw e;
        await afterDeadlock(attempt);
      }
    }
  }

  async #transaction<P extends object, R>(
    settings: { timeoutMs?: number; tag?: string | null },
    statement: Statement<P, R>,
    params: P,
  ): Promise<R[]> {
    const { text, values } = statement.bind(this.schema, params);
    const begin = settings.timeoutMs === undefined ? "BEGIN" : `BEGIN; ${localTimeout(settings.timeoutMs)}`;
    this.#relieve();
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query(begin);
      if (settings.tag) {
        const tag = setTag.bind(this.schema, { tag: settings.tag });
        await client.query(tag.text, tag.values);
      }
      const { rows } = await client.query(text, values);
      await client.query("COMMIT");
      return rows;
    } catch (e) {
      await client.query("ROLLBACK").catch((rollback) => (broken = rollback));
      throw unwrapRemoteError(e);
    } finally {
      client.release(broken); // a connection that cannot even roll back is discarded
    }
  }
}
