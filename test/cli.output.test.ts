/**
 * LineOutput (src/cli/output.ts), the CLI grep's writer: with a reader slower than the producer,
 * what waits in this process stays bounded (the producer is held back), and every line arrives in
 * order; end() resolves once the last line was handed on.
 */
import { Writable } from "node:stream";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { LineOutput } from "../src/cli/output.js";

test("a slow reader holds the producer back: the bytes waiting stay bounded, every line arrives", async () => {
  const received: string[] = [];
  const slow = new Writable({
    highWaterMark: 16 * 1024,
    write(chunk, _encoding, done) {
      received.push(chunk.toString());
      setTimeout(done, 2); // a reader that takes 2 ms per chunk
    },
  });
  const out = new LineOutput(slow);
  let most = 0;
  // Batches of 1,024 lines with a pause between them, as a cursor's FETCHes arrive.
  for (let batch = 0; batch < 100; batch++) {
    for (let i = 0; i < 1024; i++) {
      assert.ok(await out.line(`batch ${batch} line ${i} ${"x".repeat(40)}`));
      most = Math.max(most, slow.writableLength);
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await out.end();
  const lines = received.join("").split("\n").slice(0, -1);
  assert.is(lines.length, 100 * 1024);
  assert.is(lines[5000], `batch 4 line 904 ${"x".repeat(40)}`);
  // Without backpressure the whole 6 MB waited in the stream's buffer.
  assert.ok(most < 256 * 1024, `${most} bytes waited in the stream`);
});

test.run();
