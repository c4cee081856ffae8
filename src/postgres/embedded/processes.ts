/**
 * Telling a live process from a dead one or a reused pid (Linux /proc; kill(0) elsewhere), for the
 * lock holder, the registered clients and the postmaster, and the polling pause while waiting on them.
 */
import { readFileSync } from "node:fs";

export interface ProcessId {
  pid: number;
  /** Kernel start time (Linux /proc/<pid>/stat field 22), null where unknown. */
  start: string | null;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

/** Running and not a zombie (a reaped-late postmaster must not look alive). */
export function running(pid: number): boolean {
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

export function alive(id: ProcessId): boolean {
  if (!running(id.pid)) return false;
  return id.start === null || startTime(id.pid) === null || startTime(id.pid) === id.start;
}

export const self = (): ProcessId => ({ pid: process.pid, start: startTime(process.pid) });

export function parseId(text: string): ProcessId | null {
  try {
    const v = JSON.parse(text);
    return Number.isInteger(v?.pid) && v.pid > 0
      ? { pid: v.pid, start: typeof v.start === "string" ? v.start : null }
      : null;
  } catch {
    return null;
  }
}
