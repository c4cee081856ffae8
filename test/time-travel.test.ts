/**
 * LangGraph time travel that rewinds files (issue 13): deepagents' createDeepAgent with a scripted
 * fakeModel, a LangGraph checkpointer wrapped by withFileCheckpoints, and PostgresBackend. After
 * two turns that write and then change files, replaying from the checkpoint that ended the first
 * turn — after rewindFiles — shows the agent the files of the first turn, as StateBackend would.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createDeepAgent } from "deepagents";
import { fakeModel } from "@langchain/core/testing";
import { AIMessage, type BaseMessage } from "@langchain/core/messages";
import { MemorySaver } from "@langchain/langgraph-checkpoint";
import { FILES_CHECKPOINT_KEY, rewindFiles, withFileCheckpoints } from "../src/index.js";
import { toolText } from "./helpers/agent.js";
import { testBackend } from "./helpers/db.js";

const backend = await testBackend();
test.after(() => backend.close());

test("replaying from the end of turn 1 after rewindFiles: the agent sees turn 1's files", async () => {
  const b = backend.withWorkspace(`tt-${Date.now()}`);
  const model = fakeModel()
    // turn 1
    .respondWithTools([{ name: "write_file", id: "w1", args: { file_path: "/notes.md", content: "plan: v1\n" } }])
    .respond(new AIMessage("turn 1 done"))
    // turn 2
    .respondWithTools([
      { name: "edit_file", id: "e1", args: { file_path: "/notes.md", old_string: "v1", new_string: "v2" } },
      { name: "write_file", id: "w2", args: { file_path: "/extra.md", content: "added in turn 2\n" } },
    ])
    .respond(new AIMessage("turn 2 done"))
    // the replay from the end of turn 1
    .respondWithTools([{ name: "read_file", id: "r1", args: { file_path: "/notes.md" } }])
    .respond(new AIMessage("replay done"));
  const saver = withFileCheckpoints(new MemorySaver(), b);
  const agent = createDeepAgent({ model, backend: b, checkpointer: saver });
  const thread = { configurable: { thread_id: "thread-1" }, durability: "sync" as const, recursionLimit: 50 };

  await agent.invoke({ messages: [{ role: "user", content: "write the plan" }] }, thread);
  await agent.invoke({ messages: [{ role: "user", content: "revise the plan" }] }, thread);
  assert.is((await b.readRaw("/notes.md")).data?.content, "plan: v2\n");

  // The graph checkpoint that ended turn 1: its last message is the model's "turn 1 done".
  let endOfTurn1: { configurable?: Record<string, unknown> } | undefined;
  // deepagents' agent type does not surface LangGraph's getStateHistory; the graph has it.
  const graph = agent as unknown as {
    getStateHistory(config: unknown): AsyncIterable<{
      values: unknown;
      next: string[];
      config: { configurable?: Record<string, unknown> };
      metadata?: unknown;
    }>;
  };
  for await (const snapshot of graph.getStateHistory(thread)) {
    const messages = (snapshot.values as { messages: BaseMessage[] }).messages;
    if (messages.at(-1)?.content === "turn 1 done" && snapshot.next.length === 0) endOfTurn1 = snapshot.config;
    assert.is(typeof (snapshot.metadata as Record<string, unknown>)[FILES_CHECKPOINT_KEY], "number");
  }
  assert.ok(endOfTurn1?.configurable?.checkpoint_id, "found the end of turn 1");

  const dry = await rewindFiles(saver, b, endOfTurn1!, { dryRun: true });
  assert.equal(
    dry.changes.map((c) => [c.path, c.op]),
    [
      ["/extra.md", "deleted"],
      ["/notes.md", "updated"],
    ],
  );
  assert.is((await b.readRaw("/notes.md")).data?.content, "plan: v2\n", "a dry run changes nothing");

  const done = await rewindFiles(saver, b, endOfTurn1!);
  assert.is((await b.readRaw("/notes.md")).data?.content, "plan: v1\n");
  assert.ok((await b.readRaw("/extra.md")).error);

  const replay = await agent.invoke(
    { messages: [{ role: "user", content: "read the plan again" }] },
    {
      ...thread,
      configurable: { ...endOfTurn1!.configurable },
    },
  );
  const tools = toolText(replay.messages as BaseMessage[]);
  assert.match(tools.r1, /plan: v1/);
  assert.not.ok("w2" in tools, "the replayed thread forked before turn 2");

  // The rewind itself is undoable.
  await b.rewind(done.undo!);
  assert.is((await b.readRaw("/notes.md")).data?.content, "plan: v2\n");
});

test("rewindFiles: a graph checkpoint saved without withFileCheckpoints, or none, is one clear error", async () => {
  const b = backend.withWorkspace(`tt2-${Date.now()}`);
  const plain = new MemorySaver();
  const agent = createDeepAgent({
    model: fakeModel().respond(new AIMessage("hi")),
    backend: b,
    checkpointer: plain,
  });
  const thread = { configurable: { thread_id: "plain" } };
  await agent.invoke({ messages: [{ role: "user", content: "hello" }] }, thread);
  try {
    await rewindFiles(plain, b, thread);
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /has no file checkpoint: it was saved without withFileCheckpoints\(\)/);
  }
  try {
    await rewindFiles(plain, b, { configurable: { thread_id: "nobody" } });
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /no LangGraph checkpoint for thread "nobody"/);
  }
});

test.run();
