/**
 * attachEmbeddedPostgres (the CLI): a server shared by every CLI command on one data directory.
 *
 * Beside the data directory (initdb wants it empty, so nothing of ours goes inside before it
 * exists): `<dataDir>.lock`, held while a command starts, joins, leaves or stops the server, and
 * `<dataDir>.clients`, the commands using it (pid + process start time, so a reused pid is not
 * mistaken for a live client). A command joins under the lock (starting the server if none is
 * running), and leaves under the lock; the one that leaves it with no live client stops it. The
 * postmaster runs in a session of its own (detached), so neither a Ctrl-C in the terminal of the
 * command that started it nor that command's exit reaches it.
 */
import { mkdir, unlink } from "node:fs/promises";
import path from "node:path";
import { embeddedUrl } from "./address.js";
import { acquireLock, readClients, writeClients } from "./lock.js";
import { foreignParent, READY_WAIT_MS, readPostmaster, startDetached, stopPostmaster } from "./postmaster.js";
import { alive, self, sleep } from "./processes.js";

export interface SharedServer {
  connectionString: string;
  dataDir: string;
  /** Leaves the server; the last live client stops it. Idempotent. */
  release(): Promise<void>;
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
