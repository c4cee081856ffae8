/**
 * `npm run soak`: the load workload of test/reliability/load-workload.ts at full size — 8 deep
 * agents (createDeepAgent with scripted fakeModels) × 200 tool calls each, concurrently on one
 * workspace — on PostgreSQL and on S3, repeated in fresh workspaces for SOAK_MINUTES per backend
 * (default: one round each). Exits 1 on any tool error, stale read or lost update; otherwise
 * writes the "Load" section of BENCHMARKS.md (between the bench:load markers; nothing else).
 *
 *   node --openssl-legacy-provider --import tsx bench/soak.ts
 *   DATABASE_URL=...                   PostgreSQL to use (else an embedded server); schema soak_<pid>, dropped after
 *   S3_ENDPOINT=... AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... [S3_LABEL="Ceph RGW 16.2"]
 *                                      S3 server to use (else s3rver in process); a bucket of its own, removed after
 *   SOAK_MINUTES=5 SOAK_AGENTS=8 SOAK_CALLS=200 SOAK_BACKENDS=postgres,s3 SOAK_NO_WRITE=1 to tune
 */
import { readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import { PostgresBackend } from "../src/index.js";
import { startTestS3 } from "../test/helpers/s3.js";
import {
  runLoad,
  summarize,
  describe,
  TOOL_METHOD,
  type LoadBackend,
  type LoadOptions,
  type LoadResult,
} from "../test/reliability/load-workload.js";
import { benchDatabase } from "./common.js";

const MINUTES = Number(process.env.SOAK_MINUTES ?? 0);
const AGENTS = Number(process.env.SOAK_AGENTS ?? 8);
const CALLS = Number(process.env.SOAK_CALLS ?? 200);
const BACKENDS = (process.env.SOAK_BACKENDS ?? "postgres,s3").split(",").map((s) => s.trim());
const log = (...a: unknown[]) => console.error("[soak]", ...a);

interface Soak {
  label: string;
  server: string;
  notes: string[];
  rounds: LoadResult[];
  /** The same script for one agent alone: the latency without other agents sharing the event loop. */
  alone: LoadResult;
  ms: number;
}

/** Rounds of the workload, each in a fresh workspace, until SOAK_MINUTES have passed (at least one). */
async function soak(label: string, fresh: (round: number) => LoadBackend, options: LoadOptions): Promise<LoadResult[]> {
  const rounds: LoadResult[] = [];
  const started = performance.now();
  do {
    const r = await runLoad(fresh(rounds.length), {
      agents: AGENTS,
      callsPerAgent: CALLS,
      seed: rounds.length + 1,
      ...options,
    });
    rounds.push(r);
    log(describe(`${label} round ${rounds.length}`, r));
  } while (performance.now() - started < MINUTES * 60_000);
  return rounds;
}

/** One agent alone in a fresh workspace: the reference latency. */
async function alone(label: string, backend: LoadBackend, options: LoadOptions): Promise<LoadResult> {
  const r = await runLoad(backend, { agents: 1, callsPerAgent: CALLS, ...options });
  log(describe(`${label} alone`, r));
  return r;
}

const failures = (r: LoadResult) =>
  r.errors.length +
  r.staleReads.length +
  r.lostSharedEdits +
  r.sharedFilesDiffering +
  r.lostOwnFiles.length +
  r.unmatchedCallbacks +
  (r.toolMessages === r.scripted ? 0 : 1);

const results: Soak[] = [];

if (BACKENDS.includes("postgres")) {
  const db = await benchDatabase();
  const schema = `soak_${process.pid}`;
  // The package defaults (pool of 10): all agents of the process share one backend, as in production.
  const backend = new PostgresBackend({ connectionString: db.url, schema, workspace: "soak-0" });
  try {
    await backend.initialize();
    const version = (await backend.pool.query("SHOW server_version")).rows[0].server_version as string;
    const started = performance.now();
    const rounds = await soak("PostgreSQL", (i) => backend.withWorkspace(`soak-${i}`), {});
    const one = await alone("PostgreSQL", backend.withWorkspace("soak-alone"), {});
    results.push({
      alone: one,
      label: "PostgreSQL",
      server: `PostgreSQL ${version}${db.embedded ? " (embedded)" : ""}, one PostgresBackend (pool of 10)`,
      notes: [],
      rounds,
      ms: performance.now() - started,
    });
  } finally {
    await backend.pool
      .query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
      .catch((e) => log(`could not drop ${schema}: ${e.message}`));
    await backend.close();
    await db.stop();
  }
}

if (BACKENDS.includes("s3")) {
  const s3 = await startTestS3();
  try {
    const backend = await s3.backend({ workspace: "soak-0" });
    const enforcing = backend.capabilities!.conditionalWrites;
    const atomic = s3.kind !== "s3rver";
    const started = performance.now();
    const rounds = await soak("S3", (i) => backend.withWorkspace(`soak-${i}`), {
      sharedEdits: enforcing,
      crossAgentReads: atomic,
    });
    const one = await alone("S3", backend.withWorkspace("soak-alone"), {
      sharedEdits: enforcing,
      crossAgentReads: atomic,
    });
    const name =
      s3.kind === "s3rver"
        ? "s3rver 3.7 (in process)"
        : (process.env.S3_LABEL ?? `S3_ENDPOINT ${new URL(s3.endpoint).host}`);
    const notes: string[] = [];
    if (!enforcing)
      notes.push(
        `${name} ignores If-Match, so agents did not edit shared objects there (run with S3_ENDPOINT set to Ceph RGW, MinIO or AWS for the shared-edit figures).`,
      );
    if (!atomic)
      notes.push(
        "s3rver rewrites an object in place (a GET racing a PUT of the same key can return a truncated body), so agents did not grep other agents' directories there.",
      );
    results.push({
      label: "S3",
      alone: one,
      server: `${name}, one S3Backend (conditional writes ${enforcing ? `enforced, ${backend.capabilities!.etagQuoting} ETags` : "not enforced"})`,
      notes,
      rounds,
      ms: performance.now() - started,
    });
  } finally {
    await s3.close();
  }
}

// ---- verdict and report --------------------------------------------------------------------------
let failed = false;
for (const s of results) {
  for (const [i, r] of [...s.rounds, s.alone].entries()) {
    if (failures(r) === 0) continue;
    failed = true;
    console.error(`FAILED: ${describe(`${s.label} ${i < s.rounds.length ? `round ${i + 1}` : "alone"}`, r)}`);
    for (const line of [...r.errors, ...r.staleReads, ...r.lostOwnFiles].slice(0, 20)) console.error(`  ${line}`);
    if (r.lostSharedEdits || r.sharedFilesDiffering)
      console.error(`  shared: ${r.lostSharedEdits} edits lost, ${r.sharedFilesDiffering} files differ`);
    if (r.unmatchedCallbacks) console.error(`  ${r.unmatchedCallbacks} tool callbacks without a start or an end`);
  }
}

const merge = (rounds: LoadResult[], pick: (r: LoadResult) => Map<string, number[]>) => {
  const all = new Map<string, number[]>();
  for (const r of rounds) for (const [k, xs] of pick(r)) all.set(k, [...(all.get(k) ?? []), ...xs]);
  return all;
};
const sum = (rounds: LoadResult[], f: (r: LoadResult) => number) => rounds.reduce((n, r) => n + f(r), 0);
const mean = (rounds: LoadResult[], f: (r: LoadResult) => number) => sum(rounds, f) / rounds.length;

const lines: string[] = [];
lines.push("<!-- bench:load:start (generated by npm run soak; edits here are overwritten) -->");
lines.push("## Load: concurrent deep agents on one workspace (`npm run soak`)", "");
lines.push(
  `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; Node ${process.version}; ${new Date().toISOString().slice(0, 10)}.`,
);
lines.push(
  `Workload (\`test/reliability/load-workload.ts\`, also run by \`npm test\`): ${AGENTS} deepagents agents (\`createDeepAgent\` with a scripted \`fakeModel\`, ` +
    `so the real filesystem tools call the backend) run at the same time in one Node process on ONE workspace, ${CALLS} tool calls each, ` +
    "issued as model turns of 1–4 parallel calls: `write_file` (new files and overwrites in the agent's own directory), " +
    "`edit_file` (each replacing a unique token — half of them in 4 shared files every agent edits), `read_file`, `ls`, `glob`, `grep`. " +
    "Every result is checked: no error; reads, `ls` (with byte sizes), `glob` and `grep` show exactly what the agent already wrote; " +
    "at the end every shared-file token is edited and every own file has its final content (nothing lost, nothing extra). " +
    `Rounds repeat in fresh workspaces for SOAK_MINUTES=${MINUTES} per backend (at least one).`,
  "",
);
lines.push(
  `Run: \`SOAK_MINUTES=${MINUTES} npm run soak\` with PostgreSQL from ${process.env.DATABASE_URL ? "`DATABASE_URL`" : "an embedded server"} and S3 from ` +
    `${process.env.S3_ENDPOINT ? "`S3_ENDPOINT`" + (process.env.S3_LABEL ? ` (${process.env.S3_LABEL})` : "") : "the in-process s3rver"}.`,
  "",
);
lines.push(
  "| backend | server | rounds | tool calls | wall per round (s) | errors | stale reads | shared edits (lost) | own edits | own files (lost) | event loop busy |",
);
lines.push("|---|---|---:|---:|---:|---:|---:|---|---:|---|---:|");
for (const s of results) {
  const rs = s.rounds;
  const shared = sum(rs, (r) => r.sharedEdits);
  lines.push(
    `| ${s.label} | ${s.server} | ${rs.length} | ${sum(rs, (r) => r.toolMessages).toLocaleString("en")} | ${(mean(rs, (r) => r.ms) / 1000).toFixed(1)} | ` +
      `${sum(rs, (r) => r.errors.length)} | ${sum(rs, (r) => r.staleReads.length)} | ` +
      `${shared === 0 ? "not run" : `${shared.toLocaleString("en")} (${sum(rs, (r) => r.lostSharedEdits)} lost)`} | ${sum(rs, (r) => r.ownEdits).toLocaleString("en")} | ` +
      `${sum(rs, (r) => r.ownFiles).toLocaleString("en")} (${sum(rs, (r) => r.lostOwnFiles.length)} lost) | ${(100 * mean(rs, (r) => r.eventLoop.utilization)).toFixed(0)}% |`,
  );
}
lines.push("");
for (const s of results) {
  lines.push(
    `**${s.label}** — latency per tool call in ms (LangChain callback handler in the invoke config, handleToolStart → handleToolEnd), ` +
      `of the backend call under it (timed around the backend object), over all rounds; and the same script run by one agent alone:`,
    "",
  );
  const tools = summarize(merge(s.rounds, (r) => r.samples));
  const storage = summarize(
    merge(s.rounds, (r) => r.storageSamples),
    Object.values(TOOL_METHOD),
  );
  const fmt = (x?: number) => (x === undefined || Number.isNaN(x) ? "—" : x >= 100 ? x.toFixed(0) : x.toFixed(1));
  lines.push(
    `| tool | calls | p50 | p99 | max | backend call p50 | backend call p99 | alone: calls | alone p50 | alone p99 |`,
  );
  lines.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const t of tools) {
    const b = storage.find((x) => x.tool === TOOL_METHOD[t.tool]);
    const a = s.alone.latency.find((x) => x.tool === t.tool);
    lines.push(
      `| \`${t.tool}\` | ${t.count.toLocaleString("en")} | ${fmt(t.p50)} | ${fmt(t.p99)} | ${fmt(t.max)} | ${fmt(b?.p50)} | ${fmt(b?.p99)} | ${a?.count ?? 0} | ${fmt(a?.p50)} | ${fmt(a?.p99)} |`,
    );
  }
  lines.push("");
  for (const n of s.notes) lines.push(`- ${n}`);
  if (s.notes.length) lines.push("");
}
const delayP99 =
  results.map((s) => `${s.label} ${Math.max(...s.rounds.map((r) => r.eventLoop.delayP99)).toFixed(0)} ms`).join(", ") +
  " in the worst round";
lines.push(
  "Reading the latencies: all agents share one Node event loop, and LangGraph's per-turn work keeps it busy (see the last column; " +
    `timer delay p99: ${delayP99}), so a tool call's time is mostly waiting for the loop while other agents' turns run — the backend call ` +
    'accounts for nearly all of it because its reply waits in the same queue. The "alone" columns are the same script for one agent ' +
    "(nothing else in the process): the cost of the call itself. These figures are for correctness under load and for spotting tails, " +
    "not storage speed (see the sections above for that).",
);
lines.push("<!-- bench:load:end -->");
const section = lines.join("\n");
console.log(section);

if (failed) {
  console.error("soak FAILED: BENCHMARKS.md not updated");
  process.exit(1);
}
if (!process.env.SOAK_NO_WRITE) {
  const file = new URL("../BENCHMARKS.md", import.meta.url);
  const current = await readFile(file, "utf8");
  const marked = /<!-- bench:load:start[\s\S]*?<!-- bench:load:end -->/;
  await writeFile(
    file,
    marked.test(current) ? current.replace(marked, () => section) : current.trimEnd() + "\n\n" + section + "\n",
  );
  log("BENCHMARKS.md: load section written");
}
