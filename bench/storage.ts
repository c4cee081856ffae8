/**
 * `npm run bench:storage`: how the chunks are stored and how the import runs, measured as
 * variants of the current schema on the same files in one run (issue 14, item 4; migration
 * 0024's choice). Each variant is a schema of its own, migrated, then altered as it says, then
 * filled through uploadFiles in batches of 500 files / 16 MiB; then its stored size (every table
 * with its TOAST and indexes) and three uncapped streamed searches (medians of 3).
 *
 *   BENCH_CORPUS (default /work/corpus/linux-source-6.1: see bench/streams.ts's header for how to
 *   get it), BENCH_MIB (default 100), BENCH_VARIANTS (comma-separated positions in VARIANTS, from 0; default all).
 */
import pg from "pg";
import { PostgresBackend } from "../src/index.js";
import type { SearchOptions } from "../src/protocol.js";
import { benchDatabase, corpusFiles, median } from "./common.js";

const CORPUS = process.env.BENCH_CORPUS ?? "/work/corpus/linux-source-6.1";
const LIMIT = Number(process.env.BENCH_MIB ?? 100) * 1048576;
const log = (...a: unknown[]) => console.error("[bench]", ...a);

/** What 0024 changed, undone: chunks inline and uncompressed, as 0003–0023 kept them. */
const PLAIN_CHUNKS = [
  "ALTER TABLE chunks ALTER COLUMN content SET STORAGE EXTENDED, ALTER COLUMN content SET COMPRESSION DEFAULT",
  "ALTER TABLE chunks SET (toast_tuple_target = 8160)",
];
/** text_chunks with another slot size (0003's cut: a line goes to the slot its first byte is in). */
const chunksOf = (bytes: number) => [
  `CREATE OR REPLACE FUNCTION text_chunks(p_content text)
   RETURNS TABLE(first_line integer, line_count integer, content text) LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
     SELECT min(s.n)::integer, count(*)::integer, string_agg(s.line, E'\\n' ORDER BY s.n)
     FROM (SELECT t.line, t.n,
                  (sum(octet_length(t.line) + 1) OVER (ORDER BY t.n ROWS UNBOUNDED PRECEDING)
                     - octet_length(t.line) - 1) / ${bytes} AS slot
           FROM string_to_table(p_content, E'\\n') WITH ORDINALITY AS t(line, n)) s
     GROUP BY s.slot
     UNION ALL
     SELECT 1, 1, '' WHERE p_content = '' $$`,
];
const VARIANTS: Array<{ name: string; alter: string[]; uploads: number }> = [
  { name: "chunks plain (0023)", alter: PLAIN_CHUNKS, uploads: 1 },
  { name: "chunks lz4 inline (0024)", alter: [], uploads: 1 },
  { name: "0024, two uploads in flight (the CLI's import)", alter: [], uploads: 2 },
  { name: "0024 + chunks of ~6 kB", alter: chunksOf(6000), uploads: 1 },
  { name: "0024 + chunks of ~12 kB", alter: chunksOf(12000), uploads: 1 },
  {
    name: "0024 + files.content lz4",
    alter: ["ALTER TABLE files ALTER COLUMN content SET COMPRESSION lz4"],
    uploads: 1,
  },
  {
    name: "0024 + GIN pending list 64 MB",
    alter: ["ALTER INDEX chunks_content_trgm_idx SET (gin_pending_list_limit = 65536)"],
    uploads: 1,
  },
  {
    name: "0024 + GIN fastupdate off",
    alter: ["ALTER INDEX chunks_content_trgm_idx SET (fastupdate = off)"],
    uploads: 1,
  },
  {
    name: "0024 without the trigram index (no search index: a bound)",
    alter: ["DROP INDEX chunks_content_trgm_idx"],
    uploads: 1,
  },
];
const SEARCHES: Array<[string, SearchOptions]> = [
  ["common literal 'return'", { pattern: "return" }],
  ["regex '\\bu(8|16)\\b'", { pattern: "\\bu(8|16)\\b", regex: true }],
  ["case-insensitive 'MUTEX_LOCK'", { pattern: "MUTEX_LOCK", ignoreCase: true }],
];

const corpus = await corpusFiles(CORPUS, LIMIT).catch((e) => {
  throw new Error(`no corpus at ${CORPUS} (${(e as Error).message}); see the header of bench/streams.ts`);
});
const files = corpus.files.map(([p, , b]): [string, Buffer] => [p, b]);
const bytes = corpus.bytes;
const mib = bytes / 1048576;
log(`corpus: ${files.length} files, ${mib.toFixed(1)} MiB from ${CORPUS}`);
const batches: Array<Array<[string, Uint8Array]>> = [];
for (let i = 0, size = 0; i < files.length; i++) {
  const last = batches.at(-1);
  if (last && last.length < 500 && size + files[i][1].length <= 16 << 20) {
    last.push(files[i]);
    size += files[i][1].length;
  } else {
    batches.push([files[i]]);
    size = files[i][1].length;
  }
}

const { url, stop } = await benchDatabase();
const admin = new pg.Client({ connectionString: url });
await admin.connect();
const only = process.env.BENCH_VARIANTS?.split(",");
const lines: string[] = [];
try {
  for (const [i, variant] of VARIANTS.entries()) {
    if (only && !only.includes(String(i))) continue;
    const schema = `bench_storage_${i}_${Date.now().toString(36)}`;
    const backend = new PostgresBackend({ connectionString: url, schema, workspace: "w", maxPoolSize: 4 });
    try {
      await backend.initialize();
      for (const statement of variant.alter) await admin.query(`SET search_path = ${schema}; ${statement}`);
      await admin.query("RESET search_path");
      const t = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: variant.uploads }, async () => {
          for (let b = next++; b < batches.length; b = next++) {
            if ((await backend.uploadFiles(batches[b])).some((r) => r.error)) throw new Error("upload failed");
          }
        }),
      );
      const seconds = (performance.now() - t) / 1000;
      const { rows } = await admin.query(
        `SELECT c.relname AS name, pg_total_relation_size(c.oid) AS size FROM pg_class c
         WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'r' ORDER BY 2 DESC`,
        [schema],
      );
      const size = rows.reduce((n, r) => n + Number(r.size), 0);
      const searches: string[] = [];
      for (const [, options] of SEARCHES) {
        const times: number[] = [];
        for (let run = 0; run <= 3; run++) {
          const t0 = performance.now();
          for await (const _ of backend.searchStream({ ...options, timeoutMs: 600_000 })) {
          }
          if (run > 0) times.push(performance.now() - t0);
        }
        searches.push(median(times).toFixed(0));
      }
      const line =
        `| ${variant.name} | ${(mib / seconds).toFixed(2)} | ${(size / 1048576).toFixed(0)} (${(size / bytes).toFixed(2)}×) | ` +
        `${(Number(rows.find((r) => r.name === "chunks")?.size ?? 0) / 1048576).toFixed(0)} | ` +
        `${(Number(rows.find((r) => r.name === "files")?.size ?? 0) / 1048576).toFixed(0)} | ${searches.join(" | ")} |`;
      log(line);
      lines.push(line);
    } finally {
      await backend.close();
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    }
  }
  console.log(`Corpus: ${files.length} files, ${mib.toFixed(1)} MiB.\n`);
  console.log(
    `| variant | import MiB/s | stored MiB (÷ corpus) | chunks MiB | files MiB | ${SEARCHES.map(([n]) => `${n} ms`).join(" | ")} |`,
  );
  console.log(`|---|---|---|---|---|${SEARCHES.map(() => "---").join("|")}|`);
  for (const line of lines) console.log(line);
} finally {
  await admin.end();
  await stop();
}
