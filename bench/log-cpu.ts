/**
 * `npm run bench:log-cpu`: the server CPU the change log adds to one small write, measured where
 * throughput cannot show it cleanly (bench:notify's 16 writers share two cores with their client,
 * and the machine's speed drifts). One connection runs a DO block that writes a small file
 * (fs_write, an existing one after the first 50) and COMMITs, N times; the CPU time of that
 * server process (utime + stime from /proc/<pid>/stat, so the server must run on this machine)
 * divided by N is the figure. Schemas, history off, each a round in turn (ROUNDS rounds,
 * interleaved):
 *   - no change log (its three statement triggers disabled);
 *   - the latest migrations;
 *   - before 0030 (the schema taken down to 0029: 0028's flush).
 * Sessions set deepagents_backends.wake_up = 'after_commit' and synchronous_commit = off, as the
 * backend's writes run: no NOTIFY in the commit, no WAL flush waited for.
 *   DATABASE_URL=... node --import tsx bench/log-cpu.ts     (else an embedded server)
 * BENCH_ROUNDS (default 15), BENCH_WRITES (default 500) per round.
 */
import { readFileSync } from "node:fs";
import pg from "pg";
import { migrate } from "../src/index.js";
import { benchDatabase, median } from "./common.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
const WRITES = Number(process.env.BENCH_WRITES ?? 500);
const TICKS_PER_SECOND = 100; // USER_HZ

const { url, stop } = await benchDatabase();
const admin = new pg.Client({ connectionString: url });
await admin.connect();
const tag = Date.now().toString(36);
const schemas: Array<[string, string]> = [
  ["no change log (triggers disabled)", `bench_cpu_nolog_${tag}`],
  ["change log, latest migrations", `bench_cpu_log_${tag}`],
  ["change log before 0030 (0028's flush)", `bench_cpu_before30_${tag}`],
];
for (const [, schema] of schemas) {
  await migrate({ connectionString: url, schema });
  await admin.query(`SELECT * FROM ${schema}.set_history('', false, NULL, NULL)`);
}
for (const t of ["inserted", "updated", "deleted"])
  await admin.query(`ALTER TABLE ${schemas[0][1]}.files DISABLE TRIGGER files_zz_log_${t}`);
await migrate({ connectionString: url, schema: schemas[2][1], direction: "down", count: 1 });

/** CPU seconds the server process `pid` has used. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

const samples = schemas.map(() => [] as number[]);
for (let round = 0; round < ROUNDS; round++) {
  for (const [k, [, schema]] of schemas.entries()) {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query("SET synchronous_commit = off");
      await c.query("SET deepagents_backends.wake_up = 'after_commit'");
      const pid = (await c.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
      const before = cpuSeconds(pid);
      await c.query(`DO $$ BEGIN
        FOR i IN 1..${WRITES} LOOP
          PERFORM ${schema}.fs_write('w${round}', '/f' || (i % 50) || '.txt', 'content ' || random(), NULL, 'text/plain', NULL);
          COMMIT;
        END LOOP;
      END $$`);
      samples[k].push(((cpuSeconds(pid) - before) / WRITES) * 1e6);
    } finally {
      await c.end();
    }
  }
  console.error(`[bench] round ${round + 1}: ${samples.map((s) => s[round].toFixed(0)).join(" ")} µs`);
}

const base = median(samples[0]);
console.log(
  `PostgreSQL ${(await admin.query("SHOW server_version")).rows[0].server_version}; server CPU per committed write (${WRITES} writes per round, ${ROUNDS} rounds interleaved; /proc ticks of 10 ms): median (lowest–highest), and the median over no log.\n`,
);
console.log("| schema | CPU per write | over no log |");
console.log("|---|---:|---:|");
for (const [k, [name]] of schemas.entries()) {
  const s = [...samples[k]].sort((a, b) => a - b);
  const m = median(s);
  console.log(
    `| ${name} | ${m.toFixed(0)} µs (${s[0].toFixed(0)}–${s[s.length - 1].toFixed(0)}) | ${k === 0 ? "—" : `+${(m - base).toFixed(0)} µs`} |`,
  );
}
for (const [, schema] of schemas) await admin.query(`DROP SCHEMA ${schema} CASCADE`);
await admin.end();
await stop();
