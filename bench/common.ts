/** Shared by the benchmarks: medians of timed runs, and a database (DATABASE_URL or embedded). */
import { mkdtemp, rm } from "node:fs/promises";
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
