/**
 * `npm run bench:fork`: what a fork costs on PostgreSQL (issue 13: ≤ 1 s and ≤ 5% extra storage
 * for a 10,000-file / 100 MB workspace), on a code corpus and a prose corpus, in one run:
 *  - fork time (median) with the fork's history on (the default) and off, and the bytes the
 *    schema grew by, against the corpus size: at commit, and settled (after a vacuum of the change
 *    log's staging table, whose rows are dead once the fork commits);
 *  - the baseline measured in the same run: the copy an application makes without fork
 *    (downloadFiles of every file, uploadFiles into a new workspace), its time and bytes;
 *  - grep in the fork against grep in the source (a rare literal; a common one capped at 100);
 *  - the first edit of a file the fork shares (it cuts a chunk set of its own) and the next one.
 * Prints Markdown.   DATABASE_URL=... node --import tsx bench/fork.ts   (FORK_FILES, FORK_BYTES to scale)
 */
import pg from "pg";
import { PostgresBackend } from "../src/postgres/index.js";
import { benchDatabase, median, timeMedian } from "./common.js";

const FILES = Number(process.env.FORK_FILES ?? 10_000);
const BYTES = Number(process.env.FORK_BYTES ?? 100_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const db = await benchDatabase();
const schema = `bench_fork_${Date.now().toString(36)}`;
const admin = new pg.Client({ connectionString: db.url });
await admin.connect();
const log = (...a: unknown[]) => console.error("[bench:fork]", ...a);
const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

// Deterministic text: source code over a vocabulary of identifiers, or English-like prose.
let seed = 7;
const rand = () => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
};
const vocabulary = Array.from(
  { length: 4000 },
  (_, i) => `${["get", "set", "make", "read", "parse"][i % 5]}${Math.floor(rand() * 1e7).toString(36)}`,
);
const words = "the agent read a file and changed its section before it moved on to another part of the work".split(" ");
const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
function fileText(kind: "code" | "prose", bytes: number): string {
  const lines: string[] = [];
  let size = 0;
  while (size < bytes) {
    const line =
      kind === "code"
        ? `  const ${pick(vocabulary)} = ${pick(vocabulary)}(${pick(vocabulary)}, ${Math.floor(rand() * 1000)});`
        : Array.from({ length: 14 }, () => pick(words)).join(" ") + ".";
    lines.push(line);
    size += line.length + 1;
  }
  return `${lines.join("\n")}\n`;
}

const schemaBytes = async () =>
  Number(
    (
      await admin.query(
        `SELECT sum(pg_total_relation_size(c.oid))::bigint AS n FROM pg_class c
         WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'm')`,
        [schema],
      )
    ).rows[0].n,
  );

const backend = new PostgresBackend({ connectionString: db.url, schema, workspace: "w", maxPoolSize: 4 });
await backend.initialize();
const out: string[] = [
  `${FILES.toLocaleString("en")} files, ${mib(BYTES)} per corpus; medians of ${RUNS} runs (the copy baseline: one run).`,
  "",
  "| corpus | fork, history on | fork, history off | storage added, history on: at commit / settled (× corpus) | storage added, history off: at commit / settled | copy by download + upload | its storage (× corpus) | grep rare: source / fork (ms) | grep common, max 100: source / fork (ms) | first edit of a shared file / next edit (ms) |",
  "|---|---|---|---|---|---|---|---|---|---|",
];
try {
  for (const kind of ["code", "prose"] as const) {
    const source = backend.withWorkspace(`${kind}-src`);
    const paths = Array.from({ length: FILES }, (_, i) => `/d${i % 100}/f${i}.${kind === "code" ? "ts" : "md"}`);
    let t = performance.now();
    for (let i = 0; i < FILES; i += 500) {
      const batch = paths
        .slice(i, i + 500)
        .map((p) => [p, Buffer.from(`${fileText(kind, BYTES / FILES)}// end ${p}\n`)] as [string, Buffer]);
      if (i === 0) batch[0][1] = Buffer.from(`${batch[0][1].toString()}the zqxjrare marker\n`);
      await backend.withWorkspace(`${kind}-src`).uploadFiles(batch);
    }
    log(kind, "uploaded in", Math.round(performance.now() - t), "ms");
    await admin.query(`ANALYZE ${schema}.files, ${schema}.chunks`);

    let n = 0;
    const forkOnce = async (history: boolean) => {
      const name = `${kind}-fork-${history ? "h" : "n"}-${n++}`;
      if (!history) await backend.withWorkspace(name).setHistory({ enabled: false });
      const before = await schemaBytes();
      const started = performance.now();
      await source.fork(name);
      const ms = performance.now() - started;
      const added = (await schemaBytes()) - before;
      // Settled: the change log's staging rows (0015) are dead once the fork commits; vacuum
      // (autovacuum, soon after) returns their pages. What stays is the fork's own rows.
      await admin.query(`VACUUM ${schema}.changes_pending`);
      return { name, ms, added, settled: (await schemaBytes()) - before };
    };
    const withHistory: number[] = [];
    const withoutHistory: number[] = [];
    const added = { on: [] as number[], off: [] as number[] };
    const settled = { on: [] as number[], off: [] as number[] };
    let fork = "";
    for (let r = 0; r < RUNS; r++) {
      const h = await forkOnce(true);
      withHistory.push(h.ms);
      added.on.push(h.added);
      settled.on.push(h.settled);
      fork = h.name;
      const o = await forkOnce(false);
      withoutHistory.push(o.ms);
      added.off.push(o.added);
      settled.off.push(o.settled);
    }
    log(kind, "forks", withHistory, withoutHistory);

    // The baseline: what an application does without fork.
    const before = await schemaBytes();
    t = performance.now();
    const copy = backend.withWorkspace(`${kind}-copy`);
    for (let i = 0; i < FILES; i += 500) {
      const got = await source.downloadFiles(paths.slice(i, i + 500));
      await copy.uploadFiles(got.map((g) => [g.path, g.content!] as [string, Uint8Array]));
    }
    const copyMs = performance.now() - t;
    const copyBytes = (await schemaBytes()) - before;
    log(kind, "copy", Math.round(copyMs), "ms");

    const f = backend.withWorkspace(fork);
    const grep = async (b: PostgresBackend, pattern: string, max: number | null) =>
      timeMedian(() => b.grep(pattern, "/", null, max ?? undefined), 7);
    const common = kind === "code" ? "const" : "the agent";
    const rare = [await grep(source, "zqxjrare", null), await grep(f, "zqxjrare", null)];
    const capped = [await grep(source, common, 100), await grep(f, common, 100)];

    const edit = async (b: PostgresBackend, path: string, from: string, to: string) => {
      const started = performance.now();
      const r = await b.edit(path, `// ${from} ${path}`, `// ${to} ${path}`);
      if (r.error) throw new Error(r.error);
      return performance.now() - started;
    };
    const firstEdits: number[] = [];
    const nextEdits: number[] = [];
    for (let i = 1; i <= 7; i++) {
      firstEdits.push(await edit(f, paths[i], "end", "END"));
      nextEdits.push(await edit(f, paths[i], "END", "end"));
    }
    const x = (bytes: number) => `${mib(bytes)} (${(bytes / BYTES).toFixed(3)}×)`;
    const share = (bytes: number[]) => `${(median(bytes) / BYTES).toFixed(3)}×`;
    out.push(
      `| ${kind} | ${Math.round(median(withHistory))} ms | ${Math.round(median(withoutHistory))} ms | ${share(added.on)} / ${share(settled.on)} | ${share(added.off)} / ${share(settled.off)} | ${Math.round(copyMs)} ms | ${x(copyBytes)} | ${rare.map((v) => v.toFixed(1)).join(" / ")} | ${capped.map((v) => v.toFixed(1)).join(" / ")} | ${median(firstEdits).toFixed(1)} / ${median(nextEdits).toFixed(1)} |`,
    );
  }
  console.log(out.join("\n"));
} finally {
  await backend.close();
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
  await db.stop();
}
