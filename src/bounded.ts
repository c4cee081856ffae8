/**
 * A time limit for synchronous matching in this process. JavaScript regular expressions
 * backtrack: a caller's pattern such as `(a+)+$`, or a glob such as `*a*a*a*a*a*a*a*ab` against a
 * long name, can keep one `RegExp.test` busy for minutes, and with it the whole event loop. Code
 * run through `node:vm` with a `timeout` is interrupted by V8 when the time is up (inside the
 * regex engine too), so the S3 backend runs its client-side matching through here. PostgreSQL's
 * regex engine is not backtracking and is bounded by statement_timeout instead.
 */
import vm from "node:vm";

export class MatchTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`matching took longer than ${timeoutMs} ms`);
    this.name = "MatchTimeoutError";
  }
}

const context = vm.createContext({ job: undefined as undefined | (() => unknown) });
const script = new vm.Script("job()");

/**
 * Runs `job` synchronously; if it is still running after `timeoutMs` it is interrupted and a
 * MatchTimeoutError is thrown (whatever `job` mutated so far is then incomplete: discard it).
 */
export function runBounded<T>(job: () => T, timeoutMs: number): T {
  const ms = Number.isFinite(timeoutMs) ? Math.min(2 ** 31 - 1, Math.max(1, Math.floor(timeoutMs))) : 2 ** 31 - 1; // what vm accepts
  context.job = job;
  try {
    return script.runInContext(context, { timeout: ms }) as T;
  } catch (e) {
    if ((e as { code?: string })?.code === "ERR_SCRIPT_EXECUTION_TIMEOUT") throw new MatchTimeoutError(ms);
    throw e;
  } finally {
    context.job = undefined;
  }
}

/** A point in time (ms since the epoch) by which a whole operation must be done. */
export class Deadline {
  #at: number;

  /** `timeoutMs` 0: no deadline (as PostgreSQL's statement_timeout = 0). */
  constructor(readonly timeoutMs: number) {
    this.#at = timeoutMs === 0 ? Number.POSITIVE_INFINITY : Date.now() + timeoutMs;
  }

  get at(): number {
    return this.#at;
  }

  /** Moves the deadline later by `ms`: time that does not count (a stream's consumer's). */
  postpone(ms: number): void {
    this.#at += ms;
  }

  /** Runs `job` with the time that is left (none left: MatchTimeoutError at once). */
  run<T>(job: () => T): T {
    const left = this.at - Date.now();
    if (left <= 0) throw new MatchTimeoutError(this.timeoutMs);
    try {
      return runBounded(job, left);
    } catch (e) {
      if (e instanceof MatchTimeoutError) throw new MatchTimeoutError(this.timeoutMs);
      throw e;
    }
  }
}
