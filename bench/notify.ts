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
 *   - change log, latest migrations: per-workspace commit-order locks (0028), wake-ups after commit
 *     (src/postgres/wake-ups.ts), the flush of 0030;
 *   - before 0030: the same on a schema taken down to 0029 (0028's flush);
 *   - NOTIFY in commit: the same, with the backend's wake-ups turned off and the schema's flush
 *     altered to notify from every commit (what raw SQL's commits do);
 *   - before 0028: the backend's wake-ups off, on a schema taken down to migration 0027 (one
 *     commit-order lock per schema, NOTIFY in every commit): the design this run replaces,
 *     measured in the same run.
 *
 *   node --import tsx bench/notify.ts        (DATABASE_URL, else an embedded server)
 *
 * BENCH_WRITERS (default 16) concurrent writers, each its own connection, round-robin over the
 * workspaces; BENCH_SECONDS (default 5) per measurement; BENCH_RUNS (default 3) rounds, each
 * measuring every configuration once, interleaved; BENCH_WORKSPACES (default "1,4,16"); BENCH_WATCHERS (default "0,10"), round-robin over
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
const WARM_UP_SECONDS = 1;

const { url, stop } = await benchDatabase();
const admin = new pg.Client({ connectionString: url });
await admin.connect();
const tag = Date.now().toString(36);
const schemas = {
  nolog: `bench_nolog_${tag}`,
  log: `bench_log_${tag}`,
  inCommit: `bench_incommit_${tag}`,
  before30: `bench_before30_${tag}`,
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
// (Every migration after 0027 is taken down, and recorded again: 0029's faster path_ancestors too,
// so "before 0028" is the schema exactly as 0027 left it.)
const after0027: string[] = (
  await admin.query(`SELECT name FROM ${schemas.before}.migrations WHERE name > '0028' ORDER BY name`)
).rows.map((r) => r.name);
await migrate({ connectionString: url, schema: schemas.before, direction: "down", count: after0027.length });
for (const name of after0027)
  await admin.query(`INSERT INTO ${schemas.before}.migrations (name, run_on) VALUES ($1, now())`, [name]);
// Before 0030: 0028's flush (0030 taken down, and recorded again).
await migrate({ connectionString: url, schema: schemas.before30, direction: "down", count: 1 });
await admin.query(
  `INSERT INTO ${schemas.before30}.migrations (name, run_on) VALUES ('0030_flush_one_workspace_lock_inline', now())`,
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
  // (0030: the flush takes one workspace's locks itself.)
  await alterFlush(
    bound,
    /PERFORM pg_advisory_xact_lock_shared\(v_key\);\s*PERFORM pg_advisory_xact_lock\([^;]*\);/,
    "NULL;",
  );
}

interface Configuration {
  name: string;
  schema: string;
  /** The backend sends no wake-up after its commits (the schema's commits notify). */
  wakeUpsOff: boolean;
}
const configurations: Configuration[] = [
  { name: "change log (latest: per-workspace locks, wake-ups after commit)", schema: schemas.log, wakeUpsOff: false },
  { name: "change log before 0030 (0028's flush)", schema: schemas.before30, wakeUpsOff: false },
  { name: "change log, NOTIFY in commit", schema: schemas.inCommit, wakeUpsOff: true },
  { name: "before 0028 (one lock per schema, NOTIFY in commit)", schema: schemas.before, wakeUpsOff: true },
];

let opened = 0;
// One pool for every configuration (their statements name their schemas): the server's
// max_connections would not hold each configuration's writers at once.
const pool = new pg.Pool({ connectionString: url, max: WRITERS + 2 });

/**
 * One configuration's writers and watchers, over `workspaces` workspaces of its own: measure()
 * runs `WRITERS` writers for `SECONDS` and says how many writes per second they made.
 */
async function open(schema: string, workspaces: number, watchers: number, wakeUpsOff: boolean) {
  opened++;
  const base = new PostgresBackend({ pool, schema, workspace: "w" });
  await base.initialize();
  // (What a cluster's front does: the backend's internal switch, reached for the run only.)
  if (wakeUpsOff) (base as unknown as { state: { connection: Connection } }).state.connection.wakeUpsFromCommits();
  const views = Array.from({ length: workspaces }, (_, i) => base.withWorkspace(`r${opened}-w${i}`));
  const subs: Subscription[] = [];
  const watched = new Map<string, number>(); // workspace -> watchers on it
  const written = new Map<string, number>();
  let delivered = 0;
  for (let i = 0; i < watchers; i++) {
    const view = views[i % workspaces] as PostgresBackend;
    subs.push(await view.watch({ onChange: () => delivered++ }));
    watched.set(view.workspace, (watched.get(view.workspace) ?? 0) + 1);
  }
  let run = 0;
  return {
    async measure(seconds = SECONDS): Promise<number> {
      run++;
      const until = performance.now() + seconds * 1000;
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
      return count / ((performance.now() - t) / 1000);
    },
    /** Waits (up to 30 s) for the watchers to receive every change of their workspaces; closes. */
    async close(): Promise<{ delivered: number; expected: number }> {
      let expected = 0;
      for (const [workspace, n] of watched) expected += n * (written.get(workspace) ?? 0);
      for (let i = 0; i < 600 && delivered < expected; i++) await new Promise((r) => setTimeout(r, 50));
      await Promise.all(subs.map((sub) => sub.close()));
      await base.close();
      return { delivered, expected };
    },
  };
}

// Per workspace count, every configuration's measurements are interleaved, round by round (the
// machine's speed drifts by 10-15% over minutes: a configuration measured after another would
// carry that drift into its ratio); each round's ratio is taken against that round's baseline,
// and the table gives the medians.
const rows: string[] = [];
for (const workspaces of WORKSPACES) {
  const runs = [
    { name: "no change log (triggers disabled)", schema: schemas.nolog, watchers: 0, wakeUpsOff: false },
    ...(process.env.BENCH_BOUNDS
      ? [{ name: "bound: log with no lock and no NOTIFY", schema: bound, watchers: 0, wakeUpsOff: false }]
      : []),
    ...configurations.flatMap((c) =>
      WATCHERS.map((watchers) => ({
        name: `${c.name}, ${watchers} watcher${watchers === 1 ? "" : "s"}`,
        schema: c.schema,
        watchers,
        wakeUpsOff: c.wakeUpsOff,
      })),
    ),
  ];
  const setups = [];
  for (const r of runs) setups.push(await open(r.schema, workspaces, r.watchers, r.wakeUpsOff));
  // A round not counted: every connection of the pool has then planned each configuration's
  // statements (a fresh connection compiles and plans them anew, the log's more than the rest).
  for (const setup of setups) await setup.measure(WARM_UP_SECONDS);
  const rates: number[][] = runs.map(() => []);
  for (let round = 0; round < RUNS; round++) {
    for (const [k, setup] of setups.entries()) rates[k].push(await setup.measure());
    log(`${workspaces} workspaces, round ${round + 1}: ${rates.map((r) => r[round].toFixed(0)).join(" ")} writes/s`);
  }
  for (const [k, r] of runs.entries()) {
    const { delivered, expected } = await setups[k].close();
    const ratio = median(rates[k].map((rate, round) => rate / rates[0][round]));
    rows.push(
      `| ${workspaces} | ${r.name} | ${median(rates[k]).toFixed(0)} | ${ratio.toFixed(2)}× | ${
        r.watchers === 0 ? "—" : `${delivered} / ${expected}`
      } |`,
    );
  }
}

const version = (await admin.query("SHOW server_version")).rows[0].server_version;
console.log(
  `PostgreSQL ${version}; ${WRITERS} concurrent writers (small files), history off; ${RUNS} rounds of ${SECONDS} s per configuration, interleaved: median writes/s, and median of each round's ratio to that round's no-log rate.\n`,
);
console.log("| workspaces | configuration | writes/s | vs no log | changes delivered |");
console.log("|---:|---|---:|---:|---:|");
for (const row of rows) console.log(row);

await pool.end();
for (const schema of all) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
await admin.end();
await stop();
