/**
 * Write throughput with the change log and NOTIFY (issue 16, item 5), in one run: concurrent
 * writers spread over 1, 4 and 16 workspaces, with 0 and 10 watchers, against the same schema
 * with no change log (its three statement triggers disabled). History is off in both schemas, so
 * the figures are the log's own cost (history is per-workspace work and does not serialize).
 * Whether commits in different workspaces queue behind each other shows as writes/s that do not
 * rise with the workspaces while the no-log baseline does.
 *
 *   node --import tsx bench/notify.ts        (DATABASE_URL, else an embedded server)
 *
 * BENCH_WRITERS (default 16) concurrent writers, each its own connection, round-robin over the
 * workspaces; BENCH_SECONDS (default 5) per measurement; BENCH_RUNS (default 3) measurements,
 * median; BENCH_WORKSPACES (default "1,4,16"); BENCH_WATCHERS (default "0,10"), round-robin over
 * the workspaces, each a backend.watch() (its own LISTEN connection, reading the log after
 * wake-ups), which must receive every change of its workspace. BENCH_BOUNDS=1 adds the upper
 * bounds below.
 */
import pg from "pg";
import { migrate, PostgresBackend, type Subscription } from "../src/index.js";
import { benchDatabase, median } from "./common.js";

const WRITERS = Number(process.env.BENCH_WRITERS ?? 16);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const WORKSPACES = (process.env.BENCH_WORKSPACES ?? "1,4,16").split(",").map(Number);
const WATCHERS = (process.env.BENCH_WATCHERS ?? "0,10").split(",").map(Number);
const log = (...a: unknown[]) => console.error("[bench]", ...a);

const { url, stop } = await benchDatabase();
const admin = new pg.Client({ connectionString: url });
await admin.connect();
const tag = Date.now().toString(36);
const schemas = { nolog: `bench_nolog_${tag}`, log: `bench_log_${tag}` };
for (const schema of Object.values(schemas)) {
  await migrate({ connectionString: url, schema });
  await admin.query(`SELECT * FROM ${schema}.set_history('', false, NULL, NULL)`);
}
for (const t of ["inserted", "updated", "deleted"])
  await admin.query(`ALTER TABLE ${schemas.nolog}.files DISABLE TRIGGER files_zz_log_${t}`);

/**
 * BENCH_BOUNDS=1: two more schemas with the log, each without one of the two locks every commit
 * takes — upper bounds for item 5's design, not working variants (without the commit-order lock,
 * ids are not in commit order; without NOTIFY, watchers wake only by polling). Measured without
 * watchers.
 */
const bounds: Array<[string, string]> = [];
if (process.env.BENCH_BOUNDS) {
  const noLock = `bench_nolock_${tag}`;
  const noNotify = `bench_nonotify_${tag}`;
  const neither = `bench_neither_${tag}`;
  for (const schema of [noLock, noNotify, neither]) {
    await migrate({ connectionString: url, schema });
    await admin.query(`SELECT * FROM ${schema}.set_history('', false, NULL, NULL)`);
  }
  for (const schema of [noLock, neither])
    await admin.query(`CREATE OR REPLACE FUNCTION ${schema}.changes_lock() RETURNS void LANGUAGE sql AS 'SELECT'`);
  for (const schema of [noNotify, neither]) {
    const { rows } = await admin.query(`SELECT pg_get_functiondef('${schema}.changes_flush_now'::regproc) AS def`);
    const def: string = rows[0].def;
    const notify = /\n\s*PERFORM pg_notify\([^;]*;/;
    if (!notify.test(def)) throw new Error("changes_flush_now has changed: update BENCH_BOUNDS' alteration");
    await admin.query(def.replace(notify, "\n    NULL;"));
  }
  bounds.push(
    ["bound: no commit-order lock", noLock],
    ["bound: no NOTIFY", noNotify],
    ["bound: neither lock", neither],
  );
  Object.assign(schemas, { noLock, noNotify, neither });
}

let round = 0;

/** Median writes/s of `WRITERS` writers over `workspaces` workspaces with `watchers` watchers. */
async function throughput(
  schema: string,
  workspaces: number,
  watchers: number,
): Promise<{ perSecond: number; delivered: number; expected: number }> {
  round++;
  const base = new PostgresBackend({ connectionString: url, schema, workspace: "w", maxPoolSize: WRITERS + 2 });
  await base.initialize();
  const views = Array.from({ length: workspaces }, (_, i) => base.withWorkspace(`r${round}-w${i}`));
  const subs: Subscription[] = [];
  const watched = new Map<string, number>(); // workspace -> watchers on it
  let delivered = 0;
  for (let i = 0; i < watchers; i++) {
    const view = views[i % workspaces] as PostgresBackend;
    subs.push(await view.watch({ onChange: () => delivered++ }));
    watched.set(view.workspace, (watched.get(view.workspace) ?? 0) + 1);
  }
  const written = new Map<string, number>();
  const samples: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const until = performance.now() + SECONDS * 1000;
    let count = 0;
    const t = performance.now();
    await Promise.all(
      Array.from({ length: WRITERS }, async (_, w) => {
        const view = views[w % workspaces];
        for (let i = 0; performance.now() < until; i++) {
          const r = await view.write(`/writer${w}/f${i % 50}.txt`, `run ${run} write ${i}`);
          if (r.error) throw new Error(r.error);
          count++;
          written.set(view.workspace, (written.get(view.workspace) ?? 0) + 1);
        }
      }),
    );
    samples.push(count / ((performance.now() - t) / 1000));
  }
  let expected = 0;
  for (const [workspace, n] of watched) expected += n * (written.get(workspace) ?? 0);
  for (let i = 0; i < 600 && delivered < expected; i++) await new Promise((r) => setTimeout(r, 50));
  await Promise.all(subs.map((s) => s.close()));
  await base.close();
  return { perSecond: median(samples), delivered, expected };
}

const rows: string[] = [];
for (const workspaces of WORKSPACES) {
  const baseline = await throughput(schemas.nolog, workspaces, 0);
  log(`${workspaces} workspaces, no log: ${baseline.perSecond.toFixed(0)} writes/s`);
  rows.push(`| ${workspaces} | no change log (triggers disabled) | ${baseline.perSecond.toFixed(0)} | 1.00× | — |`);
  for (const [name, schema] of bounds) {
    const r = await throughput(schema, workspaces, 0);
    log(`${workspaces} workspaces, ${name}: ${r.perSecond.toFixed(0)} writes/s`);
    rows.push(
      `| ${workspaces} | ${name} | ${r.perSecond.toFixed(0)} | ${(r.perSecond / baseline.perSecond).toFixed(2)}× | — |`,
    );
  }
  for (const watchers of WATCHERS) {
    const r = await throughput(schemas.log, workspaces, watchers);
    log(`${workspaces} workspaces, log, ${watchers} watchers: ${r.perSecond.toFixed(0)} writes/s`);
    rows.push(
      `| ${workspaces} | change log + NOTIFY, ${watchers} watcher${watchers === 1 ? "" : "s"} | ${r.perSecond.toFixed(0)} | ${(r.perSecond / baseline.perSecond).toFixed(2)}× | ${watchers === 0 ? "—" : `${r.delivered} / ${r.expected}`} |`,
    );
  }
}

const version = (await admin.query("SHOW server_version")).rows[0].server_version;
console.log(
  `PostgreSQL ${version}; ${WRITERS} concurrent writers (small files), history off, median of ${RUNS} runs of ${SECONDS} s.\n`,
);
console.log("| workspaces | configuration | writes/s | vs no log | changes delivered |");
console.log("|---:|---|---:|---:|---:|");
for (const row of rows) console.log(row);

for (const schema of Object.values(schemas)) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
await admin.end();
await stop();
