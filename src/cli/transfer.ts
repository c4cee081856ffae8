/**
 * import <dir> and export <dir>: bulk, batched (one upload/download call per batch, so one
 * round trip per batch on PostgreSQL), byte-exact, with a progress bar on a terminal.
 */
import { readFile } from "node:fs/promises";
import cliProgress from "cli-progress";
import type { FileUploadResponse } from "../protocol.js";
import type { PostgresBackend } from "../postgres/backend.js";
import type { S3Backend } from "../s3/backend.js";
import { normalizePath, dirPrefix } from "../paths.js";
import { walk, writeUnder, DEFAULT_SKIPS } from "./files.js";
import { formatBytes } from "./output.js";

type Files = PostgresBackend | S3Backend;

const BATCH_FILES = 500;
const BATCH_BYTES = 16 * 1024 * 1024;

export interface TransferReport {
  files: number;
  bytes: number;
  failed: Array<{ path: string; error: string }>;
  seconds: number;
}

function progress(total: number, label: string, quiet: boolean) {
  if (quiet || !process.stderr.isTTY) return { update: (_n: number) => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {percentage}% | {value}/{total} files | {bytes}`, stream: process.stderr, hideCursor: true },
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
  const local = await walk(dir, { skip: includeAll ? [] : DEFAULT_SKIPS, gitignore: !includeAll });
  const bar = progress(local.length, "import", quiet);
  const report: TransferReport = { files: 0, bytes: 0, failed: [], seconds: 0 };
  let done = 0;
  for (let i = 0; i < local.length; ) {
    const batch: Array<[string, Uint8Array]> = [];
    let bytes = 0;
    while (i < local.length && batch.length < BATCH_FILES && (batch.length === 0 || bytes + local[i].size <= BATCH_BYTES)) {
      const f = local[i++];
      batch.push([base + f.relative, await readFile(f.file)]);
      bytes += f.size;
    }
    const results: FileUploadResponse[] = await backend.uploadFiles(batch);
    results.forEach((r, j) => {
      if (r.error) report.failed.push({ path: r.path, error: r.error });
      else {
        report.files++;
        report.bytes += batch[j][1].byteLength;
      }
    });
    done += batch.length;
    bar.update(done, bytes);
  }
  bar.stop();
  report.seconds = (Date.now() - started) / 1000;
  return report;
}

export async function exportDir(backend: Files, dir: string, { path = "/", quiet = false } = {}): Promise<TransferReport> {
  const started = Date.now();
  const listed = await backend.glob("**", path);
  if (listed.error) throw new Error(listed.error);
  const scope = dirPrefix(normalizePath(path, { emptyIsRoot: true }).path);
  const paths = (listed.files ?? []).map((f) => f.path).sort();
  const bar = progress(paths.length, "export", quiet);
  const report: TransferReport = { files: 0, bytes: 0, failed: [], seconds: 0 };
  for (let i = 0; i < paths.length; i += BATCH_FILES) {
    const batch = paths.slice(i, i + BATCH_FILES);
    let bytes = 0;
    for (const d of await backend.downloadFiles(batch)) {
      if (d.error || !d.content) {
        report.failed.push({ path: d.path, error: d.error ?? "no content" });
        continue;
      }
      await writeUnder(dir, d.path.startsWith(scope) ? d.path.slice(scope.length) : d.path.slice(1), d.content);
      report.files++;
      report.bytes += d.content.byteLength;
      bytes += d.content.byteLength;
    }
    bar.update(Math.min(i + BATCH_FILES, paths.length), bytes);
  }
  bar.stop();
  report.seconds = (Date.now() - started) / 1000;
  return report;
}
