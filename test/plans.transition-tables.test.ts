/**
 * The statement triggers never loop over a transition table once per row of another.
 *
 * PostgreSQL estimates a transition table (a statement trigger's `new_rows` / `old_rows`) at a
 * few rows, and PL/pgSQL reuses a plan made for the first, one-row statement of a session. A join
 * of `old_rows` with `new_rows` then became a nested loop: quadratic in the statement (24 ms of an
 * upload of 500 files over themselves in chunks_update; the change log's staging as much), and a
 * cached generic plan of history_deleted took a 2,000-file delete from 0.15 to 1.2 s. 0015 and
 * 0016 pair old and new rows by grouping (a statement over transition tables alone has no
 * parameters, so PL/pgSQL plans it once per session whatever plan_cache_mode says) and re-plan
 * the triggers' parameterized statements per call (force_custom_plan). Plans, not timings:
 * auto_explain (with ANALYZE) on the one connection that ran single writes first, then bulk ones.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { planCapturingBackend } from "./helpers/plans.js";

const { capture, backend, end } = await planCapturingBackend("ttplans", { analyze: true });
test.after(end);

const N = 300;

/** Nodes that scan a transition table many times over, many rows each time: a nested loop on it.
 *  (PostgreSQL 18 prints actual rows with two decimals.) */
function repeatedTuplestoreScans(plans: string[]): string[] {
  const found: string[] = [];
  for (const plan of plans) {
    for (const m of plan.matchAll(
      /Named Tuplestore Scan[^\n]*actual time=[\d.]+\.\.[\d.]+ rows=([\d.]+) loops=(\d+)/g,
    )) {
      const [rows, loops] = [Number(m[1]), Number(m[2])];
      if (loops >= 20 && rows >= 20) found.push(`${rows} rows × ${loops} loops in\n${plan.slice(0, 400)}`);
    }
  }
  return found;
}

test("bulk writes after single ones: no transition table is scanned once per row of another", async () => {
  // Single writes first, on this connection: every trigger makes its plans with one-row tables.
  for (let i = 0; i < 8; i++) {
    assert.is((await backend.write(`/one/f${i}.txt`, `first ${i}\n`)).error, undefined);
    assert.is((await backend.write(`/one/f${i}.txt`, `second ${i}\n`)).error, undefined);
    assert.is((await backend.edit(`/one/f${i}.txt`, "second", "third")).error, undefined);
    assert.is((await backend.delete(`/one/f${i}.txt`)).error, undefined);
  }
  const batch = (word: string): Array<[string, Uint8Array]> =>
    Array.from({ length: N }, (_, i) => [`/bulk/f${i}.txt`, Buffer.from(`${word} ${i}\n`)]);
  const plans = await capture.plansDuring(async () => {
    assert.ok((await backend.uploadFiles(batch("new"))).every((r) => r.error === null));
    assert.ok((await backend.uploadFiles(batch("over"))).every((r) => r.error === null));
    assert.ok((await backend.uploadFiles(batch("over"))).every((r) => r.error === null)); // the same bytes
    assert.is((await backend.delete("/bulk")).error, undefined);
  });
  assert.ok(
    plans.some((p) => /Named Tuplestore Scan[^\n]*rows=300(\.00)? loops=1\b/.test(p)),
    "the bulk statements' trigger plans were captured",
  );
  assert.equal(repeatedTuplestoreScans(plans), []);
  // A transition table filtered by `= ANY (<array parameter>)`: a generic plan (chunks_update keeps
  // one, 0018) cannot hash the array, so each row is compared with every element: quadratic.
  assert.equal(
    plans.filter((p) => /Named Tuplestore Scan[^\n]*\n\s*(Output: [^\n]*\n\s*)?Filter: [^\n]*= ANY \(\$\d+/.test(p)),
    [],
  );
});

test.run();
