/**
 * Wake-ups after commit (migrations/0028_commits_ordered_per_workspace.sql, part 4).
 *
 * A NOTIFY sent from a writer's commit holds PostgreSQL's database-wide notification lock until
 * that commit is flushed to disk, so every notifying writer of the database commits alone. Each
 * statement of the backend that changes files says, for its own transaction, that its commit
 * sends no NOTIFY (sql/wake_up_after_commit.sql wraps it); once it has committed, its workspace is
 * handed here, and fs_wake_up() notifies it from a transaction of its own that commits without
 * waiting for a flush. One such call is in flight at a time: the workspaces of commits that end
 * meanwhile wait and go in the next call together, so under load one wake-up serves many writes.
 *
 * A wake-up is only a hint (watch.ts reads the durable log from its cursor): one that is lost
 * (the connection broke, the process ended) delays watchers until their next poll and loses
 * nothing, so a failure here is never the writer's error.
 */
export class WakeUps {
  readonly #send: (workspaces: string[]) => Promise<unknown>;
  readonly #pending = new Set<string>();
  #sending: Promise<void> | null = null;

  constructor(send: (workspaces: string[]) => Promise<unknown>) {
    this.#send = send;
  }

  /** A change of `workspace` committed: wake its watchers soon (with whatever else is pending). */
  committed(workspace: string): void {
    this.#pending.add(workspace);
    this.#sending ??= this.#drain();
  }

  /** Resolves once every wake-up handed in so far was sent (or failed): before the pool ends. */
  settled(): Promise<void> {
    return this.#sending ?? Promise.resolve();
  }

  async #drain(): Promise<void> {
    while (this.#pending.size > 0) {
      const workspaces = [...this.#pending];
      this.#pending.clear();
      await this.#send(workspaces).catch(() => {}); // watchers' poll covers a lost wake-up
    }
    this.#sending = null;
  }
}
