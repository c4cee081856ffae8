/**
 * Write throughput with the change log and its wake-ups (issue 16, item 5), in one run:
 * concurrent writers spread over 1, 4 and 16 workspaces, with 0 and 10 watchers, against the same
 * schema with no change log (its three statement triggers disabled). History is off in every
 * schema, so the figures are the log's own cost (history is per-workspace work and does not
 * serialize). Whether commits in different workspaces queue behind each other shows as writes/s
 * that do not rise with the workspaces while the no-log baseline does.
 *
 * Configurations, each its own schema migrated to the latest version:
 *   - no change log: the baseline;
 *   - change log (0028): per-workspace commit-order locks, wake-ups after commit
 *     (src/postgres/wake-ups.ts);
 *   - NOTIFY in commit: the same, with the backend's wake-ups turned off and the schema's flush
 *     altered to notify from every commit (what raw SQL's commits do);
 *   - before 0028: the backend's wake-ups off, on a schema taken down to migration 0027 (one
 *     commit-order lock per schema, NOTIFY in every commit): the design this run replaces,
 *     measured in the same run.
 *
 *   node --import tsx bench/notify.ts        (DATABASE_URL, else an embedded server)
 *
 * BENCH_WRITERS (default 16) concurrent writers, each its own connection, round-robin over the
 * workspaces; BENCH_SECONDS (default 5) per measurement; BENCH_RUNS (default 3) measurements,
 * median; BENCH_WORKSPACES (default "1,4,16"); BENCH_WATCHERS (default "0,10"), round-robin over
 * the workspaces, each a backend.watch() (its own LISTEN connection, reading the log after
 * wake-ups), which must receive every change of its workspace. BENCH_BOUNDS=1 adds an upper
 * bound: the log with no lock and no NOTIFY at all (not a working variant: ids not in commit
 * order, watchers woken only by their poll), measured without watchers.
 */
import pg from "pg";
import { migrate, PostgresBackend, type Subscription } from "../src/index.js";
import type { Connection } from "../src/postgres/connection.js";
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
const schemas = {
  nolog: `bench_nolog_${tag}`,
  log: `bench_log_${tag}`,
  inCommit: `bench_incommit_${tag}`,
  before: `bench_before_${tag}`,
};
const bound = `bench_bound_${tag}`;
const all = [...Object.values(schemas), ...(process.env.BENCH_BOUNDS ? [bound] : [])];
for (const schema of all) {
  await migrate({ connectionString: url, schema });
  await admin.query(`SELECT * FROM ${schema}.set_history('', false, NULL, NULL)`);
}
for (const t of ["inserted", "updated", "deleted"])
  await admin.query(`ALTER TABLE ${schemas.nolog}.files DISABLE TRIGGER files_zz_log_${t}`);
// Before 0028: the schema taken down to 0027 (its functions exactly), then recorded as current
// again so that PostgresBackend opens it (with its wake-ups off, it calls nothing 0028 added).
await migrate({ connectionString: url, schema: schemas.before, direction: "down", count: 1 });
await admin.query(
  `INSERT INTO ${schemas.before}.migrations (name, run_on) VALUES ('0028_commits_ordered_per_workspace', now())`,
);
/** `schema`'s changes_flush_now with `pattern` (which must match) replaced. */
async function alterFlush(schema: string, pattern: RegExp, replacement: string): Promise<void> {
  const { rows } = await admin.query(`SELECT pg_get_functiondef('${schema}.changes_flush_now'::regproc) AS def`);
  const def: string = rows[0].def;
  if (!pattern.test(def)) throw new Error(`changes_flush_now has changed: update bench/notify.ts (${pattern})`);
  await admin.query(def.replace(pattern, replacement));
}
// NOTIFY in commit: the flush notifies whatever the transaction says.
await alterFlush(
  schemas.inCommit,
  /current_setting\('deepagents_backends\.wake_up', true\) IS DISTINCT FROM 'after_commit'/,
  "true",
);
if (process.env.BENCH_BOUNDS) {
  await admin.query(
    `CREATE OR REPLACE FUNCTION ${bound}.changes_lock(p_workspaces text[]) RETURNS void LANGUAGE sql AS 'SELECT'`,
  );
  await alterFlush(bound, /\n\s*PERFORM pg_notify\([^;]*;/, "\n    NULL;");
}

interface Configuration {
  name: string;
  schema: string;
  /** The backend sends no wake-up after its commits (the schema's commits notify). */
  wakeUpsOff: boolean;
}
const configurations: Configuration[] = [
  { name: "change log (0028: per-workspace locks, wake-ups after commit)", schema: schemas.log, wakeUpsOff: false },
  { name: "change log, NOTIFY in commit", schema: schemas.inCommit, wakeUpsOff: true },
  { name: "before 0028 (one lock per schema, NOTIFY in commit)", schema: schemas.before, wakeUpsOff: true },
];

let round = 0;

/** Median writes/s of `WRITERS` writers over `workspaces` workspaces with `watchers` watchers. */
async function throughput(
  schema: string,
  workspaces: number,
  watchers: number,
  wakeUpsOff = false,
): Promise<{ perSecond: number; delivered: number; expected: number }> {
  round++;
  const base = new PostgresBackend({ connectionString: url, schema, workspace: "w", maxPoolSize: WRITERS + 2 });
  await base.initialize();
  // (What a cluster's front does: the backend's internal switch, reached for the run only.)
  if (wakeUpsOff) (base as unknown as { state: { connection: Connection } }).state.connection.wakeUpsFromCommits();
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
const row = (workspaces: number, name: string, perSecond: number, baseline: number, delivered: string) =>
  rows.push(
    `| ${workspaces} | ${name} | ${perSecond.toFixed(0)} | ${(perSecond / baseline).toFixed(2)}× | ${delivered} |`,
  );
for (const workspaces of WORKSPACES) {
  const baseline = await throughput(schemas.nolog, workspaces, 0);
  log(`${workspaces} workspaces, no log: ${baseline.perSecond.toFixed(0)} writes/s`);
  row(workspaces, "no change log (triggers disabled)", baseline.perSecond, baseline.perSecond, "—");
  if (process.env.BENCH_BOUNDS) {
    const r = await throughput(bound, workspaces, 0);
    log(`${workspaces} workspaces, bound: ${r.perSecond.toFixed(0)} writes/s`);
    row(workspaces, "bound: log with no lock and no NOTIFY", r.perSecond, baseline.perSecond, "—");
  }
  for (const c of configurations) {
    for (const watchers of WATCHERS) {
      const r = await throughput(c.schema, workspaces, watchers, c.wakeUpsOff);
      log(`${workspaces} workspaces, ${c.name}, ${watchers} watchers: ${r.perSecond.toFixed(0)} writes/s`);
      const name = `${c.name}, ${watchers} watcher${watchers === 1 ? "" : "s"}`;
      row(workspaces, name, r.perSecond, baseline.perSecond, watchers === 0 ? "—" : `${r.delivered} / ${r.expected}`);
    }
  }
}

const version = (await admin.query("SHOW server_version")).rows[0].server_version;
console.log(
  `PostgreSQL ${version}; ${WRITERS} concurrent writers (small files), history off, median of ${RUNS} runs of ${SECONDS} s.\n`,
);
console.log("| workspaces | configuration | writes/s | vs no log | changes delivered |");
console.log("|---:|---|---:|---:|---:|");
for (const row of rows) console.log(row);

for (const schema of all) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
await admin.end();
await stop();
