/**
 * Lost-update workloads shared by the PostgreSQL and S3 reliability tests (and run against
 * deepagents' StoreBackend as the baseline):
 *
 * - editStorm: W workers each make E edit() calls, every call replacing that worker's own unique
 *   token in one of F shared files. Nothing is lost when every token ends up replaced.
 * - counterStorm: W workers each add K to a counter file by read → +1 → write(..., { ifVersion })
 *   and retry on a version conflict. Nothing is lost when the counter ends at W × K and every
 *   value 1..W×K was written by exactly one successful write.
 */

/** The part of a backend the workloads use (PostgresBackend, S3Backend and StoreBackend have it). */
export interface EditTarget {
  write(path: string, content: string): Promise<{ error?: string }>;
  edit(path: string, oldString: string, newString: string): Promise<{ error?: string; occurrences?: number }>;
  downloadFiles(paths: string[]): Promise<Array<{ content: Uint8Array | null; error: string | null }>>;
}

/** write/stat with a compare-and-set version: a number on PostgreSQL, an ETag on S3. */
export interface VersionedTarget<V> {
  write(path: string, content: string, options?: { ifVersion?: V | 0 }): Promise<{ error?: string; version?: V }>;
  stat(path: string): Promise<{ error?: string; data?: { version: V } }>;
  downloadFiles(paths: string[]): Promise<Array<{ content: Uint8Array | null; error: string | null }>>;
}

export interface EditStormOptions {
  workers: number;
  editsPerWorker: number;
  files: number;
  /** Directory the shared files go in (default /storm). */
  dir?: string;
}

export interface EditStormResult {
  /** edit() calls made (workers × editsPerWorker). */
  edits: number;
  /** Calls that returned success. */
  reportedOk: number;
  /** Error results, verbatim (none expected from a backend that keeps every edit). */
  errors: string[];
  /** Replaced tokens found in the final files. */
  present: number;
  /** Edits reported as successful whose replacement is missing at the end. */
  lost: number;
  /** Tokens still in their original form at the end. */
  pending: number;
  ms: number;
  /** Final file contents, by path. */
  finals: Map<string, string>;
  /** What every file must contain when no edit was lost. */
  expected: Map<string, string>;
}

const pad = (n: number) => String(n).padStart(3, "0");
/** Unique, and no token is a substring of another (fixed width, bracketed). */
const token = (w: number, e: number) => `<w${pad(w)}e${pad(e)}>`;
const replaced = (w: number, e: number) => `[w${pad(w)}e${pad(e)}]`;

function layout({ workers, editsPerWorker, files, dir = "/storm" }: EditStormOptions) {
  const paths = Array.from({ length: files }, (_, f) => `${dir}/shared-${f}.txt`);
  const fileOf = (w: number) => paths[w % files];
  const render = (done: (w: number, e: number) => boolean) =>
    new Map(
      paths.map((path, f) => {
        const lines: string[] = [];
        for (let w = f; w < workers; w += files) {
          for (let e = 0; e < editsPerWorker; e++)
            lines.push(`${done(w, e) ? replaced(w, e) : token(w, e)} worker ${w} edit ${e}`);
        }
        return [path, lines.join("\n") + "\n"];
      }),
    );
  return { paths, fileOf, render };
}

async function downloadText(target: Pick<EditTarget, "downloadFiles">, paths: string[]): Promise<Map<string, string>> {
  const results = await target.downloadFiles(paths);
  return new Map(
    results.map((r, i) => {
      if (r.error || !r.content) throw new Error(`download of ${paths[i]} failed: ${r.error}`);
      return [paths[i], Buffer.from(r.content).toString("utf8")];
    }),
  );
}

/**
 * Runs the edit storm. `targets` are the clients the workers use (worker w uses
 * targets[w % targets.length]: several backend objects stand for several replicas).
 */
export async function editStorm(targets: EditTarget[], options: EditStormOptions): Promise<EditStormResult> {
  const { workers, editsPerWorker } = options;
  const { paths, fileOf, render } = layout(options);
  for (const [path, content] of render(() => false)) {
    const r = await targets[0].write(path, content);
    if (r.error) throw new Error(`setup write of ${path} failed: ${r.error}`);
  }
  const errors: string[] = [];
  const ok: Array<[number, number]> = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      const target = targets[w % targets.length];
      for (let e = 0; e < editsPerWorker; e++) {
        const r = await target.edit(fileOf(w), token(w, e), replaced(w, e));
        if (r.error) errors.push(r.error);
        else ok.push([w, e]);
      }
    }),
  );
  const ms = performance.now() - started;
  const finals = await downloadText(targets[0], paths);
  let present = 0;
  let pending = 0;
  let lost = 0;
  for (const [w, e] of ok) if (!finals.get(fileOf(w))!.includes(replaced(w, e))) lost++;
  for (let w = 0; w < workers; w++) {
    for (let e = 0; e < editsPerWorker; e++) {
      if (finals.get(fileOf(w))!.includes(replaced(w, e))) present++;
      if (finals.get(fileOf(w))!.includes(token(w, e))) pending++;
    }
  }
  return {
    edits: workers * editsPerWorker,
    reportedOk: ok.length,
    errors,
    present,
    lost,
    pending,
    ms,
    finals,
    expected: render(() => true),
  };
}

export interface CounterStormOptions {
  workers: number;
  incrementsPerWorker: number;
  path?: string;
  /** A write refused for this reason is retried; anything else is a failure. */
  conflict?: RegExp;
}

export interface CounterStormResult {
  final: number;
  /** Value each successful write stored, in completion order. */
  written: number[];
  /** Writes refused as version conflicts (and retried). */
  conflicts: number;
  /** Reads that saw the version change between stat and content (retried). */
  tornReads: number;
  errors: string[];
  ms: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The content and the version it belongs to: stat, read, stat again; equal versions mean no write
 * landed in between (versions never repeat for different contents), so the content is that version's.
 */
async function readVersioned<V>(
  target: VersionedTarget<V>,
  path: string,
): Promise<{ content: string; version: V } | null> {
  const before = await target.stat(path);
  if (before.error) throw new Error(`stat ${path}: ${before.error}`);
  const [download] = await target.downloadFiles([path]);
  if (download.error || !download.content) throw new Error(`download ${path}: ${download.error}`);
  const after = await target.stat(path);
  if (after.error) throw new Error(`stat ${path}: ${after.error}`);
  if (before.data!.version !== after.data!.version) return null;
  return { content: Buffer.from(download.content).toString("utf8"), version: after.data!.version };
}

export async function counterStorm<V>(
  targets: VersionedTarget<V>[],
  options: CounterStormOptions,
): Promise<CounterStormResult> {
  const { workers, incrementsPerWorker, path = "/counter.txt", conflict = /^Error: Version conflict on / } = options;
  const setup = await targets[0].write(path, "0");
  if (setup.error) throw new Error(`setup write failed: ${setup.error}`);
  const written: number[] = [];
  const errors: string[] = [];
  let conflicts = 0;
  let tornReads = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      const target = targets[w % targets.length];
      for (let i = 0; i < incrementsPerWorker; i++) {
        for (let attempt = 0; ; attempt++) {
          if (attempt > 10_000) throw new Error(`worker ${w} made no progress in 10,000 attempts`);
          const seen = await readVersioned(target, path);
          if (seen === null) {
            tornReads++;
            continue;
          }
          const next = Number(seen.content) + 1;
          const r = await target.write(path, String(next), { ifVersion: seen.version });
          if (!r.error) {
            written.push(next);
            break;
          }
          if (!conflict.test(r.error)) {
            errors.push(r.error);
            break;
          }
          conflicts++;
          await sleep(Math.random() * Math.min(20, 2 ** Math.min(attempt, 5))); // jittered backoff
        }
      }
    }),
  );
  const ms = performance.now() - started;
  const [download] = await targets[0].downloadFiles([path]);
  const final = Number(Buffer.from(download.content ?? []).toString("utf8"));
  return { final, written, conflicts, tornReads, errors, ms };
}

/** Each of 1..n exactly once. */
export function isPermutationOfOneTo(values: number[], n: number): boolean {
  if (values.length !== n) return false;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.every((v, i) => v === i + 1);
}
