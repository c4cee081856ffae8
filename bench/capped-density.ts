/**
 * `npm run bench:density`: capped searches whose pattern is common in one workspace and rare in
 * the table (issue 14, item 1), on a schema at migration 0021 (the planner's choice alone) and one
 * at the newest (0022: the scope read in path order before the trigram index is trusted), same
 * data, same run, in turns. Also what 0022 costs the cases it does not help: a rare literal and
 * a literal common everywhere. The table: 10,000 files of 2.8 kB prose-like text in one
 * workspace; the workspace searched: 2,000 such files, each with the searched word on 6 lines.
 * Through the SQL functions (a backend would migrate the 0021 schema to the newest first).
 *   DATABASE_URL=... node --import tsx bench/capped-density.ts   (else an embedded server)
 */
import pg from "pg";
import { migrate } from "../src/postgres/migrate.js";
import { benchDatabase, median } from "./common.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 9);
const { url, stop } = await benchDatabase();
const admin = new pg.Client({ connectionString: url });
await admin.connect();
const tag = Date.now().toString(36);
const schemas = { "0021": `bench_d21_${tag}`, newest: `bench_dn_${tag}` };
await migrate({ connectionString: url, schema: schemas["0021"], count: 21 });
await migrate({ connectionString: url, schema: schemas.newest });

const text = (i: number, word: string) =>
  `${Array.from({ length: 40 }, (_, k) =>
    k % 7 === 3
      ? `Paragraph ${k} of document ${i} mentions ${word} here`
      : `Paragraph ${k} of document ${i} talks about storage`,
  ).join("\n")}\n`;
type Grep = (pattern: string, cap: number) => Promise<unknown>;
const greps: Record<string, Grep> = {};
try {
  for (const [label, schema] of Object.entries(schemas)) {
    const upload = (workspace: string, files: Array<[string, string]>) =>
      admin.query(`SELECT * FROM ${schema}.fs_upload($1, $2, $3, $4, $5)`, [
        workspace,
        files.map((f) => f[0]),
        files.map((f) => f[1]),
        files.map(() => null),
        files.map(() => "text/markdown"),
      ]);
    for (let r = 0; r < 20; r++)
      await upload(
        "big",
        Array.from({ length: 500 }, (_, i) => [`/d${r}/f${i}.md`, text(r * 500 + i, "nothing")]),
      );
    for (let r = 0; r < 4; r++)
      await upload(
        "w",
        Array.from({ length: 500 }, (_, i) => [`/d${r}/f${i}.md`, text(i, "xylophone")]),
      );
    await upload("w", [["/zz/needle.md", "the zqxjkvbw_rare_token lives here\n"]]);
    await admin.query(`VACUUM ANALYZE ${schema}.files, ${schema}.chunks`);
    greps[label] = (pattern, cap) =>
      admin.query(`SELECT * FROM ${schema}.fs_grep('w', '/', false, NULL, NULL, false, $1, $2)`, [pattern, cap]);
  }
  const cases: Array<[string, (g: Grep) => Promise<unknown>]> = [
    ["common in the workspace, rare in the table, maxCount 100", (g) => g("xylophone", 100)],
    ["the same, maxCount 1000", (g) => g("xylophone", 1000)],
    ["rare literal, maxCount 1000", (g) => g("zqxjkvbw_rare_token", 1000)],
    ["common everywhere, maxCount 100", (g) => g("storage", 100)],
  ];
  const samples = new Map<string, number[]>();
  for (let run = 0; run < RUNS; run++) {
    for (const [name, fn] of cases) {
      const order = run % 2 ? ["newest", "0021"] : ["0021", "newest"];
      for (const label of order) {
        const t = performance.now();
        await fn(greps[label]);
        const key = `${name}\u0000${label}`;
        if (run > 0) samples.set(key, [...(samples.get(key) ?? []), performance.now() - t]); // run 0: warm-up
      }
    }
  }
  console.log("| case (ms, median) | 0021 | newest (0022) |\n|---|---|---|");
  for (const [name] of cases) {
    const a = median(samples.get(`${name}\u00000021`)!);
    const b = median(samples.get(`${name}\u0000newest`)!);
    console.log(`| ${name} | ${a.toFixed(2)} | ${b.toFixed(2)} (${(b / a).toFixed(2)}×) |`);
  }
} finally {
  for (const s of Object.values(schemas)) await admin.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  await admin.end();
  await stop();
}
