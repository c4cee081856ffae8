/**
 * The second half of a streamed search, read ahead on a second connection (migration 0025).
 *
 * A search the trigram index cannot narrow reads every chunk of its scope, and one cursor does
 * that on one backend: one core. So while the stream's own cursor (the head) reads the scope from
 * its start, a tail cuts the scope at its middle by bytes (fs_search_split) and reads the second
 * half on a connection of its own, in the head's snapshot (exported by the head, imported here:
 * the same rows), ahead of the consumer, up to a bounded number of bytes. When the head reaches
 * the cut, the stream closes the head and goes on with the tail (adopt()): the same rows in the
 * same order as the head alone would have given.
 *
 * Until then the tail only ever helps, and never holds a connection someone else needs: it starts
 * only if the pool would still have one free after it, and it gives its connection back (and is
 * dropped) as soon as a call of the backend would wait for the pool, or anyone waits on it — the
 * consumer's own calls inside its loop included. Any failure of it before the switch (no
 * connection, a timeout, a lost connection) just drops it: the head is still open and reads on
 * past the cut, as it would have without a tail. Dropping or closing it cancels a FETCH in flight.
 */
import { MatchTimeoutError } from "../bounded.js";
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
  /** The stream's budget of server time, in ms (0: no limit); the tail spends its own. */
  timeoutMs: number;
}

/** A row's share of the read-ahead bound: its strings (UTF-16) and the object around them. */
const rowBytes = (r: GrepMatch) => 2 * (r.path.length + r.text.length) + 64;
/** How often a tail waiting for the consumer looks whether anyone waits on the pool, in ms. */
const POOL_CHECK_MS = 50;

export class StreamTail {
  /** The first path of the tail's part, once its cursor is open (the head stops there). */
  from: string | undefined;
  #failed = false;
  #done = false;
  #closed = false;
  /** The stream switched to it: from now on it is the stream's connection, not a helper. */
  #adopted = false;
  #session: ReadSession | undefined;
  readonly #ahead: GrepMatch[][] = [];
  #aheadBytes = 0;
  /** Resolved when the consumer takes rows (the reader waits on it when ahead is full). */
  #taken: (() => void) | undefined;
  /** Resolved when the reader adds rows or stops (the consumer waits on it when ahead is empty). */
  #added: (() => void) | undefined;
  #error: unknown;
  /** The tail's own server time so far (its FETCHes run under what is left of the budget). */
  #spent = 0;
  readonly #request: TailRequest;
  readonly #unregister: () => void;

  constructor(request: TailRequest) {
    this.#request = request;
    this.#unregister = request.connection.onPoolWait(() => this.#drop());
    void this.#run();
  }

  /**
   * Whether the stream can switch to the tail: it opened, has not failed, and its connection was
   * not dropped while it waited (a switch to it would then end the stream with an error).
   */
  get usable(): boolean {
    return this.from !== undefined && !this.#failed && !this.#closed && !(!this.#done && this.#session?.lost);
  }

  /** Someone waits for the pool: until the switch, the tail is the one to give way. */
  #othersWait(): boolean {
    return !this.#adopted && this.#request.connection.pool.waitingCount > 0;
  }

  async #run(): Promise<void> {
    const r = this.#request;
    try {
      const session = await r.connection.beginRead(r.timeoutMs, { kind: "import", id: r.snapshot }, { wait: false });
      this.#session = session;
      if (!session) return this.#fail(undefined);
      if (this.#closed) return void (await session.close()); // closed while it was being begun
      const [{ bounds }] = await session.run(sql.searchSplit, {
        workspace: r.open.workspace,
        path: r.open.path,
        allowExact: r.open.allowExact,
        parts: 2,
        minBytes: r.minBytes,
      });
      if (bounds.length === 0 || this.#closed) return this.#fail(undefined);
      const { reader } = await session.cursor<sql.SearchOpenParams, unknown, GrepMatch>(r.open.cursor, sql.searchOpen, {
        ...r.open,
        from: bounds[0],
        to: null,
      });
      if (this.#closed) return this.#fail(undefined);
      this.from = bounds[0];
      while (!this.#closed) {
        // Ahead of the consumer by its bound (always by one batch at least): wait for it to take.
        while (this.#ahead.length > 0 && this.#aheadBytes >= r.aheadBytes && !this.#closed) {
          if (this.#othersWait()) return this.#drop();
          await new Promise<void>((go) => {
            this.#taken = go;
            setTimeout(go, POOL_CHECK_MS).unref();
          });
        }
        if (this.#closed) return;
        if (this.#othersWait()) return this.#drop();
        const started = performance.now();
        const rows = await reader.read(r.batch, this.#left());
        this.#spent += performance.now() - started;
        if (this.#closed) return;
        if (rows.length < r.batch) {
          this.#done = true;
          this.#unregister(); // nothing left to give back
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

  /** What is left of the budget for the tail's next FETCH (0: no limit). */
  #left(): number {
    const { timeoutMs } = this.#request;
    if (timeoutMs === 0) return 0;
    if (this.#spent >= timeoutMs) throw new MatchTimeoutError(timeoutMs);
    return Math.max(1, timeoutMs - this.#spent);
  }

  /** Gives the connection back before the switch (someone else needs it); the head reads on. */
  #drop(): void {
    if (!this.#adopted && !this.#done) this.#fail(undefined);
  }

  /**
   * The stream switches to the tail if it can: true when it was usable, and from now on it is
   * the stream's (no longer dropped for others); the caller then closes the head and reads
   * adopt(). Synchronous, so nothing can drop the tail between this check and the switch.
   */
  claim(): boolean {
    if (!this.usable) return false;
    this.#adopted = true;
    this.#unregister();
    return true;
  }

  #fail(e: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#error = e;
    this.#ahead.length = 0; // nobody will take them
    this.#aheadBytes = 0;
    this.#wake();
    void this.close();
  }

  #wake(): void {
    this.#added?.();
    this.#added = undefined;
  }

  /**
   * After claim(): the tail's rows in order, batch by batch, first what it read ahead,
   * then the rest as it reads it. A failure from now on is the stream's. `spend` is told the time
   * the consumer waited for each batch; `overBudget` says the stream's budget is spent (checked
   * before each wait: a batch already here is handed over).
   */
  async *adopt(spend: (ms: number) => void, overBudget: () => boolean, timeoutMs: number): AsyncGenerator<GrepMatch[]> {
    for (;;) {
      if (this.#ahead.length === 0) {
        if (this.#failed) throw this.#error ?? new Error("the second half of the search stopped");
        if (this.#done) return;
        if (overBudget()) throw new MatchTimeoutError(timeoutMs);
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
   * Ends the tail's transaction and frees its connection, cancelling a FETCH in flight (the
   * read session waits for it to stop); idempotent.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#unregister();
    this.#taken?.();
    this.#taken = undefined;
    this.#wake();
    await this.#session?.close();
  }
}
