/**
 * Line-storage layout decision: whole-file text rows (split into lines inside SQL with
 * string_to_table) versus one row per line, on the same server, same corpus, same run.
 *
 *   node --import tsx bench/line-layout.ts            (DATABASE_URL, else an embedded server)
 *
 * Corpus: real text files under node_modules/ (JS, TS, JSON, Markdown), up to BENCH_FILES files.
 * Prints a Markdown table of medians; BENCHMARKS.md keeps the last run's numbers.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import { PostgresBackend } from "../src/index.js";
import { benchDatabase, timeMedian } from "./common.js";

const MAX_FILES = Number(process.env.BENCH_FILES ?? 6000);
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const SCHEMA = "bench_layout";

async function corpus(): Promise<Array<[string, Buffer]>> {
  const out: Array<[string, Buffer]> = [];
  async function walk(dir: string) {
    if (out.length >= MAX_FILES) return;
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    entries.sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      if (out.length >= MAX_FILES) return;
      const full = path.join(dir, e.name);
      if (e.isDirectory()) await walk(full);
      else if (e.isFile() && /\.(js|mjs|cjs|ts|json|md)$/.test(e.name)) {
        const s = await stat(full);
        if (s.size > 0 && s.size < 1 << 20) {
          const buf = await readFile(full);
          if (!buf.includes(0)) out.push(["/" + path.relative("node_modules", full).split(path.sep).join("/"), buf]);
        }
      }
    }
  }
  await walk("node_modules");
  return out;
}

const time = (fn: () => Promise<unknown>, runs = RUNS) => timeMedian(fn, runs);
const { url, stop: stopServer } = await benchDatabase();

const files = await corpus();
const bytes = files.reduce((n, [, b]) => n + b.length, 0);
const admin = new pg.Client({ connectionString: url });
await admin.connect();
await admin.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);

// Layout A: whole-file rows, as shipped.
const backend = new PostgresBackend({ connectionString: url, schema: SCHEMA, workspace: "bench" });
await backend.initialize();
// Layout B: a row per line with its own trigram index.
const trgm = (
  await admin.query("SELECT extnamespace::regnamespace::text AS s FROM pg_extension WHERE extname = 'pg_trgm'")
).rows[0].s;
await admin.query(
  `CREATE TABLE ${SCHEMA}.lines (workspace text, path text COLLATE "C", n int, line text, PRIMARY KEY (workspace, path, n))`,
);
await admin.query(`CREATE INDEX lines_trgm ON ${SCHEMA}.lines USING gin (line ${trgm}.gin_trgm_ops)`);

const BATCH = 500;
const tImportA = performance.now();
for (let i = 0; i < files.length; i += BATCH) await backend.uploadFiles(files.slice(i, i + BATCH));
const importA = performance.now() - tImportA;

const tImportB = performance.now();
for (let i = 0; i < files.length; i += BATCH) {
  const p: string[] = [],
    n: number[] = [],
    l: string[] = [];
  for (const [fp, buf] of files.slice(i, i + BATCH)) {
    buf
      .toString("utf8")
      .split("\n")
      .forEach((line, j) => {
        p.push(fp);
        n.push(j + 1);
        l.push(line);
      });
  }
  await admin.query(`INSERT INTO ${SCHEMA}.lines SELECT 'bench', * FROM unnest($1::text[], $2::int[], $3::text[])`, [
    p,
    n,
    l,
  ]);
}
const importB = performance.now() - tImportB;
await admin.query(`ANALYZE ${SCHEMA}.files`);
await admin.query(`ANALYZE ${SCHEMA}.lines`);

const size = async (rel: string) =>
  Number((await admin.query(`SELECT pg_total_relation_size('${SCHEMA}.${rel}') AS s`)).rows[0].s);
const [sizeA, sizeB] = [await size("files"), await size("lines")];

// The biggest file for windowed reads and edits.
const [bigPath, bigBuf] = files.reduce((a, b) => (b[1].length > a[1].length ? b : a));
const bigLines = bigBuf.toString().split("\n").length;
const mid = Math.floor(bigLines / 2);

const grepB = (pattern: string, limit: number | null) =>
  admin.query(
    `SELECT path, n, line FROM ${SCHEMA}.lines WHERE workspace = 'bench' AND line LIKE $1 AND strpos(line, $2) > 0 ORDER BY path, n LIMIT $3`,
    ["%" + pattern.replace(/[\\%_]/g, "\\$&") + "%", pattern, limit],
  );
const rare = "zzzNOTHEREzzz_but_this_one";
await backend.write("/rare/needle.md", `x\n${rare}\n`);
await admin.query(
  `INSERT INTO ${SCHEMA}.lines VALUES ('bench', '/rare/needle.md', 1, 'x'), ('bench', '/rare/needle.md', 2, $1)`,
  [rare],
);

const rows: Array<[string, number, number]> = [];
const add = (name: string, a: number, b: number) => rows.push([name, a, b]);
add(`bulk import, ${files.length} files (ms, once)`, importA, importB);
add("grep rare literal", await time(() => backend.grep(rare)), await time(() => grepB(rare, null)));
add(
  "grep common literal `function`, maxCount 100",
  await time(() => backend.grep("function", "/", null, 100)),
  await time(() => grepB("function", 101)),
);
add(
  "grep common literal `function`, uncapped",
  await time(() => backend.grep("function"), 3),
  await time(() => grepB("function", null), 3),
);
add(
  `read 100 lines from the middle of the largest file (${(bigBuf.length / 1024).toFixed(0)} KiB)`,
  await time(() => backend.read(bigPath, mid, 100)),
  await time(() =>
    admin.query(
      `SELECT string_agg(line, E'\\n' ORDER BY n) FROM ${SCHEMA}.lines WHERE workspace = 'bench' AND path = $1 AND n > $2 AND n <= $2 + 100`,
      [bigPath, mid],
    ),
  ),
);
// Edit: toggle a unique marker on the middle line of the largest file. For line rows this is
// the best case (one line, no newline added or removed, so no renumbering).
const marked = bigBuf.toString().split("\n");
marked[mid] = "MARKER_A " + marked[mid];
await backend.write("/big/marked.txt", marked.join("\n"));
await admin.query(
  `INSERT INTO ${SCHEMA}.lines SELECT 'bench', '/big/marked.txt', n, line FROM unnest($1::text[]) WITH ORDINALITY AS u(line, n)`,
  [marked],
);
let flipA = 0,
  flipB = 0;
const toggle = (i: number) => (i % 2 ? ["MARKER_B", "MARKER_A"] : ["MARKER_A", "MARKER_B"]);
add(
  "edit: replace a unique string in the largest file",
  await time(() => {
    const [o, n] = toggle(flipA++);
    return backend.edit("/big/marked.txt", o, n);
  }),
  await time(() => {
    const [o, n] = toggle(flipB++);
    return admin.query(
      `UPDATE ${SCHEMA}.lines SET line = replace(line, $2, $3) WHERE workspace = 'bench' AND path = $1 AND strpos(line, $2) > 0`,
      ["/big/marked.txt", o, n],
    );
  }),
);

const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(2));
console.log(
  `Corpus: ${files.length} files, ${(bytes / 1048576).toFixed(1)} MiB of node_modules text; ${RUNS} runs, medians.\n`,
);
console.log("| operation | whole-file rows (ms) | line rows (ms) | line/whole |");
console.log("|---|---:|---:|---:|");
for (const [name, a, b] of rows) console.log(`| ${name} | ${fmt(a)} | ${fmt(b)} | ${(b / a).toFixed(2)}× |`);
console.log(
  `| storage, table + indexes (MiB) | ${(sizeA / 1048576).toFixed(1)} | ${(sizeB / 1048576).toFixed(1)} | ${(sizeB / sizeA).toFixed(2)}× |`,
);

await backend.close();
await admin.query(`DROP SCHEMA ${SCHEMA} CASCADE`);
await admin.end();
await stopServer();
