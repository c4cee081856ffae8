/**
 * The change feed as a backend offers it (PostgreSQL today: src/postgres/watch.ts delivers it):
 * one change per committed create, update or delete of a file, in commit order, exactly once,
 * resumable from a cursor. A move is a delete and a create that name each other (movedTo,
 * movedFrom), logged in the same transaction.
 */
import { setupErrors } from "../protocol.js";

export interface Change {
  id: number;
  workspace: string;
  path: string;
  op: "create" | "update" | "delete";
  /** The file's version after the change (for a delete, the version it had). */
  version: number;
  size: number;
  at: string;
  /** On the delete of a moved file: where it went (same workspace). */
  movedTo?: string;
  /** On the create of a moved file: where it came from. A move is logged as the two, together. */
  movedFrom?: string;
}

/**
 * A change's or a version's other path, as the log and history store it (one column, `moved`):
 * on a delete, where the file went; on a create, where it came from.
 */
export function movedSide(op: string, moved: string | null): { movedTo?: string; movedFrom?: string } {
  if (moved === null) return {};
  return op === "delete" ? { movedTo: moved } : { movedFrom: moved };
}

export interface WatchOptions {
  /** Deliver changes with an id above this one; default: only changes from now on. */
  since?: number;
  /** Only paths matching this glob (or any of these), relative to the root: "src/**\/*.ts". */
  paths?: string | string[];
  /**
   * Called with each change as it is read. With it, the subscription's iterator yields the changes
   * read from the moment the iterator is created (without it, every change from `since` on).
   */
  onChange?: (change: Change) => void;
  /** Subscription failures (e.g. ResyncRequiredError). Without it they end the iterator. */
  onError?: (error: Error) => void;
  /** Fallback read interval when no notification arrives. Default 10 s. */
  pollIntervalMs?: number;
  /** Changes read per query. Default 1000. */
  batchSize?: number;
  /**
   * Wait this long after a notification before reading, so a burst of commits is read in one
   * query instead of one query per commit per watcher. Default 5 ms.
   */
  coalesceMs?: number;
}

/** The cursor is older than the retained log: re-read the workspace, then watch from now. */
export class ResyncRequiredError extends Error {
  readonly code = "RESYNC_REQUIRED";
  constructor(
    readonly since: number,
    detail: string,
  ) {
    super(setupErrors.resyncRequired(detail));
    this.name = "ResyncRequiredError";
  }
}

export interface Subscription extends AsyncIterable<Change> {
  /** The id of the last change read (delivered or filtered out). */
  readonly cursor: number;
  close(): Promise<void>;
}
