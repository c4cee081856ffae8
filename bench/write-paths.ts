/**
 * `npm run bench:writes`: what the write paths cost, version by version. The same workload runs,
 * in the same process and database, against a schema migrated to 0004 (the baseline), one at 0007
 * (0005's guarantees: versions never reused, path-ordered locks, the file/directory rule at
 * commit; before file history), and the newest with file history on (the default) and off
 * (0008), through the SQL functions directly (their calls are the same in all). The schemas take
 * turns: PASSES passes, each running a share of the workload on every schema (in a rotated
 * order), so a machine that slows down or speeds up during the run weighs on all of them alike.
 * Prints medians and ratios to the baseline as a Markdown table.
 *   DATABASE_URL=... node --import tsx bench/write-paths.ts
 * BENCH_BEFORE=N adds a schema at migration N, history on (the cost of what came after it).
 * BENCH_DELETE_BOUND=1 adds a fifth schema, history on, altered as "deleted bodies by reference"
 * would be at best: a delete keeps no body (no blob; the version row still updated once) and
 * deletes no chunks. An upper bound for that design, not a working variant (BENCHMARKS.md).
 */
import pg from "pg";
import { migrate } from "../src/postgres/migrate.js";
import { benchDatabase, median } from "./common.js";

const PASSES = Number(process.env.BENCH_PASSES ?? 5);
const ROUNDS = 1; // uploads and a delete per pass
const OPS = 60; // writes and edits per pass
const db = await benchDatabase();
const pool = new pg.Pool({ connectionString: db.url, max: 1 });
const tag = Date.now().toString(36);
const schemas = {
  "0004 (baseline)": `bench_w4_${tag}`,
  "0007 (no history)": `bench_w7_${tag}`,
  "newest, history on": `bench_wn_${tag}`,
  "newest, history off": `bench_wo_${tag}`,
};
await migrate({ connectionString: db.url, schema: schemas["0004 (baseline)"], count: 4 });
await migrate({ connectionString: db.url, schema: schemas["0007 (no history)"], count: 7 });
await migrate({ connectionString: db.url, schema: schemas["newest, history on"] });
await migrate({ connectionString: db.url, schema: schemas["newest, history off"] });
await pool.query(`SELECT * FROM ${schemas["newest, history off"]}.set_history('', false, NULL, NULL)`);
// BENCH_BEFORE=N adds the schema at migration N with history on (the default): what the
// migrations since N cost the write paths, in the same run.
if (process.env.BENCH_BEFORE) {
  const count = Number(process.env.BENCH_BEFORE);
  const before = `bench_wp_${tag}`;
  Object.assign(schemas, { [`${String(count).padStart(4, "0")}, history on`]: before });
  await migrate({ connectionString: db.url, schema: before, count });
}
if (process.env.BENCH_DELETE_BOUND) {
  const bound = `bench_wb_${tag}`;
  Object.assign(schemas, { "bound: bodies by reference": bound });
  await migrate({ connectionString: db.url, schema: bound });
  const { rows } = await pool.query(`SELECT pg_get_functiondef('${bound}.history_deleted'::regproc) AS def`);
  const def: string = rows[0].def;
  const from = def.indexOf("  WITH kept AS MATERIALIZED");
  const to = def.indexOf("  INSERT INTO file_versions (workspace, path, version, deleted, op, size, tag)");
  if (from < 0 || to < from) throw new Error("history_deleted has changed: update BENCH_DELETE_BOUND's alteration");
  const touch = `  UPDATE file_versions v SET depth = 0 FROM old_rows o
    WHERE v.workspace = o.workspace AND v.path = o.path AND v.version = o.version AND NOT v.deleted
      AND o.workspace = ANY (v_on);\n`;
  await pool.query(def.slice(0, from) + touch + def.slice(to));
  await pool.query(`CREATE OR REPLACE FUNCTION ${bound}.chunks_delete() RETURNS trigger LANGUAGE plpgsql
    AS $$ BEGIN RETURN NULL; END $$`);
}

const time = async (fn: () => Promise<unknown>) => {
  const t = performance.now();
  await fn();
  return performance.now() - t;
};
const tenK = Array.from(
  { length: 200 },
  (_, i) => `line ${i} of a ten kilobyte file, padded out a little further`,
).join("\n");

type Samples = Record<"writes" | "edits" | "ups" | "overs" | "dels", number[]>;

async function workload(schema: string, samples: Samples): Promise<void> {
  const q = (text: string, values: unknown[]) => pool.query(text.replaceAll("S.", `${schema}.`), values);
  const { writes, edits, ups, overs, dels } = samples;
  for (let i = 0; i < OPS; i++) {
    writes.push(
      await time(() =>
        q("SELECT * FROM S.fs_write('w', $1, $2, NULL, 'text/markdown', NULL)", [`/w/f${i % 30}.md`, tenK + i]),
      ),
    );
  }
  await q("SELECT * FROM S.fs_write('w', '/e.md', $1, NULL, 'text/markdown', NULL)", [tenK]);
  for (let i = 0; i < OPS; i++) {
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
}

try {
  const entries = Object.entries(schemas);
  const samples = new Map(
    entries.map(([label]) => [label, { writes: [], edits: [], ups: [], overs: [], dels: [] } as Samples]),
  );
  for (let pass = 0; pass < PASSES; pass++) {
    for (let k = 0; k < entries.length; k++) {
      const [label, schema] = entries[(pass + k) % entries.length];
      await workload(schema, samples.get(label)!);
    }
  }
  const results: Record<string, Record<string, number>> = {};
  for (const [label, s] of samples) {
    results[label] = {
      "write of a 10 KB file": median(s.writes),
      "edit of a 10 KB file": median(s.edits),
      "upload of 500 new 200-byte files": median(s.ups),
      "upload of the same 500 over themselves": median(s.overs),
      "delete of a 2,000-file directory": median(s.dels),
    };
  }
  const labels = Object.keys(results);
  const base = results[labels[0]];
  console.log(`| case (ms, median) | ${labels.join(" | ")} |\n|---|${labels.map(() => "---").join("|")}|`);
  for (const k of Object.keys(base)) {
    const cells = labels.map((l, i) =>
      i === 0 ? base[k].toFixed(2) : `${results[l][k].toFixed(2)} (${(results[l][k] / base[k]).toFixed(2)}×)`,
    );
    console.log(`| ${k} | ${cells.join(" | ")} |`);
  }
} finally {
  for (const s of Object.values(schemas)) await pool.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  await pool.end();
  await db.stop();
}
