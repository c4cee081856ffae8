/**
 * The second half of a streamed search, read ahead on a second connection (migration 0025).
 *
 * A search the trigram index cannot narrow reads every chunk of its scope, and one cursor does
 * that on one backend: one core. So while the stream's own cursor (the head) reads the scope from
 * its start, a tail cuts the scope at its middle by bytes (fs_search_split) and reads the second
 * half on a connection of its own, in the head's snapshot (exported by the head, imported here:
 * the same rows), ahead of the consumer, up to a bounded number of bytes. When the head reaches
 * the cut, the stream closes the head and goes on with the tail: the same rows in the same order
 * as the head alone would have given.
 *
 * The tail only ever helps. It starts only if the pool has a connection free at once (waiting for
 * one could wait behind the very streams that hold the pool), and until the stream switches to it
 * any failure of it (no connection, a timeout, a lost connection) just drops it: the head is still
 * open and reads on past the cut, as it would have without a tail.
 */
import type { GrepMatch } from "../protocol.js";
import type { Connection, ReadSession } from "./connection.js";
import * as sql from "./sql/queries.js";

/** What the tail needs of the stream: where it searches, and the cursor name and batch size. */
export interface TailRequest {
  connection: Connection;
  snapshot: string;
  open: Omit<sql.SearchOpenParams, "from" | "to">;
  /** Text bytes the scope must hold for a tail to be worth a connection. */
  minBytes: number;
  /** Bytes of rows the tail may hold ahead of the consumer (an estimate: JavaScript strings). */
  aheadBytes: number;
  batch: number;
  /** The server time the stream has left now, in ms (0: no limit). */
  budget: () => number;
}

/** A row's share of the read-ahead bound: its strings (UTF-16) and the object around them. */
const rowBytes = (r: GrepMatch) => 2 * (r.path.length + r.text.length) + 64;

export class StreamTail {
  /** The first path of the tail's part, once its cursor is open (the head stops there). */
  from: string | undefined;
  #failed = false;
  #done = false;
  #closed = false;
  /** A step is in flight on the tail's connection (#busy). */
  #inFlight = false;
  #session: ReadSession | undefined;
  readonly #ahead: GrepMatch[][] = [];
  #aheadBytes = 0;
  /** Resolved when the consumer takes rows (the reader waits on it when ahead is full). */
  #taken: (() => void) | undefined;
  /** Resolved when the reader adds rows or stops (the consumer waits on it when ahead is empty). */
  #added: (() => void) | undefined;
  #error: unknown;
  readonly #request: TailRequest;

  constructor(request: TailRequest) {
    this.#request = request;
    void this.#run();
  }

  /**
   * Whether the stream can switch to the tail: it opened, has not failed, and its connection was
   * not dropped while it waited (a switch to it would then end the stream with an error).
   */
  get usable(): boolean {
    return this.from !== undefined && !this.#failed && !this.#closed && !(!this.#done && this.#session?.lost);
  }

  async #run(): Promise<void> {
    const r = this.#request;
    try {
      const session = await this.#busy(() =>
        r.connection.beginRead(r.budget(), { kind: "import", id: r.snapshot }, { wait: false }),
      );
      this.#session = session;
      if (!session || this.#closed) return this.#fail(undefined);
      const [{ bounds }] = await this.#busy(() =>
        session.run(sql.searchSplit, {
          workspace: r.open.workspace,
          path: r.open.path,
          allowExact: r.open.allowExact,
          parts: 2,
          minBytes: r.minBytes,
        }),
      );
      if (bounds.length === 0 || this.#closed) return this.#fail(undefined);
      const { reader } = await this.#busy(() =>
        session.cursor<sql.SearchOpenParams, unknown, GrepMatch>(r.open.cursor, sql.searchOpen, {
          ...r.open,
          from: bounds[0],
          to: null,
        }),
      );
      if (this.#closed) return this.#fail(undefined);
      this.from = bounds[0];
      while (!this.#closed) {
        while (this.#aheadBytes >= r.aheadBytes && !this.#closed) await new Promise<void>((go) => (this.#taken = go));
        if (this.#closed) return;
        const rows = await this.#busy(() => reader.read(r.batch, r.budget()));
        if (this.#closed) return;
        if (rows.length < r.batch) {
          this.#done = true;
          await session.close(); // every row is here: the connection goes back to the pool first
        }
        this.#ahead.push(rows);
        for (const row of rows) this.#aheadBytes += rowBytes(row);
        this.#wake();
        if (this.#done) return;
      }
    } catch (e) {
      this.#fail(e);
    }
  }

  /**
   * Runs one step on the tail's connection. close() does not wait for a step in flight (nor
   * cancel it: by the time a cancel arrived, the backend could be serving another query); the
   * session is closed when the step returns, if close() came meanwhile.
   */
  async #busy<T>(step: () => Promise<T>): Promise<T> {
    this.#inFlight = true;
    try {
      return await step();
    } finally {
      this.#inFlight = false;
      if (this.#closed) void this.#session?.close();
    }
  }

  #fail(e: unknown): void {
    this.#failed = true;
    this.#error = e;
    this.#wake();
    void this.close();
  }

  #wake(): void {
    this.#added?.();
    this.#added = undefined;
  }

  /**
   * The tail's rows in order, batch by batch, once the stream has switched to it: first what it
   * read ahead, then the rest as it reads it. A failure after the switch is the stream's failure.
   * `spend` is told the time the consumer waited for each batch (the stream's budget counts it).
   */
  async *rows(spend: (ms: number) => void): AsyncGenerator<GrepMatch[]> {
    for (;;) {
      if (this.#ahead.length === 0) {
        if (this.#failed) throw this.#error ?? new Error("the second half of the search stopped");
        if (this.#done) return;
        const waiting = performance.now();
        await new Promise<void>((go) => (this.#added = go));
        spend(performance.now() - waiting);
        continue;
      }
      const rows = this.#ahead.shift()!;
      for (const row of rows) this.#aheadBytes -= rowBytes(row);
      this.#taken?.();
      this.#taken = undefined;
      yield rows;
    }
  }

  /**
   * Ends the tail's transaction and frees its connection; idempotent. A step in flight is not
   * waited for (#busy closes the session when it returns, within the stream's budget).
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#taken?.();
    this.#taken = undefined;
    if (!this.#inFlight) await this.#session?.close();
  }
}
