/**
 * Wake-ups after commit (migrations/0028_commits_ordered_per_workspace.sql, part 4).
 *
 * A NOTIFY sent from a writer's commit holds PostgreSQL's database-wide notification lock until
 * that commit is flushed to disk, so every notifying writer of the database commits alone. Each
 * statement of the backend that changes files says, for its own transaction, that its commit
 * sends no NOTIFY (sql/wake_up_after_commit.sql wraps it) and runs here (around()); once it has
 * committed, fs_wake_up() notifies its workspace from a transaction of its own that commits
 * without waiting for a flush (sql/wake_up.sql). One such call is in flight at a time: the
 * workspaces of commits that end meanwhile wait and go in the next call together, so under load
 * one wake-up serves many writes.
 *
 * A wake-up is only a hint (watch.ts reads the durable log from its cursor): one that is lost
 * (the connection broke, the process ended) delays watchers until their next poll and loses
 * nothing, so a failure here is never the writer's error.
 */
export class WakeUps {
  readonly #send: (workspaces: string[]) => Promise<unknown>;
  readonly #pending = new Set<string>();
  #sending: Promise<void> | null = null;
  /** Statements running through around(), and who waits for none to be (settled()). */
  #running = 0;
  readonly #idle: Array<() => void> = [];

  constructor(send: (workspaces: string[]) => Promise<unknown>) {
    this.#send = send;
  }

  /**
   * Runs `statement`, which may change `workspace`'s files and whose commit sends no NOTIFY
   * (sql/wake_up_after_commit.sql); once it succeeded, its watchers are woken soon, with whatever
   * else is pending. (One that failed changed nothing; one whose reply was lost may have
   * committed: its watchers read it at their next poll.)
   */
  async around<R>(workspace: string, statement: () => Promise<R>): Promise<R> {
    this.#running++;
    try {
      const result = await statement();
      this.#pending.add(workspace);
      this.#sending ??= this.#drain();
      return result;
    } finally {
      if (--this.#running === 0) for (const idle of this.#idle.splice(0)) idle();
    }
  }

  /**
   * Resolves once the statements running now have ended and every wake-up they handed in was
   * sent (or failed): what close() waits for before the pool ends.
   */
  async settled(): Promise<void> {
    while (this.#running > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
    await this.#sending;
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
