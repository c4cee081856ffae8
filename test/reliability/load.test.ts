/**
 * Load on PostgreSQL (issue 7, part 5): 8 deep agents (deepagents' createDeepAgent, scripted
 * fakeModel) × 200 file-tool calls each, all at once on ONE workspace through one
 * PostgresBackend (one pool, as in one process serving many agents). Zero tool errors, every
 * query shows what the agent already wrote, zero lost updates (every shared-file edit and every
 * own file's final content), and per-tool p50/p99 printed. The workload and its checks are in
 * load-workload.ts; `npm run soak` runs the same at full size on both backends for BENCHMARKS.md.
 * LOAD_AGENTS / LOAD_CALLS shrink or grow it.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { testBackend } from "../helpers/db.js";
import { describe, latencyTable, runLoad, sharedPath } from "./load-workload.js";

const AGENTS = Number(process.env.LOAD_AGENTS ?? 8);
const CALLS = Number(process.env.LOAD_CALLS ?? 200);
// The package's default pool size (10): agents queue for connections as they would in production.
const backend = await testBackend({ maxPoolSize: 10 });
test.after(() => backend.close());

const result = await runLoad(backend, { agents: AGENTS, callsPerAgent: CALLS });
console.log(describe(`PostgreSQL (workspace ${backend.workspace})`, result));
console.log(latencyTable(result.latency, result.storage));

test(`${AGENTS} agents × ${CALLS} tool calls: every call answered, zero tool errors`, () => {
  assert.is(result.scripted, AGENTS * CALLS);
  assert.is(result.toolMessages, AGENTS * CALLS);
  assert.equal(result.errors, []);
  // A realistic mix really ran: every tool, edits of shared files among them.
  for (const tool of ["write_file", "edit_file", "read_file", "ls", "glob", "grep"])
    assert.ok((result.mix[tool] ?? 0) > 0, tool);
  assert.ok(result.sharedEdits >= AGENTS * 10, `shared edits: ${result.sharedEdits}`);
});

test("every query shows the agent's own earlier writes (reads, ls sizes, glob, grep counts)", () => {
  assert.equal(result.staleReads, []);
});

test("zero lost updates: every token edited into the shared files, every own file's final content", async () => {
  assert.is(result.lostSharedEdits, 0);
  assert.is(result.sharedFilesDiffering, 0);
  assert.equal(result.lostOwnFiles, []);
  assert.ok(result.ownFiles > AGENTS * 5, `own files: ${result.ownFiles}`);
  // Each shared edit was one version step of its file (created at version 1).
  const versions = await Promise.all(result.sharedEditsByFile.map((_, f) => backend.stat(sharedPath(f))));
  assert.equal(
    versions.map((v) => v.data!.version),
    result.sharedEditsByFile.map((n) => 1 + n),
  );
});

test("latency recorded for every tool call, by tool and by backend call", () => {
  assert.is(result.unmatchedCallbacks, 0);
  for (const row of result.latency) {
    assert.is(row.count, result.mix[row.tool], row.tool);
    assert.ok(row.p50 > 0 && row.p50 <= row.p99 && row.p99 <= row.max, `${row.tool}: ${JSON.stringify(row)}`);
  }
  assert.is(
    result.latency.reduce((n, r) => n + r.count, 0),
    AGENTS * CALLS,
  );
  // Every tool call went to the backend exactly once.
  assert.is(
    result.storage.reduce((n, r) => n + r.count, 0),
    AGENTS * CALLS,
  );
});

test.run();
