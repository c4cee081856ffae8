/**
 * Faults (issue 7, part 4), injected into real services this file owns: a private embedded
 * PostgreSQL (whatever DATABASE_URL says, so it can be stopped and restarted) and a private
 * s3rver. PostgreSQL restarted under a workload, pool exhaustion, statement timeout, a backend
 * killed mid-delete and mid-upload, an S3 endpoint that is down or goes down. Every protocol call
 * must come back (no hang) with a clear error result while the fault lasts, the same backend
 * object must work afterwards, the change feed must deliver exactly what was committed, and no
 * error may carry a credential. Prints the faults injected.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import S3rver from "s3rver";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { PostgresBackend, S3Backend, type Change } from "../../src/index.js";
import { freePort, startEmbeddedPostgres, type EmbeddedServer } from "../../src/postgres/embedded/index.js";

const SCHEMA = "deepagents";
/** A role whose password is distinctive enough to find if any message leaked it. */
const ROLE = "faults_agent";
const ROLE_PASSWORD = "Pw-9f3kQ-never-in-logs";
const S3_SECRET = "S3-secret-7hQx-never-in-logs";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const faults = {
  pgRestarts: 0,
  poolExhaustions: 0,
  statementTimeouts: 0,
  killedTransactions: 0,
  s3Outages: 0,
  s3AttemptsCounted: 0,
};
const tallies = { callsDuringFaults: 0, errorResults: 0, changesCommitted: 0, changesDelivered: 0, lost: 0 };

const dataDir = await mkdtemp(path.join(tmpdir(), "deepagents-faults-"));
const port = await freePort();
let server: EmbeddedServer = await startEmbeddedPostgres({ dataDir, port, persistent: true });
const superUrl = server.connectionString;
{
  const c = new pg.Client({ connectionString: superUrl });
  await c.connect();
  await c.query(`CREATE ROLE ${ROLE} LOGIN SUPERUSER PASSWORD '${ROLE_PASSWORD}'`);
  await c.end();
}
const url = `postgres://${ROLE}:${ROLE_PASSWORD}@127.0.0.1:${port}/postgres`;

async function restartPostgres(downMs: number): Promise<void> {
  await server.stop();
  await sleep(downMs);
  server = await startEmbeddedPostgres({ dataDir, port, persistent: true });
  faults.pgRestarts++;
}

async function admin(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: superUrl });
  c.on("error", () => {});
  await c.connect();
  return c;
}

const STORAGE_ERROR = /^Error: storage failure during \w+: \S.*/;

/** The distinct kinds of error seen (numbers masked), for the log. */
const kinds = (failures: Array<{ error?: string }>) =>
  JSON.stringify([...new Set(failures.map((f) => f.error!.replace(/during \w+/, "during <op>").replace(/\d+/g, "N")))]);

/** A fault-time error result: clear, one line of cause, and never a credential. */
function assertFaultError(error: string | undefined, context: string): void {
  assert.type(error, "string", `${context}: expected an error result`);
  assert.match(error!, STORAGE_ERROR, `${context}: ${error}`);
  assert.not.ok(error!.includes(ROLE_PASSWORD) || error!.includes(S3_SECRET), `${context}: credential in ${error}`);
}

test.after(async () => {
  console.log(
    `faults injected: ${faults.pgRestarts} PostgreSQL restarts, ${faults.poolExhaustions} pool exhaustions, ` +
      `${faults.statementTimeouts} statement timeouts, ${faults.killedTransactions} transactions killed mid-write, ` +
      `${faults.s3Outages} S3 outages (${faults.s3AttemptsCounted} request attempts counted); ` +
      `${tallies.callsDuringFaults} calls during faults, ${tallies.errorResults} clear error results, no hang; ` +
      `change feed: ${tallies.changesCommitted} committed, ${tallies.changesDelivered} delivered, ${tallies.lost} lost`,
  );
  await server.stop().catch(() => {});
  await rm(dataDir, { recursive: true, force: true });
});

test("PostgreSQL restarted mid-workload: clear errors, no hang, same backend recovers, watch loses nothing", async () => {
  const backend = new PostgresBackend({
    connectionString: url,
    schema: SCHEMA,
    workspace: "restart",
    maxPoolSize: 4,
    minPoolSize: 0,
    connectionTimeoutMs: 2_000,
    statementTimeoutMs: 10_000,
  });
  await backend.initialize();
  const seen: Change[] = [];
  const watchErrors: string[] = [];
  const sub = await backend.watch({
    since: 0,
    pollIntervalMs: 60_000,
    onChange: (c) => seen.push(c),
    onError: (e) => watchErrors.push(e.message),
  });

  type Outcome = { op: string; path: string; ok: boolean; version?: number; error?: string; ms: number };
  const outcomes: Outcome[] = [];
  let phase: "before" | "down" | "after" = "before";
  let afterOk = 0;
  const worker = async (w: number) => {
    for (let i = 0; phase !== "after" || afterOk < 200; i++) {
      const p = `/w${w}/f${i % 7}.txt`;
      const started = Date.now();
      const kind = i % 4;
      let r: { error?: string; version?: number; content?: unknown; files?: unknown };
      let op: string;
      if (kind === 0 || kind === 3) [op, r] = ["write", await backend.write(p, `worker ${w} step ${i}\n`)];
      else if (kind === 1) [op, r] = ["edit", await backend.edit(p, `worker ${w}`, `worker ${w}`)];
      else [op, r] = ["read", await backend.read(p)];
      const ms = Date.now() - started;
      const failed = r.error !== undefined && !/not found|String not found/.test(r.error);
      outcomes.push({ op, path: p, ok: !failed, version: (r as { version?: number }).version, error: r.error, ms });
      if (phase !== "before") tallies.callsDuringFaults++;
      if (phase === "after" && !failed) afterOk++;
      if (failed) await sleep(20);
      if (i > 20_000) break;
    }
  };
  const workers = Array.from({ length: 4 }, (_, w) => worker(w));
  await sleep(400);
  phase = "down";
  await restartPostgres(700);
  phase = "after";
  await Promise.all(workers);

  const failures = outcomes.filter((o) => !o.ok);
  assert.ok(failures.length > 0, "some calls were in flight or issued while the server was down");
  for (const f of failures) assertFaultError(f.error, `${f.op} ${f.path}`);
  tallies.errorResults += failures.length;
  const slowest = Math.max(...outcomes.map((o) => o.ms));
  assert.ok(slowest < 10_000, `a call took ${slowest} ms`);
  // the same backend object works afterwards
  assert.ok(afterOk >= 200);
  assert.is((await backend.write("/after.txt", "fine")).error, undefined);
  assert.is((await backend.read("/after.txt")).content, "fine");

  // watch: catches up after the restart; exactly the committed log, in order, no duplicates
  const { rows } = await backend.pool.query(
    `SELECT id, path, version FROM ${SCHEMA}.changes WHERE workspace = 'restart' ORDER BY id`,
  );
  const deadline = Date.now() + 20_000;
  while (sub.cursor < Number(rows.at(-1).id) && Date.now() < deadline) await sleep(50);
  await sub.close();
  assert.equal(
    seen.map((c) => c.id),
    rows.map((r) => Number(r.id)),
    "delivered ids = committed ids",
  );
  // every write acknowledged as successful is in the feed with its version
  const delivered = new Set(seen.map((c) => `${c.path}@${c.version}`));
  const acknowledged = outcomes.filter((o) => o.ok && (o.op === "write" || o.op === "edit") && o.version !== undefined);
  const missing = acknowledged.filter((o) => !delivered.has(`${o.path}@${o.version}`));
  assert.equal(missing, []);
  tallies.changesCommitted += rows.length;
  tallies.changesDelivered += seen.length;
  tallies.lost += missing.length + rows.length - seen.length;
  for (const e of watchErrors) assert.not.ok(e.includes(ROLE_PASSWORD), `watch error leaked the password: ${e}`);
  console.log(
    `  restart: ${outcomes.length} calls, ${failures.length} failed clearly (slowest ${slowest} ms), ${rows.length} changes all delivered; e.g. ${kinds(failures)}`,
  );
  await backend.close();
});

test("pool exhaustion: every call waits a bounded time, then a clear error; never a hang", async () => {
  const backend = new PostgresBackend({
    connectionString: url,
    schema: SCHEMA,
    workspace: "pool",
    maxPoolSize: 2,
    minPoolSize: 0,
    connectionTimeoutMs: 300,
  });
  await backend.write("/a.txt", "a\n");
  const held = [await backend.pool.connect(), await backend.pool.connect()];
  faults.poolExhaustions++;
  const started = Date.now();
  const results = await Promise.all([
    backend.read("/a.txt"),
    backend.readRaw("/a.txt"),
    backend.stat("/a.txt"),
    backend.ls("/"),
    backend.write("/b.txt", "b"),
    backend.edit("/a.txt", "a", "b"),
    backend.delete("/a.txt"),
    backend.grep("a"),
    backend.glob("**"),
    backend.search({ pattern: "a+", regex: true }),
  ]);
  const upload = await backend.uploadFiles([["/c.txt", Buffer.from("c")]]).then(
    () => "resolved",
    (e: Error) => e.message,
  );
  const download = await backend.downloadFiles(["/a.txt"]).then(
    () => "resolved",
    (e: Error) => e.message,
  );
  const elapsed = Date.now() - started;
  for (const r of results) {
    assertFaultError(r.error, "exhausted pool");
    assert.match(r.error!, /timeout exceeded when trying to connect/);
  }
  // uploadFiles/downloadFiles have no error code for a storage failure: they reject (README)
  assert.match(upload, /timeout exceeded when trying to connect/);
  assert.match(download, /timeout exceeded when trying to connect/);
  tallies.callsDuringFaults += results.length + 2;
  tallies.errorResults += results.length + 2;
  assert.ok(elapsed < 5_000, `exhausted calls took ${elapsed} ms`);
  for (const c of held) c.release();
  assert.is((await backend.read("/a.txt")).content, "a\n");
  assert.equal([backend.pool.totalCount <= 2, backend.pool.waitingCount], [true, 0]);
  await backend.close();
});

test("statement timeout: a call blocked behind a lock is cancelled after statementTimeoutMs", async () => {
  const backend = new PostgresBackend({
    connectionString: url,
    schema: SCHEMA,
    workspace: "stmt",
    maxPoolSize: 2,
    minPoolSize: 0,
    statementTimeoutMs: 300,
  });
  await backend.write("/a.txt", "a\n");
  const locker = await admin();
  await locker.query("BEGIN");
  await locker.query(`LOCK TABLE ${SCHEMA}.files IN ACCESS EXCLUSIVE MODE`);
  const calls: Array<[string, () => Promise<{ error?: string }>]> = [
    ["read", () => backend.read("/a.txt")],
    ["write", () => backend.write("/a.txt", "changed")],
    ["ls", () => backend.ls("/")],
  ];
  for (const [name, call] of calls) {
    const started = Date.now();
    const r = await call();
    const ms = Date.now() - started;
    assertFaultError(r.error, name);
    assert.match(r.error!, /canceling statement due to statement timeout/);
    assert.ok(ms >= 250 && ms < 3_000, `${name} took ${ms} ms`);
    faults.statementTimeouts++;
  }
  // search() takes its own, shorter limit
  const started = Date.now();
  assert.equal(await backend.search({ pattern: "a", timeoutMs: 100 }), {
    error: "Error: search timed out after 100 ms; narrow the path, glob or pattern",
  });
  assert.ok(Date.now() - started < 2_000);
  faults.statementTimeouts++;
  tallies.callsDuringFaults += calls.length + 1;
  tallies.errorResults += calls.length + 1;
  await locker.query("ROLLBACK");
  await locker.end();
  assert.is((await backend.read("/a.txt")).content, "a\n"); // the timed-out write changed nothing
  assert.is((await backend.write("/a.txt", "now")).error, undefined);
  await backend.close();
});

/** Waits until a backend process runs `fn` and waits on a lock; returns its pid. */
async function blockedPid(a: pg.Client, fn: string): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const { rows } = await a.query(
      "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1 AND pid <> pg_backend_pid()",
      [`%${fn}%`],
    );
    if (rows.length === 1) return rows[0].pid;
    await sleep(25);
  }
  throw new Error(`no backend blocked in ${fn}`);
}

test("a transaction killed mid-delete of a big directory leaves nothing half-done", async () => {
  const backend = new PostgresBackend({
    connectionString: url,
    schema: SCHEMA,
    workspace: "kill-delete",
    maxPoolSize: 2,
    minPoolSize: 0,
  });
  const files = Array.from(
    { length: 3000 },
    (_, i) => [`/big/f${i}.txt`, Buffer.from(`file ${i}\n`)] as [string, Uint8Array],
  );
  await backend.uploadFiles(files);
  const count = async () =>
    Number(
      (await backend.pool.query(`SELECT count(*) FROM ${SCHEMA}.files WHERE workspace = 'kill-delete'`)).rows[0].count,
    );
  const deletes = async () =>
    Number(
      (
        await backend.pool.query(
          `SELECT count(*) FROM ${SCHEMA}.changes WHERE workspace = 'kill-delete' AND op = 'delete'`,
        )
      ).rows[0].count,
    );
  assert.is(await count(), 3000);
  // A row in the middle (path order) is locked: the DELETE removes the rows before it, then waits there.
  const locker = await admin();
  await locker.query("BEGIN");
  await locker.query(
    `SELECT 1 FROM ${SCHEMA}.files WHERE workspace = 'kill-delete' AND path = '/big/f5.txt' FOR UPDATE`,
  );
  const killer = await admin();
  const pending = backend.delete("/big");
  const pid = await blockedPid(killer, "fs_delete");
  await killer.query("SELECT pg_terminate_backend($1)", [pid]);
  faults.killedTransactions++;
  const r = await pending;
  assertFaultError(r.error, "killed delete");
  await locker.query("ROLLBACK");
  assert.is(await count(), 3000, "every file is still there");
  assert.is(await deletes(), 0, "no delete reached the change log");
  // timed kills of an unobstructed delete: whenever it lands, all or nothing
  for (const delayMs of [2, 8, 20]) {
    const running = backend.delete("/big");
    await sleep(delayMs);
    await killer.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%fs_delete%' AND pid <> pg_backend_pid()",
    );
    faults.killedTransactions++;
    const outcome = await running;
    const left = await count();
    if (outcome.error) {
      assertFaultError(outcome.error, `delete killed after ${delayMs} ms`);
      assert.ok(left === 3000 || left === 0, `${left} files left`); // the kill may land after the commit
    } else assert.is(left, 0);
    assert.is(await deletes(), left === 0 ? 3000 : 0);
    if (left === 0) break;
  }
  // the same backend finishes the job
  if ((await count()) > 0) assert.is((await backend.delete("/big")).error, undefined);
  assert.is(await count(), 0);
  assert.is(await deletes(), 3000);
  await killer.end();
  await locker.end();
  await backend.close();
});

test("a transaction killed mid-uploadFiles of a big batch stores none of it", async () => {
  const backend = new PostgresBackend({
    connectionString: url,
    schema: SCHEMA,
    workspace: "kill-upload",
    maxPoolSize: 2,
    minPoolSize: 0,
  });
  await backend.write("/up/f1000.txt", "old\n");
  const locker = await admin();
  await locker.query("BEGIN");
  await locker.query(
    `SELECT 1 FROM ${SCHEMA}.files WHERE workspace = 'kill-upload' AND path = '/up/f1000.txt' FOR UPDATE`,
  );
  const killer = await admin();
  // f0..f999 are inserted before the upsert reaches the locked f1000 and waits
  const batch = Array.from(
    { length: 2000 },
    (_, i) => [`/up/f${i}.txt`, Buffer.from(`new ${i}\n`)] as [string, Uint8Array],
  );
  const pending = backend.uploadFiles(batch).then(
    () => null,
    (e: Error) => e,
  );
  const pid = await blockedPid(killer, "fs_upload");
  await killer.query("SELECT pg_terminate_backend($1)", [pid]);
  faults.killedTransactions++;
  const failure = await pending;
  assert.ok(failure instanceof Error, "uploadFiles rejects on a storage failure (README)");
  assert.match(failure!.message, /terminat|Connection terminated/i);
  assert.not.ok(failure!.message.includes(ROLE_PASSWORD));
  await locker.query("ROLLBACK");
  const { rows } = await backend.pool.query(
    `SELECT path, content, version FROM ${SCHEMA}.files WHERE workspace = 'kill-upload'`,
  );
  assert.equal(rows, [{ path: "/up/f1000.txt", content: "old\n", version: "1" }]);
  const { rows: log } = await backend.pool.query(
    `SELECT count(*)::int AS n FROM ${SCHEMA}.changes WHERE workspace = 'kill-upload'`,
  );
  assert.is(log[0].n, 1, "only the original create is in the change log");
  // retried on the same backend, the whole batch lands
  const again = await backend.uploadFiles(batch);
  assert.ok(again.every((x) => x.error === null));
  assert.is((await backend.glob("**", "/up")).files!.length, 2000);
  assert.is((await backend.read("/up/f1000.txt")).content, "new 1000\n");
  await killer.end();
  await locker.end();
  await backend.close();
});

test("credentials never appear in error results: wrong password, closed port", async () => {
  const wrong = new PostgresBackend({
    connectionString: `postgres://${ROLE}:Wrong-${ROLE_PASSWORD}@127.0.0.1:${port}/postgres`,
    schema: SCHEMA,
    workspace: "w",
  });
  const r1 = await wrong.read("/a.txt");
  assertFaultError(r1.error, "wrong password");
  assert.match(r1.error!, /password authentication failed/);
  await wrong.close();
  const closed = new PostgresBackend({
    connectionString: `postgres://${ROLE}:${ROLE_PASSWORD}@127.0.0.1:${await freePort()}/postgres`,
    schema: SCHEMA,
    workspace: "w",
  });
  assertFaultError((await closed.read("/a.txt")).error, "closed port");
  await closed.close();
  tallies.callsDuringFaults += 2;
  tallies.errorResults += 2;
});

// ---- S3 ------------------------------------------------------------------------------------

const s3Base = (endpoint: string) => ({
  endpoint,
  region: "us-east-1",
  forcePathStyle: true,
  accessKeyId: "S3RVER",
  secretAccessKey: "S3RVER",
});

test("S3 endpoint down (closed port): bounded retries, then a clear error", async () => {
  const deadPort = await freePort();
  const b = new S3Backend({
    ...s3Base(`http://127.0.0.1:${deadPort}`),
    secretAccessKey: S3_SECRET,
    bucket: "b",
    maxRetries: 2,
    connectTimeoutMs: 500,
  });
  const started = Date.now();
  const results = [
    await b.read("/a.txt"),
    await b.write("/a.txt", "x"),
    await b.ls("/"),
    await b.grep("x"),
    await b.glob("*"),
    await b.delete("/a.txt"),
  ];
  const elapsed = Date.now() - started;
  for (const r of results) {
    assertFaultError(r.error, "dead endpoint");
    assert.match(r.error!, /S3 bucket "b" is not usable/);
  }
  assert.ok(elapsed < 20_000, `${elapsed} ms`);
  faults.s3Outages++;
  tallies.callsDuringFaults += results.length;
  tallies.errorResults += results.length;
  await b.close();
});

test("S3 endpoint that resets every connection: exactly maxRetries + 1 attempts, then a clear error", async () => {
  let attempts = 0;
  const resetter = net.createServer((socket) => {
    attempts++;
    socket.destroy();
  });
  await new Promise<void>((r) => resetter.listen(0, "127.0.0.1", r));
  const endpoint = `http://127.0.0.1:${(resetter.address() as net.AddressInfo).port}`;
  const b = new S3Backend({
    ...s3Base(endpoint),
    secretAccessKey: S3_SECRET,
    bucket: "b",
    maxRetries: 2,
    connectTimeoutMs: 500,
    capabilities: { conditionalWrites: true, etagQuoting: "quoted" },
  });
  const started = Date.now();
  const r = await b.read("/a.txt");
  const elapsed = Date.now() - started;
  assertFaultError(r.error, "resetting endpoint");
  assert.is(attempts, 3, "HeadBucket tried 1 + maxRetries times");
  assert.ok(elapsed < 10_000, `${elapsed} ms`);
  faults.s3Outages++;
  faults.s3AttemptsCounted += attempts;
  tallies.callsDuringFaults++;
  tallies.errorResults++;
  await b.close();
  await new Promise((r) => resetter.close(r));
});

test("S3 workspace-level calls with the endpoint down throw one storage-failure line each, never the SDK's error", async () => {
  const directory = await mkdtemp(path.join(tmpdir(), "faults-s3rver-"));
  const s3Port = await freePort();
  const s3 = new S3rver({ port: s3Port, address: "127.0.0.1", silent: true, directory });
  await s3.run();
  const endpoint = `http://127.0.0.1:${s3Port}`;
  const s3admin = new S3Client({
    ...s3Base(endpoint),
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
  });
  await s3admin.send(new CreateBucketCommand({ Bucket: "faults-ws" }));
  s3admin.destroy();
  const b = new S3Backend({
    ...s3Base(endpoint),
    bucket: "faults-ws",
    workspace: "w",
    maxRetries: 1,
    connectTimeoutMs: 500,
  });
  await b.initialize();
  let up = true;
  try {
    const calls = (x: S3Backend): Array<[string, () => Promise<unknown>]> => [
      ["checkpoint", () => x.checkpoint()],
      ["checkpoints", () => x.checkpoints()],
      ["deleteCheckpoint", () => x.deleteCheckpoint(1)],
      ["rewind", () => x.rewind(1)],
      ["diff", () => x.diff(1)],
      ["fork", () => x.fork(`${x.workspace}2`)],
    ];
    const failsAsStorage = async (name: string, call: () => Promise<unknown>, context: string) => {
      const thrown = await call().then(
        () => null,
        (e) => e,
      );
      assert.instance(thrown, Error, `${context} ${name} threw`);
      assert.not.ok(
        "$metadata" in thrown,
        `${context} ${name}: the SDK's own error (${thrown.name}) reached the caller`,
      );
      assertFaultError(thrown.message, `${context} ${name}`);
      assert.match(thrown.message, new RegExp(name), `${context} ${name}: the message names the call`);
      return thrown.message as string;
    };
    // Credentials that stop working (an expired SSO session): the SDK fails before its retry step,
    // so the error has none of its metadata.
    let expired = false;
    const { accessKeyId: _a, secretAccessKey: _s, ...noKeys } = s3Base(endpoint);
    const c = new S3Backend({
      ...noKeys,
      bucket: "faults-ws",
      workspace: "c",
      maxRetries: 1,
      credentials: async () => {
        if (expired) throw new Error("the SSO session has expired");
        return { accessKeyId: "S3RVER", secretAccessKey: "S3RVER", expiration: new Date(Date.now() + 1_000) };
      },
    });
    await c.initialize();
    expired = true;
    for (const [name, call] of calls(c)) {
      assert.match(await failsAsStorage(name, call, "expired credentials:"), /the SSO session has expired/);
    }
    await c.close();
    // A fork whose target cannot hold a key (S3's 1,024 bytes): the path error, worded as one.
    // (Names under 255 bytes: s3rver keeps each object as a file.)
    const deep = `/${Array.from({ length: 4 }, () => "k".repeat(200)).join("/")}/${"k".repeat(150)}`;
    assert.is((await b.write(deep, "x")).error, undefined);
    const long = await b.fork("w".repeat(100)).then(
      () => null,
      (e: Error) => e,
    );
    assert.match(String(long?.message), /^Error: Invalid path '.+': .+ \(S3 allows 1024\)$/);
    (s3 as unknown as { httpServer: import("node:http").Server }).httpServer.closeAllConnections();
    await s3.close();
    up = false;
    faults.s3Outages++;
    for (const [name, call] of calls(b)) await failsAsStorage(name, call, "endpoint down:");
  } finally {
    // (A failed assertion must not leave the endpoint running: the process would never exit.)
    if (up) {
      (s3 as unknown as { httpServer: import("node:http").Server }).httpServer.closeAllConnections();
      await s3.close();
    }
    await b.close();
    await rm(directory, { recursive: true, force: true });
  }
});

test("s3rver stopped mid-workload: clear errors while down, the same backend works after restart", async () => {
  const directory = await mkdtemp(path.join(tmpdir(), "faults-s3rver-"));
  const s3Port = await freePort();
  const start = async () => {
    const s = new S3rver({ port: s3Port, address: "127.0.0.1", silent: true, directory });
    await s.run();
    return s;
  };
  let s3 = await start();
  const endpoint = `http://127.0.0.1:${s3Port}`;
  const s3admin = new S3Client({
    ...s3Base(endpoint),
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
  });
  await s3admin.send(new CreateBucketCommand({ Bucket: "faults" }));
  const b = new S3Backend({
    ...s3Base(endpoint),
    bucket: "faults",
    workspace: "w",
    maxRetries: 1,
    connectTimeoutMs: 500,
    readTimeoutMs: 2_000,
  });
  await b.initialize();
  let phase: "before" | "down" | "after" = "before";
  const outcomes: Array<{ ok: boolean; error?: string; ms: number; phase: string }> = [];
  let afterOk = 0;
  const worker = async (w: number) => {
    for (let i = 0; (phase !== "after" || afterOk < 60) && i < 5_000; i++) {
      const started = Date.now();
      const r =
        i % 2 === 0 ? await b.write(`/w${w}/f${i % 5}.txt`, `w${w} ${i}`) : await b.read(`/w${w}/f${(i - 1) % 5}.txt`);
      const ok = r.error === undefined || /not found/.test(r.error);
      outcomes.push({ ok, error: r.error, ms: Date.now() - started, phase });
      if (phase === "after" && ok) afterOk++;
      if (!ok) await sleep(20);
    }
  };
  const workers = Array.from({ length: 3 }, (_, w) => worker(w));
  await sleep(300);
  phase = "down";
  const http = (s3 as unknown as { httpServer: import("node:http").Server }).httpServer;
  http.closeAllConnections();
  await s3.close();
  faults.s3Outages++;
  await sleep(800);
  s3 = await start();
  phase = "after";
  await Promise.all(workers);
  const failures = outcomes.filter((o) => !o.ok);
  assert.ok(failures.length > 0, "calls failed while the endpoint was down");
  for (const f of failures) assertFaultError(f.error, `s3 ${f.phase}`);
  const slowest = Math.max(...outcomes.map((o) => o.ms));
  assert.ok(slowest < 8_000, `a call took ${slowest} ms`);
  assert.ok(afterOk >= 60);
  assert.is((await b.write("/after.txt", "fine")).error, undefined);
  assert.is((await b.read("/after.txt")).content, "fine");
  tallies.callsDuringFaults += outcomes.filter((o) => o.phase !== "before").length;
  tallies.errorResults += failures.length;
  console.log(
    `  s3rver outage: ${outcomes.length} calls, ${failures.length} failed clearly (slowest ${slowest} ms), then recovered; e.g. ${kinds(failures)}`,
  );
  await b.close();
  s3admin.destroy();
  (s3 as unknown as { httpServer: import("node:http").Server }).httpServer.closeAllConnections();
  await s3.close();
  await rm(directory, { recursive: true, force: true });
});

test.run();
