/**
 * End to end on S3: createDeepAgent with a scripted fakeModel over S3Backend, and the seed's
 * hybrid layout through deepagents' CompositeBackend — StateBackend default, /assets/ on S3,
 * /memories/ on PostgreSQL — with grep/glob fan-out and upload/download routing.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { CompositeBackend, StateBackend } from "deepagents";
import { fakeModel } from "@langchain/core/testing";
import { AIMessage } from "@langchain/core/messages";
import { runAgent } from "./helpers/agent.js";
import { startTestS3 } from "./helpers/s3.js";
import { testBackend } from "./helpers/db.js";

const s3 = await startTestS3();
const pg = await testBackend();
test.after(async () => {
  await s3.close();
  await pg.close();
});

test("createDeepAgent drives the file tools on S3Backend", async () => {
  const b = await s3.backend();
  const model = fakeModel()
    .respondWithTools([
      { name: "write_file", id: "w1", args: { file_path: "/report.md", content: "# Report\nrevenue up\n" } },
    ])
    .respondWithTools([
      { name: "edit_file", id: "e1", args: { file_path: "/report.md", old_string: "up", new_string: "up 12%" } },
    ])
    .respondWithTools([
      { name: "read_file", id: "r1", args: { file_path: "/report.md" } },
      { name: "grep", id: "g1", args: { pattern: "revenue" } },
      { name: "glob", id: "gl", args: { pattern: "*.md" } },
      { name: "ls", id: "l1", args: { path: "/" } },
    ])
    .respondWithTools([{ name: "delete", id: "d1", args: { file_path: "/report.md" } }])
    .respond(new AIMessage("done"));
  const out = await runAgent(model, b);
  assert.is(out.w1, "Successfully wrote to '/report.md'");
  assert.is(out.e1, "Successfully replaced 1 occurrence(s) in '/report.md'");
  assert.match(out.r1, /revenue up 12%/);
  assert.match(out.g1, /2: revenue up 12%/);
  assert.is(out.gl, "/report.md");
  assert.match(out.l1, /\/report\.md/);
  assert.match(out.d1, /Deleted \/report\.md/);
  assert.equal((await b.ls("/")).files, []);
});

test("CompositeBackend: StateBackend default, /assets/ on S3, /memories/ on PostgreSQL", async () => {
  const assets = await s3.backend();
  const memories = pg.withWorkspace(`hybrid-${Math.random().toString(36).slice(2, 8)}`);
  const png = Buffer.from("89504e470d0a1a0a", "hex");
  const composite = (runtime: unknown) =>
    new CompositeBackend(new StateBackend(runtime as never), { "/assets/": assets, "/memories/": memories });
  const model = fakeModel()
    .respondWithTools([
      { name: "write_file", id: "w1", args: { file_path: "/assets/brand.md", content: "brand color: teal\n" } },
      { name: "write_file", id: "w2", args: { file_path: "/memories/user.md", content: "likes teal\n" } },
      { name: "write_file", id: "w3", args: { file_path: "/draft.md", content: "teal draft\n" } },
    ])
    .respondWithTools([
      { name: "grep", id: "g1", args: { pattern: "teal" } },
      { name: "glob", id: "gl", args: { pattern: "**/*.md" } },
    ])
    .respond(new AIMessage("done"));
  const out = await runAgent(model, composite);
  for (const p of ["/assets/brand.md", "/memories/user.md", "/draft.md"]) {
    assert.match(out.g1, new RegExp(p.replace(/\//g, "\\/")));
    assert.ok(out.gl.split("\n").includes(p), p);
  }
  // Each route's files live in its own store, route-relative.
  assert.equal(
    (await assets.ls("/")).files!.map((f) => f.path),
    ["/brand.md"],
  );
  assert.equal(
    (await memories.ls("/")).files!.map((f) => f.path),
    ["/user.md"],
  );

  // upload/download route by prefix, byte-exact
  const direct = new CompositeBackend(new StateBackend(), { "/assets/": assets, "/memories/": memories });
  const up = await direct.uploadFiles([
    ["/assets/logo.png", png],
    ["/memories/notes.txt", Buffer.from("n\n")],
  ]);
  assert.equal(
    up.map((r) => r.error),
    [null, null],
  );
  const down = await direct.downloadFiles(["/assets/logo.png", "/memories/notes.txt", "/assets/missing.png"]);
  assert.ok(Buffer.from(down[0].content!).equals(png));
  assert.is(Buffer.from(down[1].content!).toString(), "n\n");
  assert.is(down[2].error, "file_not_found");
  assert.is((await assets.read("/logo.png")).mimeType, "image/png");
});

test.run();
