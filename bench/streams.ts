/**
 * `npm run bench:streams`: searches of a ~150 MiB C source tree (a subset of Debian's
 * linux-source package) streamed (grepStream/searchStream: migration 0023's cursor) against the
 * same searches collected (search(): fs_search) and against ripgrep on the same files, in the
 * same run; then the CLI as a user runs it: `grep` (time to its first printed line, total, peak
 * RSS; the same with --json, which collects the whole result first) and `export` (peak RSS).
 *
 *   apt-get install linux-source-6.1 ripgrep
 *   tar -xJf /usr/src/linux-source-6.1.tar.xz -C /work/corpus --wildcards \
 *     'linux-source-6.1/drivers/net/*' 'linux-source-6.1/kernel/*' 'linux-source-6.1/fs/*'
 *   npm run build && DATABASE_URL=... npm run bench:streams   (else an embedded server)
 *
 * BENCH_CORPUS (default /work/corpus/linux-source-6.1) and BENCH_MIB (default 150): the files of
 * the tree in path order (text, under 1 MiB) until that size; BENCH_COMMON the common literal
 * (default "return"), BENCH_REGEX a regex without trigrams (default `\bu(8|16)\b`), BENCH_ICASE a
 * case-insensitive literal (default MUTEX_LOCK). Prose: BENCH_CORPUS=/work/corpus/linux-source-6.1/Documentation
 * BENCH_MIB=64 BENCH_COMMON=the.
 *
 * BENCH_FAMILY=markdown: a Markdown-only workspace (the defaults become /work/corpus-md, 64 MiB,
 * `the`, `^#{1,3} ` (headings), UNICODE). The one measured in BENCHMARKS.md is every `.md` file of
 * two public documentation repositories, 3,766 files, 40.5 MiB: MicrosoftDocs/PowerShell-Docs
 * (reference pages) and rust-lang/rfcs (design prose), each under its own directory; any tree of
 * Markdown of that shape will do (`git clone` both, or `find -name '*.md'` of your own docs).
 */
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { importDir } from "../src/cli/transfer.js";
import { PostgresBackend } from "../src/index.js";
import type { GrepMatch, SearchOptions } from "../src/protocol.js";
import { benchDatabase, corpusFiles, median, writeCorpus } from "./common.js";

const MARKDOWN = process.env.BENCH_FAMILY === "markdown";
const CORPUS = process.env.BENCH_CORPUS ?? (MARKDOWN ? "/work/corpus-md" : "/work/corpus/linux-source-6.1");
const LIMIT = Number(process.env.BENCH_MIB ?? (MARKDOWN ? 64 : 150)) * 1048576;
/** The common literal: a C keyword by default; BENCH_COMMON=the for prose (BENCH_CORPUS=.../Documentation). */
const COMMON = process.env.BENCH_COMMON ?? (MARKDOWN ? "the" : "return");
/** A regex with no trigram (the index cannot narrow it: every chunk is tested). */
const REGEX = process.env.BENCH_REGEX ?? (MARKDOWN ? "^#{1,3} " : "\\bu(8|16)\\b");
const ICASE = process.env.BENCH_ICASE ?? (MARKDOWN ? "UNICODE" : "MUTEX_LOCK");
/** Caps of the capped rows: deepagents' grep default (1,000) and a tighter one. */
const CAPS = [100, 1000];
const RUNS = 3;
const RARE = "zqxjkvbw_rare_token_42";
const BIN = path.resolve("dist/cli/main.js");
const log = (...a: unknown[]) => console.error("[bench]", ...a);

/** Peak RSS (VmHWM) of a child process in MiB, read from /proc every 20 ms until it exits. */
function watchPeak(pid: number): { stop: () => number } {
  let peak = 0;
  const timer = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      if (m) peak = Math.max(peak, Number(m[1]) / 1024);
    } catch {} // exited
  }, 20);
  return {
    stop: () => {
      clearInterval(timer);
      return peak;
    },
  };
}

/** Runs the CLI: ms to the first byte of stdout, ms to exit, stdout bytes, peak RSS in MiB. */
function cli(args: string[]): Promise<{ first: number; total: number; bytes: number; rss: number; code: number }> {
  return new Promise((resolve) => {
    const t = performance.now();
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "inherit"] });
    const peak = watchPeak(child.pid!);
    let first = 0;
    let bytes = 0;
    child.stdout.on("data", (d: Buffer) => {
      if (!first) first = performance.now() - t;
      bytes += d.length;
    });
    child.on("close", (code) => {
      const rss = peak.stop();
      resolve({ first, total: performance.now() - t, bytes, rss, code: code ?? -1 });
    });
  });
}

const { files, bytes: corpusBytes } = await corpusFiles(CORPUS, LIMIT).catch((e) => {
  throw new Error(`no corpus at ${CORPUS} (${(e as Error).message}); see the header of bench/streams.ts`);
});
files.push(
  MARKDOWN
    ? ["/zz-rare/needle.md", "", Buffer.from(`# intro\n\nthe ${RARE} lives here\n`)]
    : ["/zz-rare/needle.c", "", Buffer.from(`/* intro */\nint ${RARE} = 1;\n`)],
);
const mib = corpusBytes / 1048576;
log(`corpus: ${files.length} files, ${mib.toFixed(1)} MiB from ${CORPUS}`);

const { url, stop } = await benchDatabase();
const schema = `bench_streams_${Date.now().toString(36)}`;
const backend = new PostgresBackend({ connectionString: url, schema, workspace: "w", maxPoolSize: 4 });
const admin = new pg.Client({ connectionString: url });
await admin.connect();
const out = await mkdtemp(path.join(tmpdir(), "bench-streams-"));
try {
  // The same files on local disk (page cache), for ripgrep and for the CLI's import.
  const disk = path.join(out, "disk");
  await writeCorpus(disk, files);
  // Imported as `deepagents-backends import` does it (importDir: batches of 500 files / 16 MiB,
  // two uploads in flight), every file taken (no .gitignore rules).
  const t = performance.now();
  const imported = await importDir(backend, disk, { includeAll: true, quiet: true });
  if (imported.files !== files.length) throw new Error(`imported ${imported.files} of ${files.length} files`);
  const importSeconds = (performance.now() - t) / 1000;
  log(`imported in ${importSeconds.toFixed(1)} s (${(mib / importSeconds).toFixed(1)} MiB/s)`);
  // Everything the schema stores: every table with its TOAST and indexes (history, change log).
  const { rows: tables } = await admin.query(
    `SELECT c.relname AS name, pg_total_relation_size(c.oid) AS size FROM pg_class c
     WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'r' ORDER BY 2 DESC`,
    [schema],
  );
  const size = tables.reduce((n, r) => n + Number(r.size), 0);
  const breakdown = tables
    .filter((r) => Number(r.size) >= 1048576)
    .map((r) => `${r.name} ${(Number(r.size) / 1048576).toFixed(0)}`)
    .join(", ");
  log(`stored: ${(size / 1048576).toFixed(0)} MiB (${(size / corpusBytes).toFixed(2)}x the corpus: ${breakdown})`);

  // The same files through deepagents' StoreBackend on LangGraph's PostgresStore, same server, same
  // run (batches of 200 files, as bench/search.ts): the import it is compared with (issue 14).
  let storeLine = "";
  if (!process.env.BENCH_SKIP_STORE) {
    const { PostgresStore } = await import("@langchain/langgraph-checkpoint-postgres/store");
    const { StoreBackend } = await import("deepagents");
    const storeSchema = `${schema}_store`;
    const pgStore = PostgresStore.fromConnString(url, { schema: storeSchema });
    await pgStore.setup();
    const sb = new StoreBackend({ store: pgStore, namespace: ["bench"] });
    const t0 = performance.now();
    for (let i = 0; i < files.length; i += 200) {
      const batch = files.slice(i, i + 200).map(([p, , b]): [string, Uint8Array] => [p, b]);
      if ((await sb.uploadFiles(batch)).some((r) => r.error)) throw new Error("StoreBackend upload failed");
    }
    const storeSeconds = (performance.now() - t0) / 1000;
    const { rows: storeSize } = await admin.query(
      `SELECT sum(pg_total_relation_size(c.oid))::bigint AS size FROM pg_class c
       WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'r'`,
      [storeSchema],
    );
    await pgStore.stop();
    await admin.query(`DROP SCHEMA IF EXISTS ${storeSchema} CASCADE`);
    storeLine =
      `StoreBackend+PostgresStore, same files, same run: imported at ${(mib / storeSeconds).toFixed(1)} MiB/s ` +
      `(ours ${(storeSeconds / importSeconds).toFixed(2)}x its speed), stored ${(Number(storeSize[0].size) / 1048576).toFixed(0)} MiB.\n`;
    log(storeLine.trim());
  }

  // An agent's edit of a file of about 10 KB of this corpus (one replacement, alternating between
  // two texts so every edit changes the file): the median of 21 after one warm-up.
  const [editPath, , editBody] = files
    .filter(([, , b]) => b.length >= 9_000 && b.length <= 11_000 && b.includes("\n"))
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))[0];
  await backend.write(editPath, `${editBody.toString("utf8")}\nEDIT_MARK_A\n`);
  const edits: number[] = [];
  for (let i = 0; i <= 21; i++) {
    const [from, to] = i % 2 === 0 ? ["EDIT_MARK_A", "EDIT_MARK_B"] : ["EDIT_MARK_B", "EDIT_MARK_A"];
    const t0 = performance.now();
    const r = await backend.edit(editPath, from, to);
    if (r.error) throw new Error(`edit: ${r.error}`);
    if (i > 0) edits.push(performance.now() - t0);
  }
  const editLine = `Edit of a ${(editBody.length / 1024).toFixed(1)} KiB file (${editPath}), one replacement: p50 ${median(edits).toFixed(2)} ms.\n`;
  log(editLine.trim());

  const ripgrep = (args: string[]) => () => {
    const r = spawnSync("rg", ["--no-ignore", "--hidden", "-n", ...args, disk], { maxBuffer: 1 << 30 });
    if (r.status !== 0 && r.status !== 1) throw new Error(`rg failed: ${r.stderr}`);
    return r.stdout.toString().split("\n").length - 1;
  };
  const cases: Array<[string, SearchOptions, string[]]> = [
    [`common literal '${COMMON}', uncapped`, { pattern: COMMON }, ["-F", COMMON]],
    ["rare literal", { pattern: RARE }, ["-F", RARE]],
    [`regex without trigrams '${REGEX}'`, { pattern: REGEX, regex: true }, [REGEX]],
    [`case-insensitive '${ICASE.toLowerCase()}'`, { pattern: ICASE, ignoreCase: true }, ["-i", "-F", ICASE]],
  ];
  const rows: string[] = [];
  for (const [name, options, rgArgs] of cases) {
    const collected: number[] = [];
    const firsts: number[] = [];
    const streamed: number[] = [];
    const rg: number[] = [];
    let count = 0;
    let rgCount = 0;
    for (let i = 0; i <= RUNS; i++) {
      let t0 = performance.now();
      const r = await backend.search({ ...options, timeoutMs: 600_000 });
      if (r.error) throw new Error(r.error);
      const tCollected = performance.now() - t0;
      t0 = performance.now();
      let first = 0;
      let n = 0;
      for await (const _ of backend.searchStream({ ...options, timeoutMs: 600_000 }) as AsyncIterable<GrepMatch>) {
        if (n++ === 0) first = performance.now() - t0;
      }
      const tStreamed = performance.now() - t0;
      t0 = performance.now();
      rgCount = ripgrep(rgArgs)();
      const tRg = performance.now() - t0;
      count = n;
      if (n !== r.matches!.length) throw new Error(`${name}: stream ${n} rows, search ${r.matches!.length}`);
      if (i === 0) continue; // warm-up
      collected.push(tCollected);
      firsts.push(first);
      streamed.push(tStreamed);
      rg.push(tRg);
    }
    const row = `| ${name} | ${count} | ${median(collected).toFixed(0)} | ${median(firsts).toFixed(1)} | ${median(streamed).toFixed(0)} | ${median(rg).toFixed(0)} (${rgCount} lines) | ${(median(streamed) / median(rg)).toFixed(2)}x |`;
    log(row);
    rows.push(row);
  }

  // Capped searches (what an agent's grep asks for) against `rg | head -n N` (ripgrep stops at
  // the pipe's close), and the rare literal: right after the import, then after a manual ANALYZE.
  const cappedRows: string[] = [];
  const capped = async (state: string) => {
    const shell = (literal: string, cap: number | null) => {
      const head = cap === null ? "" : ` | head -n ${cap}`;
      const r = spawnSync("sh", ["-c", `rg --no-ignore --hidden -n -F '${literal}' '${disk}'${head}`], {
        maxBuffer: 1 << 30,
      });
      if (r.status !== 0) throw new Error(`rg${head} failed: ${r.stderr}`);
    };
    const capCases: Array<[string, SearchOptions, number | null]> = [
      ...CAPS.map((n): [string, SearchOptions, number] => [
        `common literal '${COMMON}', maxCount ${n}`,
        { pattern: COMMON, maxCount: n },
        n,
      ]),
      ["rare literal", { pattern: RARE }, null],
    ];
    for (const [name, options, cap] of capCases) {
      const ours: number[] = [];
      const theirs: number[] = [];
      for (let i = 0; i <= RUNS + 2; i++) {
        let t0 = performance.now();
        const r = await backend.search({ ...options, timeoutMs: 600_000 });
        if (r.error) throw new Error(r.error);
        const tOurs = performance.now() - t0;
        t0 = performance.now();
        shell(options.pattern, cap);
        const tTheirs = performance.now() - t0;
        if (i === 0) continue; // warm-up
        ours.push(tOurs);
        theirs.push(tTheirs);
      }
      const row = `| ${name} | ${state} | ${median(ours).toFixed(1)} | ${median(theirs).toFixed(1)} | ${(median(ours) / median(theirs)).toFixed(2)}x |`;
      log(row);
      cappedRows.push(row);
    }
  };
  await capped("right after the import");
  await admin.query(`ANALYZE ${schema}.files, ${schema}.chunks`);
  await capped("after ANALYZE");

  const base = ["--database-url", url, "--schema", schema, "-w", "w"];
  const cliRows: string[] = [];
  const cliCase = async (name: string, args: string[]) => {
    const samples = [];
    for (let i = 0; i <= RUNS; i++) samples.push(await cli(args));
    samples.shift();
    if (samples.some((s) => s.code !== 0)) throw new Error(`${name}: exit ${samples.map((s) => s.code)}`);
    const row = `| ${name} | ${median(samples.map((s) => s.first)).toFixed(0)} | ${median(samples.map((s) => s.total)).toFixed(0)} | ${median(samples.map((s) => s.rss)).toFixed(0)} | ${(median(samples.map((s) => s.bytes)) / 1048576).toFixed(1)} |`;
    log(row);
    cliRows.push(row);
  };
  await cliCase("`--version` (start-up alone)", ["--version"]);
  await cliCase(`\`grep ${COMMON}\` (streamed)`, [...base, "grep", COMMON]);
  await cliCase(`\`grep ${COMMON} --max-count 10\``, [...base, "grep", COMMON, "--max-count", "10"]);
  await cliCase(`\`--json grep ${COMMON}\` (collected)`, [...base, "--json", "grep", COMMON]);
  await cliCase("`grep " + RARE + "`", [...base, "grep", RARE]);
  const exported = path.join(out, "exported");
  const exportRow = async () => {
    await rm(exported, { recursive: true, force: true });
    return cli([...base, "export", exported]);
  };
  const exports = [];
  for (let i = 0; i < RUNS; i++) exports.push(await exportRow());
  const exportLine = `| \`export\` of the workspace | – | ${median(exports.map((s) => s.total)).toFixed(0)} | ${median(exports.map((s) => s.rss)).toFixed(0)} | – |`;
  log(exportLine);
  cliRows.push(exportLine);

  console.log(
    `Corpus: ${files.length} files, ${mib.toFixed(1)} MiB; imported at ${(mib / importSeconds).toFixed(1)} MiB/s; ` +
      `stored ${(size / 1048576).toFixed(0)} MiB, ${(size / corpusBytes).toFixed(2)}x (MiB: ${breakdown}).\n`,
  );
  if (storeLine) console.log(storeLine);
  console.log(editLine);
  console.log(
    "| case | matching lines | search() ms | stream: first row ms | stream: all ms | ripgrep ms | stream ÷ rg |",
  );
  console.log("|---|---|---|---|---|---|---|");
  for (const r of rows) console.log(r);
  console.log("\n| capped case | state | search() ms | rg \\| head ms | ours ÷ rg |");
  console.log("|---|---|---|---|---|");
  for (const r of cappedRows) console.log(r);
  console.log("\n| CLI | first line ms | total ms | peak RSS MiB | stdout MiB |");
  console.log("|---|---|---|---|---|");
  for (const r of cliRows) console.log(r);
} finally {
  await backend.close();
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
  await admin.end();
  await rm(out, { recursive: true, force: true });
  await stop();
}
