/**
 * A read session: a pooled connection in a transaction of its own (Connection.beginRead), for a
 * stream's cursor and the statements around it. It keeps the connection's errors while it is
 * checked out, and its close() never leaves a statement running on the server.
 */
import pg from "pg";
import { setupErrors } from "../protocol.js";
import { cancelBackend, exportSnapshot } from "./sql/queries.js";
import type { Statement } from "./sql/statement.js";

/** The statement that sets this transaction's statement_timeout, in ms (0: none, as in PostgreSQL). */
export function localTimeout(ms: number): string {
  return `SET LOCAL statement_timeout = ${Math.max(0, Math.floor(ms))}`;
}

/** A server-side cursor being read (ReadSession.cursor, Connection.openCursor). */
export interface CursorReader<R> {
  /** Up to `count` more rows, fewer only at the end; the FETCH runs under `timeoutMs` of server time. */
  read(count: number, timeoutMs: number): Promise<R[]>;
  /** Ends the cursor's transaction and gives its connection back to the pool; idempotent. */
  close(): Promise<void>;
}

/** Which snapshot a read session reads in. */
export type SnapshotChoice =
  /** Its own, as any transaction (READ COMMITTED: a cursor keeps the one it was opened in). */
  | { kind: "own" }
  /** Its own, in a READ ONLY REPEATABLE READ transaction, which exportSnapshot() can share. */
  | { kind: "repeatable" }
  /** The snapshot another session exported, READ ONLY REPEATABLE READ: the same rows as that one. */
  | { kind: "import"; id: string };

/** Statements, then at most one cursor, whose close() ends the session too. */
export interface ReadSession {
  /** The server dropped its connection (its next step will fail): an error event came while idle. */
  readonly lost: boolean;
  run<P extends object, R>(statement: Statement<P, R>, params: P): Promise<R[]>;
  /** Opens the cursor `name` with `statement` (a function that OPENs it; `opened`: its rows) and reads it. */
  cursor<P extends object, O, R>(
    name: string,
    statement: Statement<P, O>,
    params: P,
  ): Promise<{ reader: CursorReader<R>; opened: O[] }>;
  /**
   * The id of this REPEATABLE READ transaction's snapshot (the one its cursor reads), for other
   * sessions to import; undefined on a standby, which cannot export one.
   */
  exportSnapshot(): Promise<string | undefined>;
  /**
   * Cancels a statement still running (a read-ahead FETCH), waits for it, then ROLLBACK, and the
   * connection back to the pool (discarded if broken); idempotent.
   */
  close(): Promise<void>;
}

/**
 * Asks the server to cancel what backend `pid` runs, on a connection of its own (the pool may
 * have none free). `pid` is pg_backend_pid() as this session's transaction saw it (behind a
 * transaction pooler, the client's process id is the pooler's, not the server's). Called only
 * while the session still holds that backend, in its transaction, and its statement is running:
 * a cancel that arrives once it is idle is ignored by the server, and the backend cannot serve
 * anyone else's query before the session has ended its transaction, after this returned.
 */
async function cancelOn(config: pg.ClientConfig, schema: string, pid: number): Promise<void> {
  const side = new pg.Client({ ...config, connectionTimeoutMillis: 5_000, statement_timeout: 5_000 });
  try {
    await side.connect();
    await cancelBackend.run(side, schema, { pid });
  } catch {
    // Could not cancel: close() then waits for the statement to end on its own (its timeout).
  } finally {
    await side.end().catch(() => {});
  }
}

/** Begins the session on `client` (checked out of the pool); `release` gives it back. */
export async function beginReadSession(options: {
  client: pg.PoolClient;
  schema: string;
  snapshot: SnapshotChoice;
  timeoutMs: number;
  /** The settings of a connection of its own (for the cancel). */
  clientConfig: () => pg.ClientConfig;
  /** Called once, when the session ends. */
  ended: (session: ReadSession) => void;
}): Promise<ReadSession> {
  const { client, schema, snapshot } = options;
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
  /** The backend's pid, read in the session's first round trip (for the cancel). */
  let pid: number | undefined;
  /** The statement in flight. Steps never overlap: each caller awaits the one before. */
  let running: Promise<unknown> | undefined;
  /** One statement on the connection, remembered while it runs (close() cancels it). */
  const query = async <T>(run: () => Promise<T>): Promise<T> => {
    if (lost) {
      await session.close();
      throw lost;
    }
    if (closed) throw new Error(setupErrors.closed());
    const step = run();
    running = step;
    try {
      return await step;
    } catch (e) {
      if (running === step) running = undefined; // it ended: close() has nothing to cancel
      const closing = closed; // close() came first and cancelled it: the session is closed
      await session.close();
      throw closing ? new Error(setupErrors.closed()) : e;
    } finally {
      if (running === step) running = undefined;
    }
  };
  const session: ReadSession = {
    get lost() {
      return lost !== undefined;
    },
    run: (statement, params) => {
      const { text, values } = statement.bind(schema, params);
      return query(async () => (await client.query(text, values)).rows);
    },
    cursor: async <P extends object, O, R>(name: string, statement: Statement<P, O>, params: P) => {
      const opened = await session.run(statement, params);
      const fetch = (count: number, ms: number) =>
        `${localTimeout(ms)}; FETCH FORWARD ${Math.floor(count)} FROM ${pg.escapeIdentifier(name)}`;
      const reader: CursorReader<R> = {
        // Two statements, one round trip (the simple protocol): [SET's result, FETCH's].
        read: (count, ms) =>
          query(async () => ((await client.query(fetch(count, ms))) as unknown as pg.QueryResult[])[1].rows as R[]),
        close: () => session.close(),
      };
      return { reader, opened };
    },
    exportSnapshot: async () => (await session.run(exportSnapshot, {}))[0].id ?? undefined,
    close: async () => {
      if (closed) return;
      closed = true;
      options.ended(session);
      // (The statement as it was now: `running` is cleared when it ends, maybe during the cancel.)
      const pending = running;
      if (pending && !lost && pid !== undefined) {
        await cancelOn(options.clientConfig(), schema, pid);
        await pending.catch(() => {});
      }
      let broken: Error | undefined = lost;
      if (!broken) await client.query("ROLLBACK").catch((e) => (broken = e));
      client.off("error", onError);
      client.release(broken); // a connection that cannot even roll back is discarded
    },
  };
  // One round trip: BEGIN, the snapshot, the timeout, the backend's pid.
  const begin =
    snapshot.kind === "own" ? ["BEGIN"] : ["BEGIN ISOLATION LEVEL REPEATABLE READ", "SET TRANSACTION READ ONLY"];
  if (snapshot.kind === "import") begin.push(`SET TRANSACTION SNAPSHOT ${pg.escapeLiteral(snapshot.id)}`);
  begin.push(localTimeout(options.timeoutMs), "SELECT pg_catalog.pg_backend_pid() AS pid");
  const results = await query(async () => (await client.query(begin.join("; "))) as unknown as pg.QueryResult[]);
  pid = results.at(-1)!.rows[0].pid as number;
  return session;
}
