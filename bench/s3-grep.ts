/**
 * S3 grep: 2,000 real text objects on a local S3 server, grep cold (empty cache), warm (ETag
 * cache), against the seed's approach measured in the same run: list, then fetch every object
 * one after another and filter in the client.
 *
 *   node --openssl-legacy-provider --import tsx bench/s3-grep.ts      (in-process s3rver)
 *   S3_ENDPOINT=... AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... node --import tsx bench/s3-grep.ts
 */
import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { startTestS3 } from "../test/helpers/s3.js";
import { median } from "./common.js";

const FILES = Number(process.env.BENCH_OBJECTS ?? 2000);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const PATTERN = process.env.BENCH_PATTERN ?? "createRequire";

async function corpus(): Promise<Array<[string, Buffer]>> {
  const out: Array<[string, Buffer]> = [];
  async function walk(dir: string) {
    if (out.length >= FILES) return;
    const entries = (await readdir(dir, { withFileTypes: true }).catch(() => [])).sort((a, b) =>
      a.name < b.name ? -1 : 1,
    );
    for (const e of entries) {
      if (out.length >= FILES) return;
      const full = path.join(dir, e.name);
      if (e.isDirectory()) await walk(full);
      else if (/\.(js|ts|md|json)$/.test(e.name) && (await stat(full)).size < 256 * 1024) {
        out.push(["/" + path.relative("node_modules", full).split(path.sep).join("/"), await readFile(full)]);
      }
    }
  }
  await walk("node_modules");
  return out;
}

const s3 = await startTestS3();
try {
  const files = await corpus();
  const bytes = files.reduce((n, [, b]) => n + b.length, 0);
  const loader = await s3.backend({ workspace: "bench" });
  for (let i = 0; i < files.length; i += 200) await loader.uploadFiles(files.slice(i, i + 200));

  let gets = 0;
  const cold: number[] = [];
  const warm: number[] = [];
  let matches = 0;
  for (let run = 0; run < RUNS; run++) {
    const b = await s3.backend({ workspace: "bench" }); // a new backend: empty cache
    b.client.middlewareStack.add(
      (next, ctx) => async (args) => {
        if (ctx.commandName === "GetObjectCommand") gets++;
        return next(args);
      },
      { step: "initialize", name: "count-gets" },
    );
    let t = performance.now();
    matches = (await b.grep(PATTERN)).matches!.length;
    cold.push(performance.now() - t);
    const before = gets;
    t = performance.now();
    await b.grep(PATTERN);
    warm.push(performance.now() - t);
    if (gets !== before) throw new Error(`warm grep downloaded ${gets - before} objects`);
    await b.close();
  }

  // The seed's way: list, then GET every object in turn and filter lines in the client.
  const client = loader.client;
  const sequential: number[] = [];
  for (let run = 0; run < Math.min(RUNS, 3); run++) {
    const t = performance.now();
    let found = 0;
    let token: string | undefined;
    const keys: string[] = [];
    do {
      const page = await client.send(
        new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: "test/bench/", ContinuationToken: token }),
      );
      keys.push(...(page.Contents ?? []).map((o) => o.Key!));
      token = page.NextContinuationToken;
    } while (token);
    for (const Key of keys) {
      const o = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key }));
      for (const line of (await o.Body!.transformToString()).split("\n")) if (line.includes(PATTERN)) found++;
    }
    if (found !== matches) throw new Error(`baseline found ${found}, grep ${matches}`);
    sequential.push(performance.now() - t);
  }

  const [c, w, s] = [median(cold), median(warm), median(sequential)];
  console.log(
    `Server: ${s3.kind === "s3rver" ? "s3rver (in process)" : s3.endpoint}; ${files.length} objects, ${(bytes / 1048576).toFixed(1)} MiB; pattern \`${PATTERN}\` (${matches} matching lines); medians of ${RUNS} (baseline ${sequential.length}).\n`,
  );
  console.log("| grep over all objects | median (ms) | vs sequential |");
  console.log("|---|---:|---:|");
  console.log(`| sequential fetch-every-object baseline | ${s.toFixed(0)} | 1.0× |`);
  console.log(`| S3Backend.grep, cold cache (concurrency 16) | ${c.toFixed(0)} | ${(s / c).toFixed(1)}× faster |`);
  console.log(`| S3Backend.grep, warm cache (0 downloads) | ${w.toFixed(1)} | ${(s / w).toFixed(0)}× faster |`);
  await loader.delete("/");
  await loader.close();
} finally {
  await s3.close();
}
