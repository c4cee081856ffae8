/**
 * `npm run bench:after-upload`: search right after a bulk upload, before anything but the upload
 * itself could refresh the planner's statistics (autovacuum off on the tables), against the same
 * searches after a manual ANALYZE — with migration 0021's statistics trigger, and without it (the
 * trigger dropped: every version before 0021), in the same run. Two corpus families from this
 * repository's node_modules: code (.js/.ts/.json) and prose (.md). Each case: a new schema, the
 * corpus uploaded through uploadFiles in batches of 500, then medians of 5 calls (one call
 * without the trigger right after the upload: those take seconds each).
 *   DATABASE_URL=... node --import tsx bench/after-upload.ts   (else an embedded server)
 *   BENCH_FILES=12000 to change the code corpus size, BENCH_FAMILIES=prose for one family
 */
import pg from "pg";
import { PostgresBackend } from "../src/index.js";
import { benchDatabase, corpusOf, timeMedian } from "./common.js";

const CODE_FILES = Number(process.env.BENCH_FILES ?? 12_000);
const RARE = "zqxjkvbw_rare_token_42";
const log = (...a: unknown[]) => console.error("[bench]", ...a);
const timeOnce = async (fn: () => Promise<unknown>) => {
  const t = performance.now();
  await fn();
  return performance.now() - t;
};

// Prose: the Markdown files of node_modules, copied under numbered prefixes to ~4,000 files (a
// documentation site's size; node_modules alone holds a few hundred).
const markdown = await corpusOf("node_modules", /\.md$/);
const prose = Array.from({ length: Math.ceil(4000 / Math.max(1, markdown.length)) }, (_, r) =>
  markdown.map(([p, b]): [string, Buffer] => [`/copy${r}${p}`, b]),
).flat();
const families: Array<[string, Array<[string, Buffer]>, string]> = [
  ["code", (await corpusOf("node_modules", /\.(js|mjs|cjs|ts|json)$/)).slice(0, CODE_FILES), "function"],
  ["prose", prose, "the"],
].filter(([name]) => (process.env.BENCH_FAMILIES ?? "code,prose").split(",").includes(name as string)) as Array<
  [string, Array<[string, Buffer]>, string]
>;
for (const [, files] of families) files.push(["/zz-rare/needle.md", Buffer.from(`intro\nthe ${RARE} lives here\n`)]);

const { url, stop } = await benchDatabase();
const admin = new pg.Client({ connectionString: url });
await admin.connect();

type Row = { family: string; variant: string; state: string; cases: Record<string, number>; importMiBs: number };
const rows: Row[] = [];
try {
  for (const [family, files, common] of families) {
    const mib = files.reduce((n, [, b]) => n + b.length, 0) / 1048576;
    log(`${family}: ${files.length} files, ${mib.toFixed(1)} MiB`);
    for (const variant of ["with the trigger", "without the trigger"]) {
      const schema = `bench_fresh_${Date.now().toString(36)}`;
      const backend = new PostgresBackend({ connectionString: url, schema, workspace: "w", maxPoolSize: 4 });
      await backend.initialize();
      await admin.query(
        `ALTER TABLE ${schema}.files SET (autovacuum_enabled = false);
         ALTER TABLE ${schema}.chunks SET (autovacuum_enabled = false)`,
      );
      if (variant !== "with the trigger") await admin.query(`DROP TRIGGER files_zz_statistics ON ${schema}.files`);
      const t = performance.now();
      for (let i = 0; i < files.length; i += 500) {
        if ((await backend.uploadFiles(files.slice(i, i + 500))).some((r) => r.error)) throw new Error("upload failed");
      }
      const importMiBs = mib / ((performance.now() - t) / 1000);
      const cases: Array<[string, () => Promise<unknown>]> = [
        ["rare literal", () => backend.grep(RARE, "/", null)],
        [`common literal "${common}", maxCount 100`, () => backend.grep(common, "/", null, 100)],
        [`common literal "${common}", maxCount 1000`, () => backend.grep(common, "/", null, 1000)],
        ["glob **/*.md", () => backend.glob("**/*.md", "/")],
      ];
      for (const state of ["right after the upload", "after ANALYZE"]) {
        if (state === "after ANALYZE") await admin.query(`ANALYZE ${schema}.files, ${schema}.chunks`);
        // Without the trigger, right after the upload, a call takes seconds to minutes: timed once.
        const slow = variant !== "with the trigger" && state === "right after the upload";
        const measured: Record<string, number> = {};
        for (const [name, fn] of cases) measured[name] = slow ? await timeOnce(fn) : await timeMedian(fn, 5);
        rows.push({ family, variant, state, cases: measured, importMiBs });
        log(family, variant, state, JSON.stringify(measured));
      }
      await backend.close();
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    }
  }
  const names = Object.keys(rows[0].cases).map((n) => n.replace(/"[^"]*"/, "…"));
  console.log(`| corpus | schema | state | ${names.join(" | ")} | import MiB/s |`);
  console.log(`|---|---|---|${names.map(() => "---").join("|")}|---|`);
  for (const r of rows) {
    const cells = Object.values(r.cases).map((ms) => ms.toFixed(1));
    console.log(`| ${r.family} | ${r.variant} | ${r.state} | ${cells.join(" | ")} | ${r.importMiBs.toFixed(1)} |`);
  }
} finally {
  await admin.end();
  await stop();
}
