/**
 * Bad input to a protocol method is an input error naming what was given, on both backends —
 * never "storage failure", never a server's internal message, never a clamped value (issue 11,
 * item 15).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { testBackend } from "./helpers/db.js";
import { startTestS3 } from "./helpers/s3.js";

const s3 = await startTestS3();
const backends = { postgres: await testBackend(), s3: await s3.backend() };

test.after(async () => {
  await backends.postgres.close();
  await s3.close();
});

for (const [name, b] of Object.entries(backends)) {
  test(`${name}: grep and search with a maxCount that is not a number`, async () => {
    await b.write("/m.txt", "needle\n");
    for (const [bad, shown] of [
      [NaN, "NaN"],
      ["3", '"3"'],
      [{}, "[object Object]"],
    ] as const) {
      const grep = await b.grep("needle", "/", null, bad as unknown as number);
      assert.is(grep.error, `Error: maxCount must be a number of matches or null (got ${shown})`, `grep ${shown}`);
      const search = await b.search({ pattern: "needle", maxCount: bad as unknown as number });
      assert.is(search.error, `Error: maxCount must be a number of matches or null (got ${shown})`, `search ${shown}`);
    }
    assert.equal((await b.grep("needle", "/", null, 1)).matches?.length, 1);
  });

  test(`${name}: search timeoutMs beyond what a timer or statement_timeout can hold`, async () => {
    await b.write("/t.txt", "needle\n");
    for (const bad of [1e12, 2 ** 31, 0, -5, Infinity]) {
      const r = await b.search({ pattern: "needle", timeoutMs: bad });
      assert.is(
        r.error,
        `Error: timeoutMs must be a number of milliseconds from 1 to 2147483647 (got ${bad})`,
        String(bad),
      );
    }
    assert.equal((await b.search({ pattern: "needle", path: "/t.txt", timeoutMs: 2 ** 31 - 1 })).matches?.length, 1);
  });

  test(`${name}: read past the end names the offset given, however large`, async () => {
    await b.write("/r.txt", "one line\n");
    assert.is((await b.read("/r.txt", 1e12)).error, "Line offset 1000000000000 exceeds file length (1 lines)");
    assert.is((await b.read("/r.txt", 2 ** 31 + 7)).error, `Line offset ${2 ** 31 + 7} exceeds file length (1 lines)`);
    assert.is((await b.read("/r.txt", 0, 1e12)).content, (await b.read("/r.txt")).content);
  });
}

test.run();
