/**
 * End to end: deepagents' own createDeepAgent with a scripted fakeModel, so the real filesystem
 * tool middleware calls PostgresBackend; also deepagents' CompositeBackend with a PostgresBackend
 * route over a StateBackend default. Assertions on the tool messages and on the database.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { CompositeBackend, StateBackend } from "deepagents";
import { fakeModel } from "@langchain/core/testing";
import { AIMessage } from "@langchain/core/messages";
import { runAgent } from "./helpers/agent.js";
import { adminClient, testBackend, TEST_SCHEMA } from "./helpers/db.js";

const backend = await testBackend();
const admin = await adminClient();
test.after(async () => {
  await backend.close();
  await admin.end();
});

test("createDeepAgent drives write, edit, read, ls, glob, grep and delete on PostgresBackend", async () => {
  const b = backend.withWorkspace("e2e-agent");
  await b.delete("/");
  const model = fakeModel()
    .respondWithTools([
      {
        name: "write_file",
        id: "w1",
        args: { file_path: "/notes/todo.md", content: "# Todo\n- buy milk\n- fix bug\n" },
      },
      { name: "write_file", id: "w2", args: { file_path: "/src/app.ts", content: "export const answer = 41;\n" } },
    ])
    .respondWithTools([
      { name: "edit_file", id: "e1", args: { file_path: "/src/app.ts", old_string: "41", new_string: "42" } },
    ])
    .respondWithTools([
      { name: "read_file", id: "r1", args: { file_path: "/notes/todo.md" } },
      { name: "ls", id: "l1", args: { path: "/" } },
      { name: "glob", id: "g1", args: { pattern: "**/*.ts" } },
      { name: "grep", id: "s1", args: { pattern: "fix bug" } },
      { name: "edit_file", id: "e2", args: { file_path: "/notes/todo.md", old_string: "nope", new_string: "x" } },
    ])
    .respondWithTools([{ name: "delete", id: "d1", args: { file_path: "/notes" } }])
    .respond(new AIMessage("All done."));
  const out = await runAgent(model, b);

  assert.is(out.w1, "Successfully wrote to '/notes/todo.md'");
  assert.is(out.e1, "Successfully replaced 1 occurrence(s) in '/src/app.ts'");
  assert.match(out.r1, /buy milk/);
  assert.match(out.r1, /fix bug/);
  assert.match(out.l1, /\/notes\/ \(directory\)/);
  assert.match(out.l1, /\/src\/ \(directory\)/);
  assert.is(out.g1, "/src/app.ts");
  assert.match(out.s1, /\/notes\/todo\.md/);
  assert.match(out.s1, /3: - fix bug/);
  assert.is(out.e2, "Error: String not found in file: 'nope'");
  assert.match(out.d1, /Deleted \/notes/);

  const { rows } = await admin.query(
    `SELECT path, content, version FROM ${TEST_SCHEMA}.files WHERE workspace = $1 ORDER BY path`,
    [b.workspace],
  );
  assert.equal(
    rows.map((r) => [r.path, r.content, Number(r.version)]),
    [["/src/app.ts", "export const answer = 42;\n", 2]],
  );
});

test("CompositeBackend: /memories/ on PostgresBackend over a StateBackend default, with grep/glob fan-out", async () => {
  const memories = backend.withWorkspace("e2e-composite");
  await memories.delete("/");
  await memories.write("/prefs.md", "user likes tea\n");
  const composite = (runtime: unknown) =>
    new CompositeBackend(new StateBackend(runtime as never), { "/memories/": memories });
  const model = fakeModel()
    .respondWithTools([
      {
        name: "write_file",
        id: "w1",
        args: { file_path: "/memories/facts.md", content: "sky is blue\nlikes tea too\n" },
      },
      { name: "write_file", id: "w2", args: { file_path: "/scratch.md", content: "temporary likes\n" } },
    ])
    .respondWithTools([
      { name: "grep", id: "s1", args: { pattern: "likes" } },
      { name: "glob", id: "g1", args: { pattern: "**/*.md" } },
      { name: "ls", id: "l1", args: { path: "/memories" } },
      { name: "read_file", id: "r1", args: { file_path: "/memories/prefs.md" } },
    ])
    .respond(new AIMessage("done"));
  const out = await runAgent(model, composite);

  assert.match(out.s1, /\/memories\/facts\.md/);
  assert.match(out.s1, /\/memories\/prefs\.md/);
  assert.match(out.s1, /\/scratch\.md/);
  for (const p of ["/memories/facts.md", "/memories/prefs.md", "/scratch.md"])
    assert.ok(out.g1.split("\n").includes(p), p);
  assert.match(out.l1, /\/memories\/facts\.md/);
  assert.match(out.r1, /user likes tea/);

  // Only the route's files reached PostgreSQL, stored under route-relative paths.
  const { rows } = await admin.query(`SELECT path FROM ${TEST_SCHEMA}.files WHERE workspace = $1 ORDER BY path`, [
    memories.workspace,
  ]);
  assert.equal(
    rows.map((r) => r.path),
    ["/facts.md", "/prefs.md"],
  );
});

test("CompositeBackend: routed grep with maxCount and delete of the route root", async () => {
  const memories = backend.withWorkspace("e2e-composite-2");
  await memories.delete("/");
  await memories.uploadFiles([
    ["/a.txt", Buffer.from("hit\nhit\nhit\n")],
    ["/b.txt", Buffer.from("hit\n")],
  ]);
  const composite = new CompositeBackend(new StateBackend(), { "/memories/": memories });
  const capped = await composite.grep("hit", "/memories", null, 2);
  assert.equal(
    capped.matches!.map((m) => `${m.path}:${m.line}`),
    ["/memories/a.txt:1", "/memories/a.txt:2"],
  );
  assert.is(capped.truncated, true);
  const globbed = await composite.glob("*.txt", "/memories");
  assert.equal(globbed.files!.map((f) => f.path).sort(), ["/memories/a.txt", "/memories/b.txt"]);
  const dl = await composite.downloadFiles(["/memories/b.txt"]);
  assert.is(Buffer.from(dl[0].content!).toString(), "hit\n");
  assert.equal(await memories.delete("/"), { path: "/", filesUpdate: null });
  assert.equal((await memories.ls("/")).files, []);
});

test.run();
