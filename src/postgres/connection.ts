/**
 * The connection layer of PostgresBackend: its pool (opened here, or the caller's), whether the
 * backend is closed, and how a statement of ./sql/ runs on it — one round trip, retried only when
 * that cannot repeat an effect, or inside a transaction with its own statement_timeout.
 */
import pg from "pg";
import { setupErrors } from "../protocol.js";
import { clientConfig, type PostgresBackendConfig, poolConfig } from "./config.js";
import { setTag } from "./sql/queries.js";
import type { Statement } from "./sql/statement.js";
import { isConnectionException, isOperatorIntervention } from "./sqlstate.js";

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

/** The statement that sets this transaction's statement_timeout, in ms (0: none, as in PostgreSQL). */
function localTimeout(ms: number): string {
  return `SET LOCAL statement_timeout = ${Math.max(0, Math.floor(ms))}`;
}

/** A server-side cursor being read (ReadSession.cursor, Connection.openCursor). */
export interface CursorReader<R> {
  /** Up to `count` more rows, fewer only at the end; the FETCH runs under `timeoutMs` of server time. */
  read(count: number, timeoutMs: number): Promise<R[]>;
  /** Ends the cursor's transaction and gives its connection back to the pool; idempotent. */
  close(): Promise<void>;
}

/** Which snapshot a read session (Connection.beginRead) reads in. */
export type SnapshotChoice =
  /** Its own, as any transaction (READ COMMITTED: a cursor keeps the one it was opened in). */
  | { kind: "own" }
  /** Its own, in REPEATABLE READ, exported (ReadSession.snapshot) for other sessions to share. */
  | { kind: "export" }
  /** The snapshot another session exported, in REPEATABLE READ: the same rows as that one. */
  | { kind: "import"; id: string };

/**
 * A pooled connection in a transaction of its own, for reads (Connection.beginRead): statements,
 * then at most one cursor, whose close() ends the session too.
 */
export interface ReadSession {
  /** The id of its snapshot, when it was begun with { kind: "export" } (none on a standby). */
  readonly snapshot: string | undefined;
  /** The server dropped its connection (its next step will fail): an error event came while idle. */
  readonly lost: boolean;
  run<P extends object, R>(statement: Statement<P, R>, params: P): Promise<R[]>;
  /** Opens the cursor `name` with `statement` (a function that OPENs it; `opened`: its rows) and reads it. */
  cursor<P extends object, O, R>(
    name: string,
    statement: Statement<P, O>,
    params: P,
  ): Promise<{ reader: CursorReader<R>; opened: O[] }>;
  /** ROLLBACK, and the connection back to the pool (discarded if broken); idempotent. */
  close(): Promise<void>;
}

export class Connection {
  /** The pool every statement runs on (shared by all workspaces of a backend). */
  readonly pool: pg.Pool;
  readonly schema: string;
  readonly #config: PostgresBackendConfig;
  readonly #ownsPool: boolean;
  #closed = false;
  /** The read sessions of open streams (beginRead, openCursor), closed by close(). */
  readonly #sessions = new Set<ReadSession>();

  constructor(config: PostgresBackendConfig, schema: string) {
    this.#config = config;
    this.schema = schema;
    this.#ownsPool = !config.pool;
    this.pool = config.pool ?? new pg.Pool(poolConfig(config));
    if (this.#ownsPool) {
      // An idle connection killed by the server must not crash the process; the pool drops it.
      this.pool.on("error", () => {});
    }
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
   * network): nothing it did can have taken effect. Writes are never retried here: a lost reply
   * could hide a committed change.
   */
  async run<P extends object, R>(statement: Statement<P, R>, params: P): Promise<R[]> {
    const { text, values } = statement.bind(this.schema, params);
    const retry = statement.readOnly;
    try {
      return (await this.pool.query(text, values)).rows;
    } catch (e) {
      if (!retry || !isConnectionLost(e)) throw e;
      return (await this.pool.query(text, values)).rows;
    }
  }

  /**
   * A cursor that `statement` opens under the name `name` (a function that OPENs it), read in
   * batches on one connection of the pool, in a transaction of its own that lasts until close():
   * one snapshot for every row, and the rows the client holds are one batch. Nothing runs on the
   * server between two reads; close() (ROLLBACK) drops the cursor, and so does close() of this
   * Connection for every cursor still open. `timeoutMs` is the open's statement_timeout (0: none,
   * as in PostgreSQL). Opening a read-only statement is retried once on a connection that turned
   * out to be dead, as run() does.
   */
  async openCursor<P extends object, O, R>(
    name: string,
    statement: Statement<P, O>,
    params: P,
    timeoutMs: number,
    snapshot: SnapshotChoice = { kind: "own" },
  ): Promise<{ reader: CursorReader<R>; opened: O[]; snapshot: string | undefined }> {
    for (let attempt = 1; ; attempt++) {
      const session = (await this.beginRead(timeoutMs, snapshot, { wait: true }))!;
      try {
        return { ...(await session.cursor<P, O, R>(name, statement, params)), snapshot: session.snapshot };
      } catch (e) {
        if (attempt === 1 && statement.readOnly && isConnectionLost(e)) continue;
        throw e;
      }
    }
  }

  /**
   * A read session (see ReadSession) under `timeoutMs` of statement_timeout (0: none). With
   * `wait: false` it takes a connection only if one is free now (idle, or room to open one, and
   * nobody queued): undefined otherwise — for work that helps but must never wait on the pool,
   * where it could wait behind the streams that hold it (a second connection of a stream).
   */
  async beginRead(
    timeoutMs: number,
    snapshot: SnapshotChoice,
    { wait }: { wait: boolean },
  ): Promise<ReadSession | undefined> {
    this.assertOpen();
    if (!wait) {
      const pool = this.pool as pg.Pool & { options: { max: number } };
      if (pool.waitingCount > 0 || (pool.idleCount === 0 && pool.totalCount >= pool.options.max)) return undefined;
    }
    const client = await this.pool.connect();
    if (this.#closed) {
      // close() ran while this waited for a connection: it could not end a session not yet begun.
      client.release();
      throw new Error(setupErrors.closed());
    }
    // Between two reads the connection is idle in its transaction, and checked out: the pool no
    // longer listens for its errors. One the server sends then (a terminated session, an
    // idle_in_transaction_session_timeout) would be an unhandled 'error' event, which ends the
    // process; it is kept here and thrown by the next read.
    let lost: Error | undefined;
    const onError = (e: Error) => {
      lost ??= e;
    };
    client.on("error", onError);
    let closed = false;
    const throwIfUnusable = async () => {
      if (lost) {
        await session.close();
        throw lost;
      }
      if (closed) throw new Error(setupErrors.closed());
    };
    const session: ReadSession & { snapshot: string | undefined } = {
      snapshot: undefined,
      get lost() {
        return lost !== undefined;
      },
      run: async (statement, params) => {
        await throwIfUnusable();
        const { text, values } = statement.bind(this.schema, params);
        try {
          return (await client.query(text, values)).rows;
        } catch (e) {
          await session.close();
          throw e;
        }
      },
      cursor: async <P extends object, O, R>(name: string, statement: Statement<P, O>, params: P) => {
        const opened = await session.run(statement, params);
        const fetch = (count: number, ms: number) =>
          `${localTimeout(ms)}; FETCH FORWARD ${Math.floor(count)} FROM ${pg.escapeIdentifier(name)}`;
        const reader: CursorReader<R> = {
          async read(count, ms) {
            await throwIfUnusable();
            try {
              // Two statements, one round trip (the simple protocol): [SET's result, FETCH's].
              const results = (await client.query(fetch(count, ms))) as unknown as pg.QueryResult[];
              return results[1].rows as R[];
            } catch (e) {
              await session.close();
              throw e;
            }
          },
          close: () => session.close(),
        };
        return { reader, opened };
      },
      close: async () => {
        if (closed) return;
        closed = true;
        this.#sessions.delete(session);
        let broken: Error | undefined = lost;
        if (!broken) await client.query("ROLLBACK").catch((e) => (broken = e));
        client.off("error", onError);
        client.release(broken); // a connection that cannot even roll back is discarded
      },
    };
    this.#sessions.add(session);
    // One round trip: BEGIN, the snapshot, the timeout (and the exported id, the last result).
    const begin =
      snapshot.kind === "own" ? ["BEGIN"] : ["BEGIN ISOLATION LEVEL REPEATABLE READ", "SET TRANSACTION READ ONLY"];
    if (snapshot.kind === "import") begin.push(`SET TRANSACTION SNAPSHOT ${pg.escapeLiteral(snapshot.id)}`);
    begin.push(localTimeout(timeoutMs));
    // (A standby cannot export a snapshot: there the session has none to share, and says so.)
    if (snapshot.kind === "export") {
      begin.push("SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_export_snapshot() END AS id");
    }
    try {
      const results = (await client.query(begin.join("; "))) as unknown as pg.QueryResult[];
      if (snapshot.kind === "export") session.snapshot = (results.at(-1)!.rows[0].id as string | null) ?? undefined;
    } catch (e) {
      await session.close();
      throw e;
    }
    return session;
  }

  /**
   * One statement in its own transaction, under `SET LOCAL statement_timeout` and/or with the
   * writer's tag (sql/set_tag.sql: the session setting file history records): a round trip to
   * begin, one to set the tag, one for the statement, one to commit.
   */
  async runInTransaction<P extends object, R>(
    settings: { timeoutMs?: number; tag?: string | null },
    statement: Statement<P, R>,
    params: P,
  ): Promise<R[]> {
    const { text, values } = statement.bind(this.schema, params);
    const begin = settings.timeoutMs === undefined ? "BEGIN" : `BEGIN; ${localTimeout(settings.timeoutMs)}`;
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
      throw e;
    } finally {
      client.release(broken); // a connection that cannot even roll back is discarded
    }
  }
}
