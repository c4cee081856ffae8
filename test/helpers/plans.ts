/**
 * The plans of the statements a backend really runs — the queries inside fs_search, fs_glob and
 * fs_ls included — not hand-written copies of them: auto_explain with nested statements on, its
 * output sent to the client as NOTICEs, on a one-connection pool the backend is given.
 * Needs a role allowed to LOAD auto_explain (a superuser: the test and bench databases).
 */
import pg from "pg";
import { adminClient, databaseUrl, testBackend, uniqueName } from "./db.js";

export interface PlanCapture {
  /** Give this to PostgresBackend({ pool }); close() of the backend leaves it open. */
  readonly pool: pg.Pool;
  /** The one plan captured during fn whose query text contains `marker`. */
  planOf(marker: string, fn: () => Promise<unknown>): Promise<string>;
  /** Every plan captured during fn, nested statements (trigger bodies too) included. */
  plansDuring(fn: () => Promise<unknown>): Promise<string[]>;
  end(): Promise<void>;
}

export interface PlanCaptureOptions {
  /** EXPLAIN ANALYZE with BUFFERS (timings and row counts), as the benchmark reports. */
  analyze?: boolean;
  connectionString?: string;
}

export async function capturePlans(options: PlanCaptureOptions = {}): Promise<PlanCapture> {
  let sink: string[] | null = null;
  const settings = [
    "session_preload_libraries=auto_explain",
    "auto_explain.log_min_duration=0",
    "auto_explain.log_nested_statements=on",
    "auto_explain.log_level=notice",
    "client_min_messages=notice",
    ...(options.analyze ? ["auto_explain.log_analyze=on", "auto_explain.log_buffers=on"] : []),
  ];
  // Startup options, so every connection of the pool has them from its first statement.
  const pool = new pg.Pool({
    connectionString: options.connectionString ?? (await databaseUrl()),
    options: settings.map((s) => `-c ${s}`).join(" "),
    max: 1,
  });
  pool.on("connect", (client) => {
    client.on("notice", (n) => {
      // (An EXPLAIN a function runs to choose its strategy is logged too; it is not a plan that ran.)
      if (sink && n.message?.includes("plan:") && !/Query Text: EXPLAIN\b/.test(n.message))
        sink.push(n.message.replace(/^duration: [\d.]+ ms\s+plan:\n/, ""));
    });
  });
  /** Every plan logged while fn runs ("Query Text: …" followed by the plan). */
  const during = async (fn: () => Promise<unknown>) => {
    const plans: string[] = [];
    sink = plans;
    try {
      await fn();
    } finally {
      sink = null;
    }
    return plans;
  };
  return {
    pool,
    async planOf(marker, fn) {
      const plans = (await during(fn)).filter((p) => p.includes(marker));
      if (plans.length !== 1)
        throw new Error(
          `expected one plan containing ${JSON.stringify(marker)}, captured ${plans.length}:\n${plans.join("\n---\n")}`,
        );
      return plans[0];
    },
    plansDuring: during,
    end: () => pool.end(),
  };
}

/**
 * A backend on a schema of its own (plans depend on that schema's statistics, not on other test
 * files'), on a one-connection pool whose plans are captured; end() drops the schema.
 */
export async function planCapturingBackend(prefix: string, options: PlanCaptureOptions = {}) {
  const schema = uniqueName(prefix);
  const capture = await capturePlans(options);
  const backend = await testBackend({ schema, pool: capture.pool });
  const admin = await adminClient();
  const end = async () => {
    await backend.close();
    await capture.end();
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
  };
  return { schema, capture, backend, admin, end };
}
