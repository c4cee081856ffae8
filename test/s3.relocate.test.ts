/**
 * move() and copy() on S3 (src/s3/relocate.ts): the shared cases (test/conformance/relocate.ts),
 * on s3rver in the default runs and on Ceph RGW in CI's S3 pass, where conditional writes are
 * enforced and each copy carries If-None-Match / If-Match for its target.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { relocateCases } from "./conformance/relocate.js";
import { startTestS3 } from "./helpers/s3.js";

const s3 = await startTestS3();

relocateCases(`S3Backend (${s3.kind})`, () => s3.backend());

test("a moved directory leaves no object under the old prefix, and the copies keep their content type", async () => {
  const b = await s3.backend();
  await b.write("/d/a.md", "# a\n");
  await b.uploadFiles([["/d/x.bin", Buffer.from([0, 1, 2, 3])]]);
  assert.is((await b.move("/d", "/e")).files, 2);
  assert.equal(
    (await b.ls("/")).files?.map((f) => f.path),
    ["/e/"],
  );
  const stat = await b.stat("/e/a.md");
  assert.is(stat.data?.mimeType, (await b.stat("/e/a.md")).data?.mimeType);
  assert.match(stat.data!.mimeType, /^text\/markdown/);
  assert.is((await b.stat("/e/x.bin")).data?.isBinary, true);
});

test.after(() => s3.close());
test.run();
