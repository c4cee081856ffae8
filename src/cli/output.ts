/** Exit codes, one-line errors, and human or --json output for the CLI. */
import { once } from "node:events";

export const EXIT = {
  ok: 0,
  /** Not found, no match, or an operation that failed for a reason the message gives. */
  failure: 1,
  usage: 2,
  connection: 3,
} as const;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failure,
  ) {
    super(message);
    this.name = "CliError";
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(
    JSON.stringify(value, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString("base64") : v), 2) + "\n",
  );
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** A plain text table: columns padded, numbers right-aligned. */
export function table(header: string[], rows: Array<Array<string | number>>): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === "number"));
  return cells
    .map((r) =>
      r
        .map((c, i) => (numeric[i] ? c.padStart(widths[i]) : c.padEnd(widths[i])))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** A protocol `{ error }` result becomes a CliError (exit 1); otherwise the result is returned. */
export function orFail<T extends { error?: string }>(result: T): T {
  if (result.error) throw new CliError(result.error.replace(/^Error: /, ""), EXIT.failure);
  return result;
}

/**
 * Lines written to standard output as they come (grep's matches): gathered while they arrive
 * together (one write per 64 kB, or whenever the producer waits: a write per line cost a third
 * of a 148,000-line grep), waiting while the pipe is full so a slow reader cannot make this
 * process hold the output. line() says false once nothing more can be written (the reader went
 * away, `... | head`: EPIPE; or a write failed, which quietStdoutErrors reports), so the caller
 * stops producing. end() writes what is gathered and waits until it was handed on.
 */
export class LineOutput {
  #gone = false;
  #pending: string[] = [];
  #size = 0;
  #scheduled = false;
  /** The last write() said the stream's buffer is full: wait for "drain" before more. */
  #full = false;
  readonly #stream: NodeJS.WritableStream;

  constructor(stream: NodeJS.WritableStream = process.stdout) {
    this.#stream = stream;
    // Whatever the error, nothing more can be written: stop (quietStdoutErrors reports it).
    stream.on("error", () => {
      this.#gone = true;
      stream.emit("drain"); // wake a writer waiting for room
    });
    stream.on("drain", () => (this.#full = false));
  }

  async line(text: string): Promise<boolean> {
    if (this.#full) await once(this.#stream, "drain");
    if (this.#gone) return false;
    this.#pending.push(text, "\n");
    this.#size += text.length + 1;
    if (this.#size >= 65536) this.#write();
    else if (!this.#scheduled) {
      // Written as soon as the producer waits (its next rows are a round trip away).
      this.#scheduled = true;
      setImmediate(() => this.#write());
    }
    return true;
  }

  /** Writes what is gathered; resolves once the stream has handed it on (or failed). */
  async end(): Promise<void> {
    this.#write();
    if (!this.#gone) await new Promise<void>((resolve) => this.#stream.write("", () => resolve()));
  }

  #write(): void {
    this.#scheduled = false;
    if (this.#pending.length === 0 || this.#gone) return;
    const chunk = this.#pending.join("");
    this.#pending = [];
    this.#size = 0;
    if (!this.#stream.write(chunk)) this.#full = true;
  }
}

/**
 * Resolves once what was written to standard output has been handed to the system: process.exit()
 * drops what a slow pipe has not taken yet (a grep into a slow reader lost its last lines). A
 * stdout that failed or closed resolves it too (quietStdoutErrors reports the error).
 */
export function flushStdout(): Promise<void> {
  return new Promise((resolve) => {
    if (process.stdout.destroyed || !process.stdout.writable) return resolve();
    const done = () => {
      process.stdout.off("error", done);
      resolve();
    };
    process.stdout.once("error", done);
    process.stdout.write("", done);
  });
}

let stdoutErrorsHandled = false;

/**
 * One handler for standard output's errors for the whole run: a reader that went away (EPIPE:
 * `... | head`) is not an error of the command; any other (a full disk) is one line on stderr and
 * exit code 1 — never an unhandled 'error' event with a stack trace.
 */
export function quietStdoutErrors(): void {
  if (stdoutErrorsHandled) return; // once per process, however many times main() runs
  stdoutErrorsHandled = true;
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") return;
    if (process.exitCode === undefined || process.exitCode === 0) {
      console.error(`error: cannot write the output: ${e.message}`);
      process.exitCode = EXIT.failure;
    }
  });
}
