/**
 * `npm run bench:writes`: what migration 0005's guarantees (versions never reused, path-ordered
 * locks, the file/directory rule at commit, per-transaction marker checks) cost on the write
 * paths. The same workload runs, in the same process and database, against a schema migrated to
 * 0004 (the baseline) and one migrated to the newest version, through the SQL functions directly
 * (their calls are the same in both). Prints medians and ratios as a Markdown table.
 *   DATABASE_URL=... node --import tsx bench/write-paths.ts
 */
import pg from "pg";
import { migrate } from "../src/postgres/migrate.js";
import { benchDatabase, median } from "./common.js";

const ROUNDS = 5;
const db = await benchDatabase();
const pool = new pg.Pool({ connectionString: db.url, max: 1 });
const tag = Date.now().toString(36);
const schemas = { "0004 (baseline)": `bench_w4_${tag}`, newest: `bench_wn_${tag}` };
await migrate({ connectionString: db.url, schema: schemas["0004 (baseline)"], count: 4 });
await migrate({ connectionString: db.url, schema: schemas.newest });

const time = async (fn: () => Promise<unknown>) => {
  const t = performance.now();
  await fn();
  return performance.now() - t;
};
const tenK = Array.from(
  { length: 200 },
  (_, i) => `line ${i} of a ten kilobyte file, padded out a little further`,
).join("\n");

async function workload(schema: string): Promise<Record<string, number>> {
  const q = (text: string, values: unknown[]) => pool.query(text.replaceAll("S.", `${schema}.`), values);
  const writes: number[] = [],
    edits: number[] = [],
    ups: number[] = [],
    overs: number[] = [],
    dels: number[] = [];
  for (let i = 0; i < 300; i++) {
    writes.push(
      await time(() =>
        q("SELECT * FROM S.fs_write('w', $1, $2, NULL, 'text/markdown', NULL)", [`/w/f${i % 30}.md`, tenK + i]),
      ),
    );
  }
  await q("SELECT * FROM S.fs_write('w', '/e.md', $1, NULL, 'text/markdown', NULL)", [tenK]);
  for (let i = 0; i < 300; i++) {
    const old = `line ${i % 200} of`;
    edits.push(await time(() => q("SELECT * FROM S.fs_edit('w', '/e.md', $1, $1, false, NULL, 67108864)", [old])));
  }
  for (let r = 0; r < ROUNDS; r++) {
    const files = Array.from({ length: 2000 }, (_, i) => [
      `/u${r}/d${i % 20}/s${i % 7}/f${i}.txt`,
      `line ${i}\n`.repeat(20),
    ]);
    for (let k = 0; k < 4; k++) {
      const batch = files.slice(k * 500, (k + 1) * 500);
      const args = [
        batch.map((f) => f[0]),
        batch.map((f) => f[1]),
        batch.map(() => null),
        batch.map(() => "text/plain"),
      ];
      ups.push(await time(() => q("SELECT * FROM S.fs_upload('w', $1, $2, $3, $4)", args)));
      overs.push(await time(() => q("SELECT * FROM S.fs_upload('w', $1, $2, $3, $4)", args)));
    }
    dels.push(await time(() => q("SELECT S.fs_delete('w', $1)", [`/u${r}`])));
  }
  return {
    "write of a 10 KB file": median(writes),
    "edit of a 10 KB file": median(edits),
    "upload of 500 new 200-byte files": median(ups),
    "upload of the same 500 over themselves": median(overs),
    "delete of a 2,000-file directory": median(dels),
  };
}

try {
  const base = await workload(schemas["0004 (baseline)"]);
  const now = await workload(schemas.newest);
  console.log(`| case (ms, median) | 0004 | newest | ratio |\n|---|---|---|---|`);
  for (const k of Object.keys(base))
    console.log(`| ${k} | ${base[k].toFixed(2)} | ${now[k].toFixed(2)} | ${(now[k] / base[k]).toFixed(2)}× |`);
} finally {
  for (const s of Object.values(schemas)) await pool.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  await pool.end();
  await db.stop();
}
