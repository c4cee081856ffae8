/**
 * Load on S3 (issue 7, part 5): 8 deep agents (createDeepAgent, scripted fakeModel) × 200
 * file-tool calls each, all at once on ONE workspace through one S3Backend. Zero tool errors,
 * every query shows what the agent already wrote, every own file ends with its final content,
 * per-tool p50/p99 printed (workload and checks: load-workload.ts).
 *
 * Shared-file edits (many agents editing the same objects) need a server that enforces If-Match
 * (CI: Ceph RGW); on one that does not (s3rver) they are left out of the workload and the
 * shared-file lost-update test shows as skipped. s3rver also rewrites an object in place, so a
 * GET racing a PUT of the same key can return a truncated body: there, agents do not grep other
 * agents' directories while those are being written. LOAD_AGENTS / LOAD_CALLS shrink or grow it.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { startTestS3 } from "../helpers/s3.js";
import { describe, latencyTable, runLoad } from "./load-workload.js";

const AGENTS = Number(process.env.LOAD_AGENTS ?? 8);
const CALLS = Number(process.env.LOAD_CALLS ?? 200);
const s3 = await startTestS3();
// s3rver writes an object's metadata file in place (truncate, then write): a listing that reads
// it meanwhile answers 500 InternalError, which real S3 and Ceph RGW never do for this. Under this
// load (its event loop shared with 8 agents) the SDK's 3 retries were once not enough (a CI run of
// 2026-12-06): more retries here, where the server is s3rver, and the default elsewhere.
const backend = await s3.backend(s3.kind === "s3rver" ? { maxRetries: 10 } : {});
const enforcing = backend.capabilities!.conditionalWrites;
const atomicOverwrites = s3.kind !== "s3rver";
/** Runs only where the endpoint enforces If-Match; elsewhere it shows as skipped. */
const whenEnforcing = enforcing ? test : test.skip;
if (!enforcing)
  console.log(
    `NOTE: ${s3.kind} does not enforce conditional writes: agents did not edit shared objects, the shared lost-update test did not run (set S3_ENDPOINT to Ceph RGW, MinIO or AWS).`,
  );
test.after(() => s3.close());

const result = await runLoad(backend, {
  agents: AGENTS,
  callsPerAgent: CALLS,
  sharedEdits: enforcing,
  crossAgentReads: atomicOverwrites,
});
console.log(describe(`S3 (${s3.kind})`, result));
console.log(latencyTable(result.latency, result.storage));

test(`${AGENTS} agents × ${CALLS} tool calls: every call answered, zero tool errors`, () => {
  assert.is(result.scripted, AGENTS * CALLS);
  assert.is(result.toolMessages, AGENTS * CALLS);
  assert.equal(result.errors, []);
  for (const tool of ["write_file", "edit_file", "read_file", "ls", "glob", "grep"])
    assert.ok((result.mix[tool] ?? 0) > 0, tool);
});

test("every query shows the agent's own earlier writes (reads, ls sizes, glob, grep counts)", () => {
  assert.equal(result.staleReads, []);
});

test("zero lost updates in the agents' own files: every file ends with its final content", () => {
  assert.equal(result.lostOwnFiles, []);
  assert.ok(result.ownFiles > AGENTS * 5, `own files: ${result.ownFiles}`);
  assert.ok(result.ownEdits > AGENTS * 20, `own edits: ${result.ownEdits}`);
  // Without shared edits the shared objects must be exactly as created.
  if (!enforcing) assert.is(result.sharedFilesDiffering, 0);
});

whenEnforcing("zero lost updates in the shared objects: every agent's token edits land", () => {
  assert.ok(result.sharedEdits >= AGENTS * 10, `shared edits: ${result.sharedEdits}`);
  assert.is(result.lostSharedEdits, 0);
  assert.is(result.sharedFilesDiffering, 0);
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
  assert.is(
    result.storage.reduce((n, r) => n + r.count, 0),
    AGENTS * CALLS,
  );
});

test.run();
