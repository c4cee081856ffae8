/**
 * Write throughput with the change log and NOTIFY, by number of listeners, in one run:
 * no change log at all (its trigger disabled), change log with 0, 1 and 10 watchers.
 *
 *   node --import tsx bench/notify.ts        (DATABASE_URL, else an embedded server)
 */
import pg from "pg";
import { migrate, PostgresBackend, type Subscription } from "../src/index.js";
import { benchDatabase, median } from "./common.js";

const WRITERS = Number(process.env.BENCH_WRITERS ?? 4);
const WRITES = Number(process.env.BENCH_WRITES ?? 500); // per writer per run
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

const { url, stop } = await benchDatabase();

const admin = new pg.Client({ connectionString: url });
await admin.connect();
for (const s of ["bench_nolog", "bench_log"]) await admin.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
await migrate({ connectionString: url, schema: "bench_nolog" });
for (const t of ["inserted", "updated", "deleted"])
  await admin.query(`ALTER TABLE bench_nolog.files DISABLE TRIGGER files_zz_log_${t}`);
await migrate({ connectionString: url, schema: "bench_log" });

async function throughput(schema: string, listeners: number): Promise<{ perSecond: number; delivered: number }> {
  const backend = new PostgresBackend({
    connectionString: url,
    schema,
    workspace: `bench-${listeners}`,
    maxPoolSize: WRITERS + 2,
  });
  await backend.initialize();
  const subs: Subscription[] = [];
  let delivered = 0;
  for (let i = 0; i < listeners; i++) subs.push(await backend.watch({ onChange: () => delivered++ }));
  const samples: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const t = performance.now();
    await Promise.all(
      Array.from({ length: WRITERS }, async (_, w) => {
        for (let i = 0; i < WRITES; i++) {
          const r = await backend.write(`/w${w}/f${i % 50}.txt`, `run ${run} write ${i}`);
          if (r.error) throw new Error(r.error);
        }
      }),
    );
    samples.push((WRITERS * WRITES) / ((performance.now() - t) / 1000));
  }
  const expected = listeners * RUNS * WRITERS * WRITES;
  for (let i = 0; i < 200 && delivered < expected; i++) await new Promise((r) => setTimeout(r, 50));
  await Promise.all(subs.map((s) => s.close()));
  await backend.close();
  return { perSecond: median(samples), delivered };
}

const rows: Array<[string, number, string]> = [];
const base = await throughput("bench_nolog", 0);
rows.push(["no change log (trigger disabled)", base.perSecond, "—"]);
for (const n of [0, 1, 10]) {
  const r = await throughput("bench_log", n);
  rows.push([
    `change log + NOTIFY, ${n} watcher${n === 1 ? "" : "s"}`,
    r.perSecond,
    n === 0 ? "—" : `${r.delivered} / ${n * RUNS * WRITERS * WRITES}`,
  ]);
}

const version = (await admin.query("SHOW server_version")).rows[0].server_version;
console.log(
  `PostgreSQL ${version}; ${WRITERS} concurrent writers × ${WRITES} writes (small files), median of ${RUNS} runs.\n`,
);
console.log("| configuration | writes/s | vs no log | changes delivered |");
console.log("|---|---:|---:|---:|");
for (const [name, perSecond, delivered] of rows)
  console.log(`| ${name} | ${perSecond.toFixed(0)} | ${(perSecond / base.perSecond).toFixed(2)}× | ${delivered} |`);

for (const s of ["bench_nolog", "bench_log"]) await admin.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
await admin.end();
await stop();
