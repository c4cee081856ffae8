/**
 * `npm run bench:shell`: the shell's recursive grep and find (withShell over PostgreSQL: `grep -rn`
 * runs one search(), `find -type f` one glob()) against search() / glob() called directly and
 * against GNU grep -rn / find over the same files on local disk (page cache), in the same run.
 * Each row: the median of 5 runs after a warm-up, right after the import (no ANALYZE: users grep
 * what they just wrote) and again after ANALYZE; the line counts of the three must agree.
 *
 * Corpus (as bench:streams): BENCH_CORPUS (default /work/corpus/linux-source-6.1, C: drivers/net,
 * kernel and fs of Debian's linux-source-6.1) and BENCH_MIB (default 150), the text files in path
 * order; BENCH_FAMILY=prose takes Documentation (/work/corpus/linux-doc/Documentation, 64 MiB):
 *
 *   apt-get install linux-source-6.1
 *   mkdir -p /work/corpus/linux-doc && cd /work/corpus
 *   tar -xJf /usr/src/linux-source-6.1.tar.xz --wildcards 'linux-source-6.1/drivers/net/*' \
 *     'linux-source-6.1/kernel/*' 'linux-source-6.1/fs/*' 'linux-source-6.1/Documentation/*'
 *   mv linux-source-6.1/Documentation linux-doc/
 *   DATABASE_URL=... npm run bench:shell        (else an embedded server)
 *
 * The shell's output limit is lifted (maxOutputBytes 1 GiB) so all three print every line; an
 * agent's default (100,000 bytes) cuts the text, not the work.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { PostgresBackend } from "../src/index.js";
import { withShell } from "../src/shell/index.js";
import { benchDatabase, corpusFiles, median, writeCorpus } from "./common.js";

const PROSE = process.env.BENCH_FAMILY === "prose";
const CORPUS =
  process.env.BENCH_CORPUS ?? (PROSE ? "/work/corpus/linux-doc/Documentation" : "/work/corpus/linux-source-6.1");
const LIMIT = Number(process.env.BENCH_MIB ?? (PROSE ? 64 : 150)) * 1048576;
const RUNS = 5;
const RARE = "zqxjkvbw_rare_token_42";
const log = (...a: unknown[]) => console.error("[bench]", ...a);

/** grep arguments (after -rn) and the same as a search() call. */
interface Query {
  label: string;
  grep: string[];
  search: { pattern: string; regex?: boolean; ignoreCase?: boolean };
}
const QUERIES: Query[] = [
  { label: "rare literal", grep: [RARE], search: { pattern: RARE } },
  { label: "literal `TODO`", grep: ["TODO"], search: { pattern: "TODO" } },
  PROSE
    ? { label: "literal `kernel`", grep: ["kernel"], search: { pattern: "kernel" } }
    : { label: "literal `spin_lock_irqsave`", grep: ["spin_lock_irqsave"], search: { pattern: "spin_lock_irqsave" } },
  PROSE
    ? { label: "-i `linux`", grep: ["-i", "linux"], search: { pattern: "linux", ignoreCase: true } }
    : { label: "-i `mutex_lock`", grep: ["-i", "mutex_lock"], search: { pattern: "mutex_lock", ignoreCase: true } },
  PROSE
    ? { label: "-E `^=+$`", grep: ["-E", "^=+$"], search: { pattern: "^=+$", regex: true } }
    : { label: "-E `k[mz]alloc\\(`", grep: ["-E", "k[mz]alloc\\("], search: { pattern: "k[mz]alloc\\(", regex: true } },
];
const FIND = PROSE ? "*.rst" : "*.h";

const quote = (s: string) => (/^[\w./-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`);
const lines = (text: string) => (text === "" ? 0 : text.split("\n").filter((l) => l !== "").length);

/** Median ms and the line count of the last run. */
async function measure(fn: () => Promise<number>): Promise<{ ms: number; lines: number }> {
  let count = await fn();
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    count = await fn();
    samples.push(performance.now() - t);
  }
  return { ms: median(samples), lines: count };
}

/** A GNU tool on the disk copy: lines of its stdout. */
function gnu(command: string, args: string[], cwd: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd,
      env: { ...process.env, LC_ALL: "C" },
      stdio: ["ignore", "pipe", "ignore"],
    });
    let n = 0;
    child.stdout.on("data", (d: Buffer) => {
      for (const byte of d) if (byte === 10) n++;
    });
    child.on("error", reject);
    child.on("close", () => resolve(n));
  });
}

const { files, bytes } = await corpusFiles(CORPUS, LIMIT).catch((e) => {
  throw new Error(`no corpus at ${CORPUS} (${(e as Error).message}); see the header of bench/shell.ts`);
});
files.push(["/zz-rare/needle.txt", "", Buffer.from(`intro\nthe ${RARE} lives here\n`)]);
const mib = bytes / 1048576;
log(`corpus: ${files.length} files, ${mib.toFixed(1)} MiB from ${CORPUS}`);

const { url, stop } = await benchDatabase();
const schema = `bench_shell_${Date.now().toString(36)}`;
const backend = new PostgresBackend({ connectionString: url, schema, workspace: "w", maxPoolSize: 4 });
const shell = withShell(backend, { maxOutputBytes: 1 << 30 });
const admin = new pg.Client({ connectionString: url });
await admin.connect();
const out = await mkdtemp(path.join(tmpdir(), "bench-shell-"));
try {
  const disk = path.join(out, "disk");
  await writeCorpus(disk, files);
  const t = performance.now();
  for (let i = 0; i < files.length; i += 500) {
    const batch = files.slice(i, i + 500).map(([p, , b]): [string, Uint8Array] => [p, b]);
    if ((await backend.uploadFiles(batch)).some((r) => r.error)) throw new Error("upload failed");
  }
  log(`uploaded in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  const rows: string[] = [];
  for (const state of ["right after the upload", "after ANALYZE"]) {
    if (state === "after ANALYZE") await admin.query(`ANALYZE ${schema}.files, ${schema}.chunks`);
    for (const q of QUERIES) {
      const command = `grep -rn ${q.grep.map(quote).join(" ")} .`;
      const viaShell = await measure(async () => {
        const r = await shell.execute(command);
        if ((r.exitCode ?? 0) > 1) throw new Error(`${command}: ${r.output.slice(0, 300)}`);
        return r.exitCode === 1 ? 0 : lines(r.output);
      });
      const direct = await measure(async () => {
        const r = await backend.search({ ...q.search, path: "/" });
        if (r.error) throw new Error(r.error);
        return r.matches?.length ?? 0;
      });
      const local = await measure(() => gnu("grep", ["-rn", ...q.grep, "."], disk));
      if (viaShell.lines !== direct.lines || direct.lines !== local.lines)
        log(`! ${q.label}: lines differ: shell ${viaShell.lines}, search ${direct.lines}, GNU grep ${local.lines}`);
      rows.push(
        `| ${state} | \`${command}\` | ${local.lines} | ${viaShell.ms.toFixed(0)} | ${direct.ms.toFixed(0)} | ${local.ms.toFixed(0)} | ${(viaShell.ms / direct.ms).toFixed(2)}× | ${(viaShell.ms / local.ms).toFixed(2)}× |`,
      );
      log(rows.at(-1));
    }
    const findCommand = `find . -type f -name ${quote(FIND)}`;
    const viaShell = await measure(async () => lines((await shell.execute(findCommand)).output));
    const direct = await measure(async () => (await backend.glob(`**/${FIND}`, "/")).files?.length ?? 0);
    const local = await measure(() => gnu("find", [".", "-type", "f", "-name", FIND], disk));
    if (viaShell.lines !== direct.lines || direct.lines !== local.lines)
      log(`! find: lines differ: shell ${viaShell.lines}, glob ${direct.lines}, GNU find ${local.lines}`);
    rows.push(
      `| ${state} | \`${findCommand}\` | ${local.lines} | ${viaShell.ms.toFixed(0)} | ${direct.ms.toFixed(0)} | ${local.ms.toFixed(0)} | ${(viaShell.ms / direct.ms).toFixed(2)}× | ${(viaShell.ms / local.ms).toFixed(2)}× |`,
    );
    log(rows.at(-1));
  }
  console.log(`\n${files.length} files, ${mib.toFixed(1)} MiB (${CORPUS}); medians of ${RUNS} runs, ms\n`);
  console.log(
    "| state | command | lines | execute() | search() / glob() | GNU on disk | execute / search | execute / GNU |",
  );
  console.log("|---|---|---:|---:|---:|---:|---:|---:|");
  for (const row of rows) console.log(row);
} finally {
  await backend.close();
  await admin.query(`DROP SCHEMA ${schema} CASCADE`).catch(() => {});
  await admin.end();
  await rm(out, { recursive: true, force: true });
  await stop();
}
