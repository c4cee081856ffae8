/**
 * A sharded deployment (issue 16) against one database, in one run:
 *   1. the PL/Proxy hop: the median latency of each call, sequential, on one database of the
 *      first partition server against the same call through a front (on the main server) to 4
 *      partitions (2 on each of the two partition servers, configured alike);
 *   2. aggregate throughput with 8 clients, each in a workspace of its own: small writes/s and
 *      greps/s, 1 server against 4 partitions on 2 servers, over three corpora (synthetic; code
 *      and prose from node_modules, a rare literal and a common word each), right after the
 *      upload and after ANALYZE; with the CPU seconds each server spent per call (summed from
 *      /proc over the server's processes), the figures an estimate for N machines is made from.
 *
 *   bash test/services/plproxy/start-partitions.sh          (prints CLUSTER_SERVERS, CLUSTER_CONTROL)
 *   CLUSTER_SERVERS=... CLUSTER_CONTROL=... DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
 *     node --import tsx bench/cluster.ts
 *
 * BENCH_CALLS (default 300) sequential calls per latency median; BENCH_SECONDS (default 5) per
 * throughput measurement; BENCH_RUNS (default 3) measurements, median.
 */
import { readdirSync, readFileSync } from "node:fs";
import pg from "pg";
import { migrate, PostgresBackend } from "../src/index.js";
import { createDatabase, dropCluster, prepareCluster, withDatabase } from "../test/helpers/cluster.js";
import { corpusOf, median } from "./common.js";

const CALLS = Number(process.env.BENCH_CALLS ?? 300);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CLIENTS = 8;
const log = (...a: unknown[]) => console.error("[bench]", ...a);

const main = process.env.DATABASE_URL;
const servers = process.env.CLUSTER_SERVERS?.split(",").filter(Boolean);
if (!main || !servers) throw new Error("bench:cluster needs DATABASE_URL and CLUSTER_SERVERS (start-partitions.sh)");
const schema = `bench_cluster_${Date.now().toString(36)}`;
// One database alone on a partition server: the same server settings as the partitions'.
const single = withDatabase(servers[0], "deepagents_bench_single");
await createDatabase(single);
await migrate({ connectionString: single, schema });
const cluster = await prepareCluster(servers, main, schema);
const open = (connectionString: string, workspace: string) =>
  new PostgresBackend({ connectionString, schema, workspace, maxPoolSize: 2, minPoolSize: 1 });

// --- 1. the hop -------------------------------------------------------------------------------

const files = Array.from({ length: 200 }, (_, i): [string, Uint8Array] => [
  `/src/f${String(i).padStart(3, "0")}.ts`,
  Buffer.from(`export const v${i} = ${i};\n// ${i % 50 === 0 ? "needle" : "hay"} line\n`.repeat(20)),
]);
type Call = [name: string, run: (b: PostgresBackend, i: number) => Promise<unknown>];
const calls: Call[] = [
  ["write (update, 40 B)", (b, i) => b.write("/w.txt", `version ${i}\n`)],
  ["read", (b) => b.read("/src/f001.ts")],
  ["stat", (b) => b.stat("/src/f001.ts")],
  ["ls", (b) => b.ls("/src")],
  ["edit", (b, i) => b.edit("/e.txt", `n${i}`, `n${i + 1}`)],
  ["grep (literal, 200 files)", (b) => b.grep("needle", "/src")],
  ["glob", (b) => b.glob("**/*.ts", "/src")],
];

async function latencies(connectionString: string): Promise<Map<string, number>> {
  const b = open(connectionString, `lat_${Date.now().toString(36)}`);
  await b.uploadFiles(files);
  await b.write("/e.txt", "n0");
  const out = new Map<string, number>();
  for (const [name, run] of calls) {
    for (let i = 0; i < 20; i++) await run(b, i); // warm-up
    const samples: number[] = [];
    for (let i = 20; i < CALLS + 20; i++) {
      const t = performance.now();
      const r = (await run(b, i)) as { error?: string };
      samples.push(performance.now() - t);
      if (r?.error) throw new Error(`${name}: ${r.error}`);
    }
    out.set(name, median(samples));
  }
  await b.close();
  return out;
}

log("latency: one database");
const direct = await latencies(single);
log("latency: through the front");
const proxied = await latencies(cluster.proxyUrl);
console.log(`\n## The PL/Proxy hop: median of ${CALLS} sequential calls\n`);
console.log("| call | one database | through the front | hop |");
console.log("|---|---:|---:|---:|");
for (const [name] of calls) {
  const d = direct.get(name)!;
  const p = proxied.get(name)!;
  console.log(`| ${name} | ${d.toFixed(2)} ms | ${p.toFixed(2)} ms | +${(p - d).toFixed(2)} ms |`);
}

// --- 2. throughput ----------------------------------------------------------------------------

/** CPU seconds used so far by the server whose postmaster listens on `port` (all its processes). */
function serverCpu(port: string): number {
  const tick = 100; // USER_HZ
  // The postmaster's pid is the first line of its data directory's postmaster.pid.
  const dataDir = port === "5432" ? "/var/lib/postgresql/15/main" : `/var/lib/postgresql/15/${control.get(port)}`;
  const postmaster = Number(readFileSync(`${dataDir}/postmaster.pid`, "utf8").split("\n")[0]);
  let ticks = 0;
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
      const ppid = Number(stat[1]);
      if (Number(pid) === postmaster)
        ticks += Number(stat[11]) + Number(stat[12]) + Number(stat[13]) + Number(stat[14]);
      else if (ppid === postmaster) ticks += Number(stat[11]) + Number(stat[12]);
    } catch {}
  }
  return ticks / tick;
}
const control = new Map(
  (process.env.CLUSTER_CONTROL ?? "")
    .split(",")
    .filter(Boolean)
    .map((kv) => {
      const [port, cluster] = kv.split("=");
      return [port, cluster.split("/")[1]] as [string, string];
    }),
);
const ports = ["5432", ...control.keys()];

/** The databases that hold the workspaces of a deployment: the one server, or the 4 partitions. */
const holders = (connectionString: string) => (connectionString === single ? [single] : cluster.partitions);

/** ANALYZE of the tables a grep reads, on every database of the deployment. */
async function analyze(connectionString: string): Promise<void> {
  for (const url of holders(connectionString)) {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query(`ANALYZE ${schema}.files, ${schema}.chunks`);
    await c.end();
  }
}

/** `CLIENTS` clients, one workspace each, calling `call` for SECONDS, RUNS times: calls/s, CPU µs per call by server. */
async function throughput(
  clients: PostgresBackend[],
  call: (c: PostgresBackend, i: number, n: number) => Promise<unknown>,
): Promise<{ perSecond: number; cpu: Map<string, number> }> {
  const rates: number[] = [];
  const cpu = new Map<string, number[]>(ports.map((p) => [p, []]));
  for (let run = 0; run < RUNS; run++) {
    let done = 0;
    const before = new Map(ports.map((p) => [p, serverCpu(p)]));
    const end = performance.now() + SECONDS * 1000;
    const started = performance.now();
    await Promise.all(
      clients.map(async (c, i) => {
        for (let n = 0; performance.now() < end; n++) {
          const r = (await call(c, i, n)) as { error?: string };
          if (r.error) throw new Error(r.error);
          done++;
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    rates.push(done / seconds);
    for (const p of ports) cpu.get(p)!.push(((serverCpu(p) - before.get(p)!) / done) * 1e6); // µs per call
  }
  return { perSecond: median(rates), cpu: new Map([...cpu].map(([p, xs]) => [p, median(xs)])) };
}

// Corpora: the synthetic one above (200 small files), and this repository's node_modules — code
// (the first 400 .js/.ts/.json files) and prose (the first 400 .md files) — each with a rare
// literal planted in 4 files and a common word. Greps right after each client uploaded its copy
// (with what migration 0021's statistics refresh does during the upload) and after ANALYZE.
const RARE = "zqxjkvbw_rare_token_42";
const plant = (files: Array<[string, Buffer | Uint8Array]>) =>
  files.map(([p, b], i): [string, Uint8Array] =>
    i % 100 === 7 ? [p, Buffer.concat([Buffer.from(b), Buffer.from(`\n${RARE}\n`)])] : [p, b],
  );
const corpora: Array<{ family: string; files: Array<[string, Uint8Array]>; patterns: string[] }> = [
  { family: "synthetic (200 files)", files, patterns: ["needle"] },
  {
    family: "code (400 files)",
    files: plant((await corpusOf("node_modules", /\.(js|mjs|cjs|ts|json)$/)).slice(0, 400)),
    patterns: [RARE, "function"],
  },
  {
    family: "prose (400 files)",
    files: plant((await corpusOf("node_modules", /\.md$/)).slice(0, 400)),
    patterns: [RARE, "the"],
  },
];

console.log(
  `\n## ${CLIENTS} clients, one workspace each: calls/s (median of ${RUNS} × ${SECONDS} s), and CPU µs per call by server\n`,
);
console.log(`| call | corpus | state | deployment | calls/s | ratio | ${ports.map((p) => `CPU :${p}`).join(" | ")} |`);
console.log(`|---|---|---|---|---:|---:|${ports.map(() => "---:").join("|")}|`);
const row = (
  call: string,
  corpus: string,
  state: string,
  label: string,
  r: Awaited<ReturnType<typeof throughput>>,
  base: number,
) =>
  console.log(
    `| ${call} | ${corpus} | ${state} | ${label} | ${r.perSecond.toFixed(0)} | ${(r.perSecond / base).toFixed(2)}× | ${ports
      .map((p) => `${r.cpu.get(p)!.toFixed(0)} µs`)
      .join(" | ")} |`,
  );
const deployments: Array<[string, string]> = [
  [single, `1 server (:${new URL(single).port})`],
  [cluster.proxyUrl, "front (:5432) + 4 partitions on :5433, :5434"],
];
const workspacesOf = (tag: string, connectionString: string) =>
  Array.from({ length: CLIENTS }, (_, i) => open(connectionString, `tp_${tag}_${i}_${Date.now().toString(36)}`));

// Small writes.
{
  const results = [];
  for (const [url, label] of deployments) {
    log(`throughput: write, ${label}`);
    const clients = workspacesOf("write", url);
    for (const c of clients) await c.write("/w.txt", "start");
    results.push([label, await throughput(clients, (c, i, n) => c.write("/w.txt", `${i} ${n}\n`))] as const);
    await Promise.all(clients.map((c) => c.close()));
  }
  for (const [label, r] of results) row("write (update, 40 B)", "—", "—", label, r, results[0][1].perSecond);
}
// Greps, per corpus and state.
for (const { family, files: corpus, patterns } of corpora) {
  const results = new Map<string, Array<[string, Awaited<ReturnType<typeof throughput>>]>>();
  for (const [url, label] of deployments) {
    const clients = workspacesOf("grep", url);
    log(`throughput: grep, ${family}, ${label}: uploading`);
    for (const c of clients) {
      const r = await c.uploadFiles(corpus.map(([p, b]) => [`/src${p}`, b]));
      if (r.some((x) => x.error)) throw new Error(`upload: ${r.find((x) => x.error)?.error}`);
    }
    for (const state of ["after upload", "after ANALYZE"]) {
      if (state === "after ANALYZE") await analyze(url);
      for (const pattern of patterns) {
        const key = `${state}\u0000${pattern}`;
        log(`throughput: grep ${pattern}, ${family}, ${state}, ${label}`);
        const r = await throughput(clients, (c) => c.grep(pattern, "/src"));
        results.set(key, [...(results.get(key) ?? []), [label, r]]);
      }
    }
    await Promise.all(clients.map((c) => c.close()));
  }
  for (const [key, rs] of results) {
    const [state, pattern] = key.split("\u0000");
    const call = `grep (literal${pattern === RARE ? ", rare: 4 files" : `, "${pattern}"`})`;
    for (const [label, r] of rs) row(call, family, state, label, r, rs[0][1].perSecond);
  }
}

await dropCluster(servers, main, schema);
const admin = new pg.Client({ connectionString: single });
await admin.connect();
await admin.query(`DROP SCHEMA ${schema} CASCADE`);
await admin.end();
