/**
 * `npm run bench:relocate`: move() and copy() of a directory of 10,000 files (issue 15: a
 * directory of 10,000 files moved in ≤ 1 s, no chunk re-cut for a pure rename), PostgreSQL, with
 * file history on (the default) and off, in the same run: the directory moved back and forth
 * (medians of 5 after a warm-up), then copied (each copy into a new path) and the copies deleted.
 * Reports the time and whether the chunks were kept (the chunks table's row count and its
 * rows' xmin unchanged by a move).
 *   DATABASE_URL=... npm run bench:relocate   (else an embedded server)
 *   BENCH_FILES (default 10000), BENCH_FILE_BYTES (default 10000: 100 MB in all)
 */
import pg from "pg";
import { PostgresBackend } from "../src/index.js";
import { benchDatabase, median } from "./common.js";

const FILES = Number(process.env.BENCH_FILES ?? 10_000);
const BYTES = Number(process.env.BENCH_FILE_BYTES ?? 10_000);
const RUNS = 5;
const log = (...a: unknown[]) => console.error("[bench]", ...a);

/** Deterministic text of about BYTES bytes: numbered lines of words, different per file. */
function body(i: number): string {
  const lines: string[] = [];
  let size = 0;
  for (let n = 0; size < BYTES; n++) {
    const line = `file ${i} line ${n}: the quick brown fox ${(i * 7919 + n * 104729) % 1000003} jumps`;
    lines.push(line);
    size += line.length + 1;
  }
  return lines.join("\n");
}

const { url, stop } = await benchDatabase();
const admin = new pg.Client({ connectionString: url });
await admin.connect();
const rows: string[] = [];
try {
  for (const history of [true, false]) {
    const schema = `bench_relocate_${history ? "on" : "off"}_${Date.now().toString(36)}`;
    const b = new PostgresBackend({ connectionString: url, schema, workspace: "w", statementTimeoutMs: 600_000 });
    await b.initialize();
    if (!history) await b.setHistory({ enabled: false });
    for (let i = 0; i < FILES; i += 500) {
      const batch = Array.from({ length: Math.min(500, FILES - i) }, (_, k): [string, Uint8Array] => [
        `/a/d${(i + k) % 50}/f${i + k}.txt`,
        Buffer.from(body(i + k)),
      ]);
      if ((await b.uploadFiles(batch)).some((r) => r.error)) throw new Error("upload failed");
    }
    await admin.query(`VACUUM ANALYZE ${schema}.files, ${schema}.chunks`);
    const chunks = async () =>
      (await admin.query(`SELECT count(*)::int AS n, sum(xmin::text::bigint) AS x FROM ${schema}.chunks`)).rows[0];
    const before = await chunks();
    const moves: number[] = [];
    let where = "/a";
    for (let i = 0; i <= RUNS; i++) {
      const to = where === "/a" ? "/b" : "/a";
      const t = performance.now();
      const r = await b.move(where, to);
      if (r.error || r.files !== FILES) throw new Error(`move: ${r.error ?? r.files}`);
      if (i > 0) moves.push(performance.now() - t);
      where = to;
    }
    const after = await chunks();
    const kept = before.n === after.n && before.x === after.x;
    const copies: number[] = [];
    for (let i = 0; i <= RUNS; i++) {
      const t = performance.now();
      const r = await b.copy(where, `/copy${i}`);
      if (r.error || r.files !== FILES) throw new Error(`copy: ${r.error ?? r.files}`);
      if (i > 0) copies.push(performance.now() - t);
      await b.delete(`/copy${i}`);
    }
    const row = `| history ${history ? "on" : "off"} | ${FILES} (${((FILES * BYTES) / 1048576).toFixed(0)} MiB) | ${median(moves).toFixed(0)} | ${kept ? "yes" : "no"} | ${median(copies).toFixed(0)} |`;
    log(row);
    rows.push(row);
    await b.close();
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
  }
  console.log("| PostgreSQL | files | move of the directory, ms | chunks kept | copy of the directory, ms |");
  console.log("|---|---|---|---|---|");
  for (const r of rows) console.log(r);
} finally {
  await admin.end();
  await stop();
}
