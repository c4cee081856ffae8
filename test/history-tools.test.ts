/**
 * historyTools(): the history as tools handed to createDeepAgent, driven by a scripted fakeModel
 * so deepagents' real tool middleware calls them next to its own file tools.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createDeepAgent } from "deepagents";
import { fakeModel } from "@langchain/core/testing";
import { AIMessage, type BaseMessage } from "@langchain/core/messages";
import { HISTORY_TOOL_OUTPUT_MAX, historyTools } from "../src/history-tools.js";
import { toolText } from "./helpers/agent.js";
import { testBackend, uniqueName } from "./helpers/db.js";

const backend = await testBackend();
test.after(() => backend.close());

type Call = { name: string; id: string; args: Record<string, unknown> };

/** One agent turn making `calls` (all in one model response), over `b` with the history tools. */
async function turn(b: typeof backend, calls: Call[]): Promise<Record<string, string>> {
  const model = fakeModel().respondWithTools(calls).respond(new AIMessage("done"));
  const agent = createDeepAgent({ model, backend: b, tools: historyTools(b) });
  const result = await agent.invoke({ messages: [{ role: "user", content: "go" }] }, { recursionLimit: 50 });
  return toolText(result.messages as BaseMessage[]);
}

test("checkpoint, diff, rewind (dry run, then for real, then undone), history and restore, as an agent uses them", async () => {
  const b = backend.withWorkspace(uniqueName("tools"));
  // Tool calls of one model response run concurrently: what must come first gets its own turn.
  await turn(b, [{ name: "write_file", id: "w", args: { file_path: "/a.md", content: "one\n" } }]);
  const first = await turn(b, [{ name: "checkpoint", id: "c", args: { label: "before the edit" } }]);
  const id = Number(/Checkpoint (\d+) taken \(before the edit\)/.exec(first.c)?.[1]);
  assert.ok(id > 0, first.c);

  const second = await turn(b, [
    { name: "edit_file", id: "e", args: { file_path: "/a.md", old_string: "one", new_string: "two" } },
    { name: "write_file", id: "w2", args: { file_path: "/b.md", content: "new\n" } },
  ]);
  assert.match(second.e, /Successfully replaced/);

  const third = await turn(b, [
    { name: "list_checkpoints", id: "l", args: {} },
    { name: "diff", id: "d", args: { from_checkpoint: id } },
    { name: "rewind", id: "dry", args: { checkpoint_id: id, dry_run: true } },
    { name: "file_history", id: "h", args: { file_path: "/a.md" } },
  ]);
  assert.match(third.l, new RegExp(`^${id}  \\S+  before the edit$`, "m"));
  assert.match(third.d, /^updated \/a\.md \(v1, 4 bytes -> v2, 4 bytes\)\n[\s\S]*-one\n\+two/m);
  assert.match(third.d, /^created \/b\.md \(no file -> v1, 4 bytes\)/m);
  assert.match(
    third.dry,
    /^A rewind would change:\nupdated \/a\.md \(v2, 4 bytes -> v1, 4 bytes\)\ndeleted \/b\.md \(v1, 4 bytes -> no file\)$/,
  );
  assert.match(third.h, /^v1 {2}create {2}4 bytes .*\nv2 {2}update {2}4 bytes /m);
  assert.is((await b.readRaw("/a.md")).data?.content, "two\n", "a dry run changes nothing");

  const fourth = await turn(b, [{ name: "rewind", id: "r", args: { checkpoint_id: id } }]);
  assert.match(
    fourth.r,
    /^Rewound:\nupdated \/a\.md .*\ndeleted \/b\.md .*\nUndo it with rewind to checkpoint (\d+)\.$/,
  );
  assert.is((await b.readRaw("/a.md")).data?.content, "one\n");
  assert.ok((await b.readRaw("/b.md")).error);

  const undo = Number(/checkpoint (\d+)\.$/.exec(fourth.r)?.[1]);
  const fifth = await turn(b, [{ name: "rewind", id: "u", args: { checkpoint_id: undo } }]);
  assert.match(fifth.u, /^Rewound:/);
  assert.is((await b.readRaw("/a.md")).data?.content, "two\n", "the undo brought the edit back");
  assert.is((await b.readRaw("/b.md")).data?.content, "new\n", "and /b.md");

  const sixth = await turn(b, [{ name: "restore_file", id: "s", args: { file_path: "/a.md", version: 1 } }]);
  assert.match(sixth.s, /^Restored \/a\.md to the content of v1, as v5\.$/);
  assert.is((await b.readRaw("/a.md")).data?.content, "one\n");
});

test("bad calls answer one line starting with Error: and change nothing", async () => {
  const b = backend.withWorkspace(uniqueName("tools-err"));
  await b.write("/a.md", "one\n");
  const answers = await turn(b, [
    { name: "rewind", id: "r", args: { checkpoint_id: 999_999_999 } },
    { name: "diff", id: "d", args: { from_checkpoint: 999_999_999 } },
    { name: "file_history", id: "h", args: { file_path: "/missing.md" } },
    { name: "restore_file", id: "s", args: { file_path: "/a.md", version: 7 } },
    { name: "restore_file", id: "p", args: { file_path: "relative.md", version: 1 } },
  ]);
  assert.match(answers.r, /^Error: checkpoint 999999999 does not exist in workspace/);
  assert.match(answers.d, /^Error: checkpoint 999999999 does not exist in workspace/);
  assert.match(answers.h, /^Error: no history kept for '\/missing\.md'$/);
  assert.match(answers.s, /^Error: version 7 of '\/a\.md' is not kept$/);
  assert.match(answers.p, /^Error: /);
  for (const text of Object.values(answers)) assert.not.match(text, /\n/, text);
  assert.equal((await b.history("/a.md")).versions?.length, 1);
});

test("a diff longer than the tool output limit is cut, with a note saying how to narrow it", async () => {
  const b = backend.withWorkspace(uniqueName("tools-big"));
  const start = await b.checkpoint();
  for (let i = 0; i < 30; i++) await b.write(`/f${i}.txt`, `${"x".repeat(1000)}\n`);
  const answers = await turn(b, [{ name: "diff", id: "d", args: { from_checkpoint: start.id } }]);
  assert.ok(answers.d.length < HISTORY_TOOL_OUTPUT_MAX + 200);
  assert.match(answers.d, /\(output cut at 20000 characters; narrow it with paths\)$/);
});

test.run();
