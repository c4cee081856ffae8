/**
 * `npm run bench:history`: what file history costs and how fast it answers (issue 13), through
 * PostgresBackend, in one process run:
 *  - storage: 1,000 one-line edits of a 10 KB file, 100 one-line edits of a 5 MB file (source
 *    code and prose), each against the size of one copy of the file; the bytes of contents kept
 *    (deltas and blobs as stored, compressed where PostgreSQL compressed them) and the whole cost
 *    of the history tables after VACUUM (rows, indexes, TOAST);
 *  - latency: readVersion of the newest and the oldest version, history() of the file (1,000
 *    versions in the first case), checkpoint, diff and rewind of a 1,000-file workspace after 100
 *    and after all 1,000 of its files changed (medians);
 *  - with S3_ENDPOINT (+ AWS_* keys): the same workspace operations on S3Backend, on a bucket with
 *    versioning made for the run (Ceph RGW: test/services/ceph-rgw/start-rgw.sh);
 *  - uploads and writes with history on and off: bench/write-paths.ts (`npm run bench:writes`).
 * Prints Markdown.   DATABASE_URL=... node --import tsx bench/history.ts
 */
import pg from "pg";
import { CreateBucketCommand, PutBucketVersioningCommand, S3Client } from "@aws-sdk/client-s3";
import { S3Backend } from "../src/s3/index.js";
import { PostgresBackend } from "../src/postgres/index.js";
import { benchDatabase, median, timeMedian } from "./common.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const db = await benchDatabase();
const schema = `bench_history_${Date.now().toString(36)}`;
const backend = new PostgresBackend({ connectionString: db.url, schema, workspace: "w", maxPoolSize: 2 });
await backend.initialize();
const admin = new pg.Client({ connectionString: db.url });
await admin.connect();
const log = (...a: unknown[]) => console.error("[bench:history]", ...a);

/** Lines of real-looking source code or prose, deterministic. */
function corpus(kind: "code" | "prose", bytes: number): string[] {
  const lines: string[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const line =
      kind === "code"
        ? `  const value${i} = compute(${i}, "item-${i % 97}") + offset * ${i % 13}; // step ${i}`
        : `Paragraph ${i} tells how the agent read file ${i % 211}, changed its ${i % 7}th section and moved on.`;
    lines.push(line);
    size += Buffer.byteLength(line) + 1;
  }
  return lines;
}

/** Bytes of contents kept, and of the history tables as a whole, for one workspace's files. */
async function storage(workspace: string) {
  await admin.query(`VACUUM ${schema}.file_versions, ${schema}.blobs`);
  const { rows } = await admin.query(
    `SELECT coalesce(sum(pg_column_size(v.delta_middle)), 0)::bigint AS deltas,
            (SELECT coalesce(sum(pg_column_size(b.data)), 0) FROM ${schema}.blobs b
              WHERE b.hash IN (SELECT blob FROM ${schema}.file_versions WHERE workspace = $1))::bigint AS blobs,
            count(*)::int AS rows, count(v.blob)::int AS keyframes
     FROM ${schema}.file_versions v WHERE v.workspace = $1`,
    [workspace],
  );
  return rows[0] as { deltas: string; blobs: string; rows: number; keyframes: number };
}

const tables = async () =>
  Number(
    (
      await admin.query(
        `SELECT pg_total_relation_size('${schema}.file_versions') + pg_total_relation_size('${schema}.blobs') AS n`,
      )
    ).rows[0].n,
  );

interface EditCase {
  label: string;
  kind: "code" | "prose";
  bytes: number;
  edits: number;
  target: number | null;
  /** Each change also puts back the line the previous one changed: two changed places, far apart. */
  twoPlaces?: boolean;
}
// The 5 MB cases last: their chunk churn (trigram index pending list, dead rows) slowed the
// writes of a case run right after them 20x until autovacuum caught up (a search-storage effect,
// not history's: issue 14).
const cases: EditCase[] = [
  { label: "1,000 one-line edits of a 10 KB file", kind: "code", bytes: 10_000, edits: 1000, target: 10 },
  { label: "1,000 one-line edits of a 10 KB file", kind: "prose", bytes: 10_000, edits: 1000, target: 10 },
  {
    label: "1,000 writes of a 10 KB file, each changing two distant lines",
    kind: "code",
    bytes: 10_000,
    edits: 1000,
    target: null,
    twoPlaces: true,
  },
  { label: "100 one-line edits of a 5 MB file", kind: "code", bytes: 5_000_000, edits: 100, target: 3 },
  { label: "100 one-line edits of a 5 MB file", kind: "prose", bytes: 5_000_000, edits: 100, target: 3 },
];

const out: string[] = [];
try {
  out.push(
    "| case | corpus | one copy | contents kept | × copy | target | met | history tables in all (rows, indexes) | × copy | per version | edit or write (ms, median) | readVersion newest / oldest (ms) | history() (ms) |",
  );
  out.push("|---|---|---:|---:|---:|---|---|---:|---:|---:|---:|---|---:|");
  const only = process.env.BENCH_ONLY?.split(",").map(Number);
  for (const c of cases.filter((_, i) => !only || only.includes(i))) {
    const b = backend.withWorkspace(`case-${cases.indexOf(c)}`);
    const lines = corpus(c.kind, c.bytes);
    await b.write("/f.txt", lines.join("\n"));
    const copy = Buffer.byteLength(lines.join("\n"));
    const before = await tables();
    const times: number[] = [];
    const original = [...lines];
    let previous = -1;
    for (let i = 0; i < c.edits; i++) {
      const at = (i * 7919) % lines.length;
      const next = `${lines[at]} (edit ${i})`;
      const t = performance.now();
      let r: { error?: string };
      if (c.twoPlaces) {
        if (previous >= 0) lines[previous] = original[previous];
        lines[at] = next;
        r = await b.write("/f.txt", lines.join("\n"));
      } else {
        r = await b.edit("/f.txt", lines[at], next);
        lines[at] = next;
      }
      times.push(performance.now() - t);
      if (r.error) throw new Error(r.error);
      previous = at;
    }
    const s = await storage(b.workspace);
    const kept = Number(s.deltas) + Number(s.blobs);
    const whole = (await tables()) - before;
    const last = (await b.stat("/f.txt")).data!.version as number;
    const newest = await timeMedian(() => b.readVersion("/f.txt", last - 1, 0, 100), RUNS);
    const oldest = await timeMedian(() => b.readVersion("/f.txt", 1, 0, 100), RUNS);
    const historyMs = await timeMedian(() => b.history("/f.txt"), RUNS);
    log(c.label, c.kind, { kept, whole, rows: s.rows, keyframes: s.keyframes });
    out.push(
      `| ${c.label} | ${c.kind} | ${(copy / 1024).toFixed(0)} KiB | ${(kept / 1024).toFixed(1)} KiB (${s.keyframes} whole) | ${(kept / copy).toFixed(2)}× | ${c.target === null ? "—" : `≤ ${c.target}×`} | ${c.target === null ? "" : kept / copy <= c.target ? "yes" : "**no**"} | ${(whole / 1024).toFixed(0)} KiB (${s.rows} rows) | ${(whole / copy).toFixed(1)}× | ${(whole / c.edits).toFixed(0)} B | ${median(times).toFixed(2)} | ${newest.toFixed(2)} / ${oldest.toFixed(2)} | ${historyMs.toFixed(2)} |`,
    );
  }

  // Checkpoint, diff and rewind of a 1,000-file workspace (100, then all 1,000 files changed since
  // the checkpoint).
  const w = backend.withWorkspace("thousand");
  const files = corpus("code", 1000 * 2000);
  const batch: Array<[string, Uint8Array]> = [];
  for (let i = 0; i < 1000; i++)
    batch.push([`/src/d${i % 20}/f${i}.ts`, Buffer.from(files.slice(i * 20, i * 20 + 20).join("\n"))]);
  await w.uploadFiles(batch);
  const checkpointMs = await timeMedian(() => w.checkpoint(), RUNS);
  const cp = await w.checkpoint({ label: "base" });
  const change = async (round: number, count = 100) => {
    for (let i = 0; i < count; i++) {
      const j = count === 1000 ? i : i * 7;
      const r = await w.edit(`/src/d${j % 20}/f${j}.ts`, `value${j * 20} `, `value${j * 20}_${round} `);
      if (r.error) throw new Error(r.error);
    }
  };
  await change(0);
  const diffMs = await timeMedian(() => w.diff(cp.id), RUNS);
  const dryMs = await timeMedian(() => w.rewind(cp.id, { dryRun: true }), RUNS);
  const rewinds: number[] = [];
  for (let r = 1; r <= 3; r++) {
    const t = performance.now();
    const done = await w.rewind(cp.id);
    rewinds.push(performance.now() - t);
    if (done.changes.length !== 100) throw new Error(`rewind changed ${done.changes.length} paths`);
    await change(r);
  }
  await w.rewind(cp.id);
  await change(10, 1000);
  const diffAllMs = await timeMedian(() => w.diff(cp.id), RUNS);
  const rewindsAll: number[] = [];
  for (let r = 11; r <= 13; r++) {
    const t = performance.now();
    const done = await w.rewind(cp.id);
    rewindsAll.push(performance.now() - t);
    if (done.changes.length !== 1000) throw new Error(`rewind changed ${done.changes.length} paths`);
    await change(r, 1000);
  }
  out.push("");
  out.push("| 1,000-file workspace, 100 files edited since the checkpoint | ms (median) |");
  out.push("|---|---:|");
  out.push(`| checkpoint | ${checkpointMs.toFixed(2)} |`);
  out.push(`| diff checkpoint → now (paths, sizes) | ${diffMs.toFixed(2)} |`);
  out.push(`| rewind, dry run | ${dryMs.toFixed(2)} |`);
  out.push(`| rewind (100 files written back, one transaction) | ${median(rewinds).toFixed(2)} |`);
  out.push(`| diff checkpoint → now, all 1,000 files changed | ${diffAllMs.toFixed(2)} |`);
  out.push(`| rewind (1,000 files written back, one transaction; target ≤ 1 s) | ${median(rewindsAll).toFixed(2)} |`);
  if (process.env.S3_ENDPOINT) out.push("", ...(await s3Workspace()));
  console.log(out.join("\n"));
} finally {
  await backend.close();
  if (!process.env.BENCH_KEEP) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
  await db.stop();
}

/** Checkpoint, diff and rewind of a 1,000-file workspace on S3 with bucket versioning. */
async function s3Workspace(): Promise<string[]> {
  const endpoint = process.env.S3_ENDPOINT!;
  const credentials = {
    accessKeyId: process.env.AWS_ACCESS_KEY_ID!,
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY!,
  };
  const client = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials });
  const bucket = `bench-history-${Date.now().toString(36)}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  await client.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: "Enabled" } }));
  const s3 = new S3Backend({ bucket, endpoint, ...credentials, workspace: "thousand" });
  const files = corpus("code", 1000 * 2000);
  await s3.uploadFiles(
    Array.from({ length: 1000 }, (_, i): [string, Uint8Array] => [
      `/src/d${i % 20}/f${i}.ts`,
      Buffer.from(files.slice(i * 20, i * 20 + 20).join("\n")),
    ]),
  );
  const runs = Math.min(RUNS, 3);
  const checkpointMs = await timeMedian(() => s3.checkpoint(), runs);
  const cp = await s3.checkpoint({ label: "base" });
  const change = async (round: number) => {
    for (let i = 0; i < 100; i++) {
      const j = i * 7;
      const r = await s3.edit(`/src/d${j % 20}/f${j}.ts`, `value${j * 20} `, `value${j * 20}_${round} `);
      if (r.error) throw new Error(r.error);
    }
  };
  await change(0);
  const diffMs = await timeMedian(() => s3.diff(cp.id), runs);
  const dryMs = await timeMedian(() => s3.rewind(cp.id, { dryRun: true }), runs);
  const rewinds: number[] = [];
  for (let r = 1; r <= runs; r++) {
    const t = performance.now();
    const done = await s3.rewind(cp.id);
    rewinds.push(performance.now() - t);
    if (done.changes.length !== 100) throw new Error(`rewind changed ${done.changes.length} paths`);
    await change(r);
  }
  const historyMs = await timeMedian(() => s3.history("/src/d0/f0.ts"), runs);
  await s3.close();
  client.destroy();
  log("s3 bucket left for inspection:", bucket);
  return [
    `| S3Backend (${endpoint}, bucket versioning), same workspace | ms (median of ${runs}) |`,
    "|---|---:|",
    `| checkpoint (a manifest of 1,000 files; grows with versions kept) | ${checkpointMs.toFixed(0)} |`,
    `| diff checkpoint → now | ${diffMs.toFixed(0)} |`,
    `| rewind, dry run | ${dryMs.toFixed(0)} |`,
    `| rewind (100 files written back, path by path) | ${median(rewinds).toFixed(0)} |`,
    `| history() of one file | ${historyMs.toFixed(1)} |`,
  ];
}
