/** Shared by the benchmarks: medians of timed runs, and a database (DATABASE_URL or embedded). */
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { startEmbeddedPostgres } from "../src/postgres/embedded/index.js";

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Median wall time in ms of `runs` calls after one warm-up call. */
export async function timeMedian(fn: () => Promise<unknown>, runs: number): Promise<number> {
  await fn();
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    samples.push(performance.now() - t);
  }
  return median(samples);
}

/** DATABASE_URL when set, else a throwaway embedded server; `stop()` removes the latter. */
export async function benchDatabase(): Promise<{ url: string; embedded: boolean; stop: () => Promise<void> }> {
  if (process.env.DATABASE_URL) return { url: process.env.DATABASE_URL, embedded: false, stop: async () => {} };
  const dir = await mkdtemp(path.join(tmpdir(), "bench-pg-"));
  const server = await startEmbeddedPostgres({ dataDir: dir, persistent: false });
  return {
    url: server.connectionString,
    embedded: true,
    stop: async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A file of a benchmark corpus: its workspace path, its path on disk ("" if planted), its bytes. */
export type CorpusFile = [path: string, disk: string, bytes: Buffer];

/**
 * The text files under `root` in path order (non-empty, under 1 MiB, no NUL byte; with `name`,
 * only those whose name it matches) until `limit` bytes: the corpus of bench:streams and
 * bench:shell, and through corpusOf() those of bench:after-upload and bench:cluster.
 */
export async function corpusFiles(
  root: string,
  limit: number,
  name?: RegExp,
): Promise<{ files: CorpusFile[]; bytes: number }> {
  const files: CorpusFile[] = [];
  const total = { bytes: 0 };
  async function walk(dir: string): Promise<void> {
    for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (total.bytes >= limit) return;
      const full = path.join(dir, e.name);
      if (e.isDirectory()) await walk(full);
      else if (e.isFile() && (!name || name.test(e.name))) {
        const s = await stat(full);
        if (s.size === 0 || s.size > 1 << 20) continue;
        const b = await readFile(full);
        if (b.includes(0)) continue;
        files.push([`/${path.relative(root, full).split(path.sep).join("/")}`, full, b]);
        total.bytes += b.length;
      }
    }
  }
  await walk(root);
  return { files, bytes: total.bytes };
}

/** Writes the corpus under `dir` (the same tree on local disk, for GNU tools and imports). */
export async function writeCorpus(dir: string, files: CorpusFile[]): Promise<void> {
  for (const [p, , b] of files) {
    await mkdir(path.dirname(path.join(dir, p)), { recursive: true });
    await writeFile(path.join(dir, p), b);
  }
}

/** The files of `root` (this repository's node_modules) whose names match `name`: [path, bytes]. */
export async function corpusOf(root: string, name: RegExp): Promise<Array<[string, Buffer]>> {
  return (await corpusFiles(root, Number.POSITIVE_INFINITY, name)).files.map(([p, , b]) => [p, b]);
}
