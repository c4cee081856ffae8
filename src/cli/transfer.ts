/**
 * import <dir> and export <dir>: bulk, batched (one upload/download call per batch, so one
 * round trip per batch on PostgreSQL), byte-exact, with a progress bar on a terminal.
 */
import { readFile } from "node:fs/promises";
import cliProgress from "cli-progress";
import { mapLimit } from "../concurrency.js";
import type { FileUploadResponse } from "../protocol.js";
import type { DeepAgentsBackend } from "../core/interface.js";
import { normalizePath, normalizeFilePath, dirPrefix } from "../paths.js";
import { walk, writeUnder, prepareRoot, DEFAULT_SKIPS, type LocalFile } from "./files.js";
import { formatBytes } from "./output.js";

type Files = DeepAgentsBackend;

const BATCH_FILES = 500;
const BATCH_BYTES = 16 * 1024 * 1024;
const WRITE_CONCURRENCY = 8;
/**
 * Uploads in flight during an import. Two use both cores of a small server: the trigram index
 * and the chunk cut are CPU work in the backend serving each upload (measured: 100 MiB of C
 * source, PostgreSQL 15, 2 cores: 3.0 MiB/s with one, 6.1 with two).
 */
const UPLOAD_CONCURRENCY = 2;

export interface TransferReport {
  files: number;
  bytes: number;
  failed: Array<{ path: string; error: string }>;
  seconds: number;
}

function progress(total: number, label: string, quiet: boolean) {
  if (quiet || !process.stderr.isTTY) return { update: (_n: number) => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {percentage}% | {value}/{total} files | {bytes}`,
      stream: process.stderr,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { bytes: "0 B" });
  let bytes = 0;
  return {
    update: (n: number, addBytes = 0) => {
      bytes += addBytes;
      bar.update(n, { bytes: formatBytes(bytes) });
    },
    stop: () => bar.stop(),
  };
}

export async function importDir(
  backend: Files,
  dir: string,
  { prefix = "/", includeAll = false, quiet = false } = {},
): Promise<TransferReport> {
  const started = Date.now();
  const base = dirPrefix(normalizePath(prefix, { emptyIsRoot: true }).path);
  const report: TransferReport = { files: 0, bytes: 0, failed: [], seconds: 0 };
  // A file or directory that vanishes or cannot be read is one failure, not the end of the run.
  const found = await walk(dir, {
    skip: includeAll ? [] : DEFAULT_SKIPS,
    gitignore: !includeAll,
    onError: (relative, e) => report.failed.push({ path: relative, error: `cannot read: ${e.message}` }),
  });
  const local = withoutCollisions(found, base, report);
  const bar = progress(local.length, "import", quiet);
  // Batches of up to BATCH_FILES files and BATCH_BYTES (a bigger file alone), by the sizes walk()
  // saw; each is read when an upload slot takes it, so at most UPLOAD_CONCURRENCY are in memory.
  const batches: LocalFile[][] = [];
  for (let i = 0, bytes = 0; i < local.length; i++) {
    const last = batches.at(-1);
    if (last && last.length < BATCH_FILES && bytes + local[i].size <= BATCH_BYTES) {
      last.push(local[i]);
      bytes += local[i].size;
    } else {
      batches.push([local[i]]);
      bytes = local[i].size;
    }
  }
  // Per batch, in batch order: what it read and what the upload said (merged in order at the end).
  const outcomes: Array<{
    read: Array<[string, number]>;
    unread: TransferReport["failed"];
    results: FileUploadResponse[];
  }> = [];
  let done = 0;
  let stored = 0;
  let failure: Error | undefined;
  let next = 0;
  const uploader = async () => {
    for (let b = next++; b < batches.length && !failure; b = next++) {
      const batch: Array<[string, Uint8Array]> = [];
      const outcome: (typeof outcomes)[number] = { read: [], unread: [], results: [] };
      let bytes = 0;
      for (const f of batches[b]) {
        try {
          const body = await readFile(f.file);
          batch.push([base + f.relative, body]);
          outcome.read.push([f.relative, body.byteLength]);
          bytes += body.byteLength;
        } catch (e) {
          outcome.unread.push({ path: f.relative, error: `cannot read: ${(e as Error).message}` });
        }
      }
      try {
        if (batch.length && !failure) outcome.results = await backend.uploadFiles(batch);
      } catch (e) {
        failure ??= e as Error; // the other uploads in flight finish; no new one starts
        return;
      }
      outcomes[b] = outcome;
      stored += outcome.results.filter((r) => !r.error).length;
      done += batches[b].length;
      bar.update(done, bytes);
    }
  };
  await Promise.all(Array.from({ length: UPLOAD_CONCURRENCY }, uploader));
  if (failure) {
    // A storage failure ends the run; the message says how far it got.
    bar.stop();
    failure.message = `${failure.message} (import stopped: ${stored} of ${local.length} files imported)`;
    throw failure;
  }
  for (const { read, unread, results } of outcomes) {
    report.failed.push(...unread);
    results.forEach((r, j) => {
      if (r.error) report.failed.push({ path: r.path, error: r.error });
      else {
        report.files++;
        report.bytes += read[j][1];
      }
    });
  }
  bar.stop();
  report.seconds = (Date.now() - started) / 1000;
  return report;
}

/**
 * Local names that become one stored path (the path rules make names NFC and trim surrounding
 * whitespace: "café.md" typed precomposed and decomposed, "notes.md" and "notes.md ") would
 * silently overwrite each other. None of them is imported; each is a failure naming the others.
 */
function withoutCollisions(files: LocalFile[], base: string, report: TransferReport): LocalFile[] {
  const byTarget = new Map<string, LocalFile[]>();
  for (const f of files) {
    let target: string;
    try {
      target = normalizeFilePath(base + f.relative);
    } catch {
      target = "\u0000" + f.relative; // refused by the path rules: uploadFiles reports it
    }
    const group = byTarget.get(target);
    if (group) group.push(f);
    else byTarget.set(target, [f]);
  }
  const colliding = new Set<LocalFile>();
  for (const [target, group] of byTarget) {
    if (group.length < 2) continue;
    for (const f of group) {
      colliding.add(f);
      const others = group
        .filter((g) => g !== f)
        .map((g) => JSON.stringify(g.relative))
        .join(", ");
      report.failed.push({
        path: f.relative,
        error: `not imported: ${JSON.stringify(f.relative)} and ${others} would both be stored as ${target} (names are Unicode NFC, surrounding whitespace trimmed); rename one`,
      });
    }
  }
  return files.filter((f) => !colliding.has(f));
}

/**
 * Paths in batches of at most BATCH_FILES files and BATCH_BYTES by their listed sizes (a bigger
 * file alone): what export holds in memory at once, whatever the workspace's size.
 */
function* batches(files: ReadonlyArray<{ path: string; size?: number }>): Generator<string[]> {
  let batch: string[] = [];
  let size = 0;
  for (const f of files) {
    if (batch.length > 0 && (batch.length === BATCH_FILES || size + (f.size ?? 0) > BATCH_BYTES)) {
      yield batch;
      batch = [];
      size = 0;
    }
    batch.push(f.path);
    size += f.size ?? 0;
  }
  if (batch.length > 0) yield batch;
}

export async function exportDir(
  backend: Files,
  dir: string,
  { path = "/", quiet = false } = {},
): Promise<TransferReport> {
  const started = Date.now();
  const listed = await backend.glob("**", path);
  if (listed.error) throw new Error(listed.error);
  const scope = dirPrefix(normalizePath(path, { emptyIsRoot: true }).path);
  const files = [...(listed.files ?? [])].sort((a, b) => (a.path < b.path ? -1 : 1));
  const realRoot = await prepareRoot(dir);
  const bar = progress(files.length, "export", quiet);
  const report: TransferReport = { files: 0, bytes: 0, failed: [], seconds: 0 };
  let done = 0;
  for (const batch of batches(files)) {
    done += batch.length;
    let bytes = 0;
    // Several files written at once: each write is a handful of checks and a rename (writeUnder),
    // and one at a time they, not the download, set the pace.
    await mapLimit(await backend.downloadFiles(batch), WRITE_CONCURRENCY, async (d) => {
      if (d.error || !d.content) {
        report.failed.push({ path: d.path, error: d.error ?? "no content" });
        return;
      }
      try {
        await writeUnder(realRoot, d.path.startsWith(scope) ? d.path.slice(scope.length) : d.path.slice(1), d.content);
      } catch (e) {
        // One refused or failed file does not stop the rest; the summary lists it and exit is 1.
        report.failed.push({ path: d.path, error: (e as Error).message });
        return;
      }
      report.files++;
      report.bytes += d.content.byteLength;
      bytes += d.content.byteLength;
    });
    bar.update(done, bytes);
  }
  bar.stop();
  report.seconds = (Date.now() - started) / 1000;
  return report;
}
