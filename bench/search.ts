/**
 * `npm run bench`: server-side search at scale, against the baselines measured in the same run:
 * ripgrep on local disk, deepagents' StoreBackend on LangGraph's PostgresStore (same server), and
 * a naive fetch-every-row client. Writes the "Search at scale" section of BENCHMARKS.md.
 *
 *   node --import tsx bench/search.ts     (DATABASE_URL, else an embedded server)
 *   BENCH_MB=150 BENCH_MIN_FILES=15000 BENCH_RUNS=7 BENCH_SKIP_STORE=1 to tune
 */
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import os, { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { PostgresBackend } from "../src/index.js";
import { benchDatabase, timeMedian } from "./common.js";
import { capturePlans } from "../test/helpers/plans.js";

const TARGET_MB = Number(process.env.BENCH_MB ?? 150);
const MIN_FILES = Number(process.env.BENCH_MIN_FILES ?? 15_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const SLOW_RUNS = 3;
const SCHEMA = "bench_search";
const WS = "corpus";
const RARE = "zqxjkvbw_rare_token_42";

const time = (fn: () => Promise<unknown>, runs = RUNS) => timeMedian(fn, runs);
const log = (...a: unknown[]) => console.error("[bench]", ...a);

// ---- corpus ------------------------------------------------------------------------------------
async function textFiles(dir: string, out: Array<[string, Buffer]> = []): Promise<Array<[string, Buffer]>> {
  for (const e of (await readdir(dir, { withFileTypes: true }).catch(() => [])).sort((a, b) =>
    a.name < b.name ? -1 : 1,
  )) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) await textFiles(full, out);
    else if (e.isFile() && /\.(js|mjs|cjs|ts|mts|cts|json|md|txt|yml|yaml)$/.test(e.name)) {
      const s = await stat(full);
      if (s.size === 0 || s.size > 1 << 20) continue;
      const b = await readFile(full);
      if (!b.includes(0)) out.push([path.relative("node_modules", full).split(path.sep).join("/"), b]);
    }
  }
  return out;
}

const source = await textFiles("node_modules");
const sourceBytes = source.reduce((n, [, b]) => n + b.length, 0);
const replicas = Math.max(Math.ceil((TARGET_MB * 1048576) / sourceBytes), Math.ceil(MIN_FILES / source.length));
const corpus: Array<[string, Buffer]> = [];
for (let r = 0; r < replicas; r++) for (const [rel, b] of source) corpus.push([`/r${r}/${rel}`, b]);
// Fixtures for specific cases: one rare token, a 5 MB file, a directory with 10,000 descendants,
// a 1,000-file subtree for glob.
corpus.push(["/r1/zz-rare/needle.md", Buffer.from(`intro\nthe ${RARE} lives here\n`)]);
const big: string[] = [];
for (let i = 0; big.join("\n").length < 5 * 1048576; i++) big.push(source[i % source.length][1].toString("utf8"));
corpus.push(["/big/five-mb.txt", Buffer.from(big.join("\n"))]);
for (let i = 0; i < 10_000; i++) corpus.push([`/many/d${i % 100}/f${i}.txt`, Buffer.from(`file ${i}\n`)]);
for (let i = 0; i < 1_000; i++)
  corpus.push([`/sub1k/p${i % 20}/f${i}.${i % 10 === 0 ? "md" : "ts"}`, source[i % source.length][1]]);
const corpusBytes = corpus.reduce((n, [, b]) => n + b.length, 0);
log(
  `corpus: ${corpus.length} files, ${(corpusBytes / 1048576).toFixed(0)} MiB (${replicas} replicas of ${source.length} node_modules files)`,
);

// The same files on local disk, for ripgrep.
const diskRoot = await mkdtemp(path.join(tmpdir(), "bench-corpus-"));
for (const [p, b] of corpus) {
  await mkdir(path.dirname(path.join(diskRoot, p)), { recursive: true });
  await writeFile(path.join(diskRoot, p), b);
}

// ---- servers -----------------------------------------------------------------------------------
const { url, embedded, stop: stopServer } = await benchDatabase();
const admin = new pg.Client({ connectionString: url });
await admin.connect();
await admin.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
const backend = new PostgresBackend({ connectionString: url, schema: SCHEMA, workspace: WS, maxPoolSize: 10 });
await backend.initialize();
const version = (await admin.query("SHOW server_version")).rows[0].server_version;

// ---- import ------------------------------------------------------------------------------------
let t = performance.now();
for (let i = 0; i < corpus.length; ) {
  const batch: Array<[string, Uint8Array]> = [];
  let bytes = 0;
  while (i < corpus.length && batch.length < 500 && bytes < 16 << 20) {
    batch.push(corpus[i]);
    bytes += corpus[i++][1].length;
  }
  const r = await backend.uploadFiles(batch);
  if (r.some((x) => x.error)) throw new Error("import failed");
}
const importSeconds = (performance.now() - t) / 1000;
// A mid-size workspace beside it: the first 2,000 files of /r0 plus the rare token. Whether the
// planner takes the trigram index or reads a primary-key range depends on the workspace's size,
// so search is measured at this size too (and on disk, for ripgrep).
const MID_WS = "mid";
const midFiles: Array<[string, Buffer]> = corpus
  .filter(([p]) => p.startsWith("/r0/"))
  .slice(0, 2000)
  .map(([p, b]) => [p.slice(3), b]);
midFiles.push(["/zz-rare/needle.md", Buffer.from(`intro\nthe ${RARE} lives here\n`)]);
if ((await backend.withWorkspace(MID_WS).uploadFiles(midFiles)).some((x) => x.error)) throw new Error("import failed");
const midRoot = await mkdtemp(path.join(tmpdir(), "bench-mid-"));
for (const [p, b] of midFiles) {
  await mkdir(path.dirname(path.join(midRoot, p)), { recursive: true });
  await writeFile(path.join(midRoot, p), b);
}
await admin.query(`VACUUM ANALYZE ${SCHEMA}.files, ${SCHEMA}.chunks`);
log(`imported in ${importSeconds.toFixed(1)} s`);

// The floor under import with a trigram index: pg_trgm extracting the trigrams of every chunk
// (what each index insert must do first), timed alone over the same rows, one backend.
const trgmSchema = (
  await admin.query("SELECT extnamespace::regnamespace::text AS s FROM pg_extension WHERE extname = 'pg_trgm'")
).rows[0].s;
t = performance.now();
await admin.query(`SELECT sum(array_length(${trgmSchema}.show_trgm(content), 1)) FROM ${SCHEMA}.chunks`);
const trigramSeconds = (performance.now() - t) / 1000;
const sizes = (
  await admin.query(
    `SELECT c.relname AS name, pg_total_relation_size(c.oid) AS bytes FROM pg_class c
   WHERE c.relnamespace = '${SCHEMA}'::regnamespace AND c.relname IN ('files', 'chunks', 'chunks_content_trgm_idx', 'chunks_pkey', 'files_pkey')`,
  )
).rows as Array<{ name: string; bytes: string }>;
const sizeOf = (name: string) => `${(Number(sizes.find((r) => r.name === name)?.bytes ?? 0) / 1048576).toFixed(0)} MiB`;

// ---- baselines ---------------------------------------------------------------------------------
function ensureRipgrep(): string | null {
  if (spawnSync("rg", ["--version"]).status === 0) return "rg";
  log("installing ripgrep from Debian ...");
  spawnSync("apt-get", ["install", "-y", "-qq", "ripgrep"], { stdio: "ignore" });
  return spawnSync("rg", ["--version"]).status === 0 ? "rg" : null;
}
const rg = ensureRipgrep();
const ripgrep =
  (args: string[], dir = diskRoot) =>
  async () => {
    const r = spawnSync(rg!, ["-n", "--no-messages", ...args, dir], { maxBuffer: 1 << 30 });
    if (r.status !== 0 && r.status !== 1) throw new Error(`rg failed: ${r.stderr}`);
  };

const naive = (test: (line: string) => boolean) => async () => {
  const { rows } = await admin.query(
    `SELECT path, content FROM ${SCHEMA}.files WHERE workspace = $1 AND content IS NOT NULL`,
    [WS],
  );
  const out: Array<[string, number]> = [];
  for (const r of rows)
    (r.content as string).split("\n").forEach((l, i) => {
      if (test(l)) out.push([r.path, i + 1]);
    });
  return out;
};

type Call = (...args: any[]) => any;
let store: { grep: Call; glob: Call; ls: Call; read: Call } | null = null;
let storeImportSeconds = 0;
if (!process.env.BENCH_SKIP_STORE) {
  const { PostgresStore } = await import("@langchain/langgraph-checkpoint-postgres/store");
  const { StoreBackend } = await import("deepagents");
  await admin.query("DROP SCHEMA IF EXISTS bench_store CASCADE");
  const pgStore = PostgresStore.fromConnString(url, { schema: "bench_store" });
  await pgStore.setup();
  const sb = new StoreBackend({ store: pgStore, namespace: ["bench"] });
  t = performance.now();
  for (let i = 0; i < corpus.length; i += 200) await sb.uploadFiles(corpus.slice(i, i + 200));
  storeImportSeconds = (performance.now() - t) / 1000;
  store = sb as never;
  log(`StoreBackend+PostgresStore imported in ${storeImportSeconds.toFixed(0)} s`);
}

// ---- cases -------------------------------------------------------------------------------------
interface Row {
  name: string;
  ours: number;
  rg?: number;
  store?: number;
  naive?: number;
  target?: string;
  met?: boolean;
}
const rows: Row[] = [];
async function bench(
  row: Omit<Row, "ours" | "rg" | "store" | "naive"> & {
    ours: () => Promise<unknown>;
    rg?: () => Promise<unknown>;
    store?: () => Promise<unknown>;
    naive?: () => Promise<unknown>;
    check?: (ms: number, r: Partial<Row>) => boolean;
  },
) {
  log(row.name);
  const r: Row = { name: row.name, ours: await time(row.ours), target: row.target };
  if (row.rg && rg) r.rg = await time(row.rg, SLOW_RUNS);
  if (row.store && store) r.store = await time(row.store, SLOW_RUNS);
  if (row.naive) r.naive = await time(row.naive, SLOW_RUNS);
  if (row.check) r.met = row.check(r.ours, r);
  rows.push(r);
}

const hits = (re: RegExp) => (l: string) => re.test(l);
await bench({
  name: "grep rare literal",
  target: "≤ 20 ms, ≥ 10× rg, ≥ 50× StoreBackend",
  ours: () => backend.grep(RARE),
  rg: ripgrep(["-F", RARE]),
  store: () => store!.grep(RARE),
  naive: naive((l) => l.includes(RARE)),
  check: (ms, r) => ms <= 20 && (!r.rg || r.rg / ms >= 10) && (!r.store || r.store / ms >= 50),
});
const mid = backend.withWorkspace(MID_WS);
await bench({
  name: `grep rare literal, 2,000-file workspace (${(midFiles.reduce((n, [, b]) => n + b.length, 0) / 1048576).toFixed(0)} MiB)`,
  ours: () => mid.grep(RARE),
  rg: ripgrep(["-F", RARE], midRoot),
});
await bench({
  name: "regex with trigrams `zqxj\\w+ lives`, 2,000-file workspace",
  ours: () => mid.search({ pattern: "zqxj\\w+ lives", regex: true }),
  rg: ripgrep(["zqxj\\w+ lives"], midRoot),
});
await bench({
  name: "grep common literal `function`, maxCount 100",
  target: "≤ 10 ms",
  ours: () => backend.grep("function", "/", null, 100),
  rg: ripgrep(["-F", "function", "-m", "100"]),
  store: () => store!.grep("function", "/", null, 100),
  check: (ms) => ms <= 10,
});
await bench({
  name: "grep common literal `function`, maxCount 1000",
  target: "≤ 30 ms",
  ours: () => backend.grep("function", "/", null, 1000),
  check: (ms) => ms <= 30,
});
await bench({
  name: "grep common literal `function`, uncapped",
  target: "within 3× rg",
  ours: () => backend.grep("function"),
  rg: ripgrep(["-F", "function"]),
  naive: naive((l) => l.includes("function")),
  check: (ms, r) => !r.rg || ms <= 3 * r.rg,
});
await bench({
  name: "regex with trigrams `deprecat\\w+ since`",
  target: "≤ 50 ms",
  ours: () => backend.search({ pattern: "deprecat\\w+ since", regex: true }),
  rg: ripgrep(["deprecat\\w+ since"]),
  naive: naive(hits(/deprecat\w+ since/)),
  check: (ms) => ms <= 50,
});
await bench({
  name: "regex without trigrams `\\d{3}-\\d{4}`",
  target: "within 3× rg",
  ours: () => backend.search({ pattern: "\\d{3}-\\d{4}", regex: true }),
  rg: ripgrep(["\\d{3}-\\d{4}"]),
  naive: naive(hits(/\d{3}-\d{4}/)),
  check: (ms, r) => !r.rg || ms <= 3 * r.rg,
});
await bench({
  name: "case-insensitive literal `DEPRECATED`",
  ours: () => backend.search({ pattern: "DEPRECATED", ignoreCase: true }),
  rg: ripgrep(["-F", "-i", "DEPRECATED"]),
  naive: naive((l) => l.toLowerCase().includes("deprecated")),
});
await bench({
  name: "grep `function` in a subdirectory (/r0/@langchain)",
  ours: () => backend.grep("function", "/r0/@langchain"),
  rg: ripgrep(["-F", "function"], path.join(diskRoot, "r0/@langchain")),
});
await bench({
  name: "grep `function` restricted to glob `*.md`",
  ours: () => backend.grep("function", "/", "*.md"),
  rg: ripgrep(["-F", "function", "-g", "*.md"]),
});
await bench({
  name: "glob `**/*.md` in a 1,000-file subtree",
  target: "≤ 10 ms",
  ours: () => backend.glob("**/*.md", "/sub1k"),
  store: () => store!.glob("**/*.md", "/sub1k"),
  check: (ms) => ms <= 10,
});
await bench({
  name: "ls of a directory with 10,000 descendants",
  target: "≤ 5 ms",
  ours: () => backend.ls("/many"),
  store: () => store!.ls("/many"),
  check: (ms) => ms <= 5,
});
await bench({
  name: "read 100 lines from the middle of a 5 MB file",
  target: "≤ 10 ms",
  ours: () => backend.read("/big/five-mb.txt", 50_000, 100),
  store: () => store!.read("/big/five-mb.txt", 50_000, 100),
  check: (ms) => ms <= 10,
});

const tenKb = "x".repeat(100) + "\n";
let flip = 0;
await bench({ name: "write a 10 KB file", ours: () => backend.write("/edit/w.txt", tenKb.repeat(100)) });
await backend.write("/edit/ten-kb.txt", tenKb.repeat(99) + "marker0\n");
await bench({
  name: "edit a 10 KB file (one replacement)",
  target: "≤ 3 ms",
  ours: () => backend.edit("/edit/ten-kb.txt", `marker${flip}`, `marker${++flip}`),
  check: (ms) => ms <= 3,
});
// Not a target, but the price of chunks: an edit re-cuts the whole file (only changed chunks are rewritten).
await backend.write(
  "/edit/five-mb.txt",
  corpus.find(([p]) => p === "/big/five-mb.txt")![1].toString("utf8") + "\nmarker0\n",
);
let bigFlip = 0;
await bench({
  name: "edit a 5 MB file (one replacement)",
  ours: () => backend.edit("/edit/five-mb.txt", `marker${bigFlip}`, `marker${++bigFlip}`),
});

// 8 clients, each editing its own file, for a fixed number of edits.
for (let c = 0; c < 8; c++) await backend.write(`/edit/c${c}.txt`, "v0\n");
t = performance.now();
await Promise.all(
  Array.from({ length: 8 }, async (_, c) => {
    for (let i = 0; i < 200; i++) await backend.edit(`/edit/c${c}.txt`, `v${i}`, `v${i + 1}`);
  }),
);
const editsPerSecond = 1600 / ((performance.now() - t) / 1000);

// ---- plans -------------------------------------------------------------------------------------
// The plans of the statements the backend really runs (inside fs_search, fs_glob, fs_ls), with
// EXPLAIN ANALYZE, BUFFERS: auto_explain on a backend over a one-connection pool.
const capture = await capturePlans({ analyze: true, connectionString: url });
const explained = new PostgresBackend({ pool: capture.pool, schema: SCHEMA, workspace: WS });
// (Either strategy of fs_search: the trigram query joins chunks to files on the set; the
// path-order cursor of 0014 probes each file's set.)
const SEARCH = "c.chunk_set = f.chunk_set";
const plans = {
  "grep, rare literal": await capture.planOf(SEARCH, () => explained.grep(RARE)),
  "grep, rare literal, 2,000-file workspace": await capture.planOf(SEARCH, () =>
    explained.withWorkspace(MID_WS).grep(RARE),
  ),
  "grep, common literal, maxCount 100": await capture.planOf(SEARCH, () => explained.grep("function", "/", null, 100)),
  "regex with trigrams": await capture.planOf(SEARCH, () =>
    explained.search({ pattern: "deprecat\\w+ since", regex: true }),
  ),
  "glob **/*.md under /sub1k": await capture.planOf("ORDER BY f.modified_at DESC", () =>
    explained.glob("**/*.md", "/sub1k"),
  ),
  "ls of /many (files)": await capture.planOf("f.parent = p_dir", () => explained.ls("/many")),
};
await explained.close();
await capture.end();

// ---- report ------------------------------------------------------------------------------------
const fmt = (ms?: number) => (ms === undefined ? "—" : ms >= 100 ? ms.toFixed(0) : ms.toFixed(2));
const ratio = (base?: number, ours?: number) => (base === undefined || !ours ? "—" : `${(base / ours).toFixed(1)}×`);
const lines: string[] = [];
lines.push("<!-- bench:search:start (generated by `npm run bench`; edits here are overwritten) -->");
lines.push("## Search at scale (`npm run bench`)", "");
lines.push(
  `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; Node ${process.version}; PostgreSQL ${version}${embedded ? " (embedded)" : ""}; ${new Date().toISOString().slice(0, 10)}.`,
);
lines.push(
  `Corpus: ${corpus.length.toLocaleString("en")} files, ${(corpusBytes / 1048576).toFixed(0)} MiB — ${replicas} copies of every text file under node_modules (${source.length.toLocaleString("en")} files) under /r0 … /r${replicas - 1}, plus a rare token, a 5 MB file, /many (10,000 files) and /sub1k (1,000 files); a second workspace holds the first 2,000 files of /r0 and the rare token.`,
);
lines.push(
  `Medians of ${RUNS} runs (baselines ${SLOW_RUNS}) after a warm-up, all in one process run. Ratios are baseline ÷ ours (higher = we are faster).`,
  "",
);
lines.push(
  "| case | ours (ms) | ripgrep (ms) | vs rg | StoreBackend+PostgresStore (ms) | vs store | naive client (ms) | vs naive | target | met |",
);
lines.push("|---|---:|---:|---:|---:|---:|---:|---:|---|---|");
for (const r of rows) {
  lines.push(
    `| ${r.name} | ${fmt(r.ours)} | ${fmt(r.rg)} | ${ratio(r.rg, r.ours)} | ${fmt(r.store)} | ${ratio(r.store, r.ours)} | ${fmt(r.naive)} | ${ratio(r.naive, r.ours)} | ${r.target ?? ""} | ${r.met === undefined ? "" : r.met ? "yes" : "**no**"} |`,
  );
}
lines.push("");
lines.push(
  `Bulk import: ${(corpusBytes / 1048576 / importSeconds).toFixed(1)} MB/s (${importSeconds.toFixed(1)} s, batches of 500 files, trigram index maintained; target ≥ 20 MB/s: ${corpusBytes / 1048576 / importSeconds >= 20 ? "met" : "**not met**"})` +
    (store ? `; StoreBackend+PostgresStore: ${(corpusBytes / 1048576 / storeImportSeconds).toFixed(1)} MB/s.` : "."),
);
lines.push(
  `Why the import target is missed: before any index insert, pg_trgm's trigram extraction alone runs at ${(corpusBytes / 1048576 / trigramSeconds).toFixed(1)} MB/s on one core (\`show_trgm\` over every chunk: ${trigramSeconds.toFixed(1)} s of CPU for this corpus). 20 MB/s would take both cores doing nothing but extraction — no room left for the heap and TOAST writes, the chunk cut, the GIN merges or the client — so with a maintained trigram index this 2-core machine cannot reach it; StoreBackend imports faster because it indexes nothing.`,
);
lines.push(
  `Storage (PostgreSQL sizes incl. TOAST and indexes): files ${sizeOf("files")} (content compressed), chunks ${sizeOf("chunks")} (uncompressed, inline) of which the trigram index ${sizeOf("chunks_content_trgm_idx")}; corpus ${(corpusBytes / 1048576).toFixed(0)} MiB.`,
);
lines.push(`Concurrent edits, 8 clients on their own files: ${editsPerSecond.toFixed(0)} edits/s.`, "");
for (const [name, plan] of Object.entries(plans))
  lines.push(
    `<details><summary>EXPLAIN (ANALYZE, BUFFERS): ${name}</summary>`,
    "",
    "```",
    plan,
    "```",
    "</details>",
    "",
  );
lines.push("<!-- bench:search:end -->");
const section = lines.join("\n");

const file = new URL("../BENCHMARKS.md", import.meta.url);
const current = await readFile(file, "utf8");
const next = /<!-- bench:search:start[\s\S]*?<!-- bench:search:end -->/.test(current)
  ? current.replace(/<!-- bench:search:start[\s\S]*?<!-- bench:search:end -->/, () => section)
  : current.trimEnd() + "\n\n" + section + "\n";
await writeFile(file, next);
console.log(section);

await backend.close();
await admin.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
await admin.query("DROP SCHEMA IF EXISTS bench_store CASCADE").catch(() => {});
await admin.end();
await rm(diskRoot, { recursive: true, force: true });
await rm(midRoot, { recursive: true, force: true });
await stopServer();
