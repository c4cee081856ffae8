/**
 * The files beside a shared server's data directory: `<dataDir>.lock`, the exclusive lock held
 * while a command starts, joins, leaves or stops the server, and `<dataDir>.clients`, the list of
 * the commands using it (see shared.ts for how the two are used together).
 */
import { randomBytes } from "node:crypto";
import { link, readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import { alive, type ProcessId, parseId, self, sleep } from "./processes.js";

const LOCK_WAIT_MS = 120_000;

/**
 * An exclusive lock file (O_EXCL create). A lock whose holder died is broken by renaming it away
 * first, so two waiters that both saw it stale cannot both delete a fresh lock: only one rename
 * succeeds, and a rename that caught a live holder's lock puts it back.
 */
export async function acquireLock(file: string): Promise<() => Promise<void>> {
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

export async function readClients(file: string): Promise<ProcessId[]> {
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
export async function writeClients(file: string, clients: ProcessId[]): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, JSON.stringify(clients));
  await rename(temp, file);
}
