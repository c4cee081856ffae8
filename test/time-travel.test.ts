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
import { PostgresSaver } from "@langchain/langgraph-checkpoint-postgres";
import { FILES_CHECKPOINT_KEY, rewindFiles, withFileCheckpoints } from "../src/index.js";
import { endOfTurn, type Snapshot, toolText } from "./helpers/agent.js";
import { adminClient, databaseUrl, testBackend, uniqueName } from "./helpers/db.js";

const backend = await testBackend();
// LangGraph's own PostgreSQL checkpointer, in a schema of its own on the test server.
const saverSchema = uniqueName("langgraph");
const postgresSaver = PostgresSaver.fromConnString(await databaseUrl(), { schema: saverSchema });
await postgresSaver.setup();
test.after(async () => {
  await postgresSaver.end();
  const admin = await adminClient();
  await admin.query(`DROP SCHEMA ${saverSchema} CASCADE`);
  await admin.end();
  await backend.close();
});

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

test("PostgresSaver: resuming from the end of step 1 rewinds the files by itself; continuing loses nothing", async () => {
  const b = backend.withWorkspace(uniqueName("tt-pg"));
  const model = fakeModel()
    .respondWithTools([{ name: "write_file", id: "s1", args: { file_path: "/plan.md", content: "step 1\n" } }])
    .respond(new AIMessage("step 1 done"))
    .respondWithTools([
      { name: "edit_file", id: "s2", args: { file_path: "/plan.md", old_string: "step 1", new_string: "step 2" } },
      { name: "write_file", id: "s2b", args: { file_path: "/later.md", content: "from step 2\n" } },
    ])
    .respond(new AIMessage("step 2 done"))
    .respondWithTools([
      { name: "edit_file", id: "s3", args: { file_path: "/plan.md", old_string: "step 2", new_string: "step 3" } },
    ])
    .respond(new AIMessage("step 3 done"))
    // resumed from the end of step 1, with new input: what does the agent see?
    .respondWithTools([
      { name: "read_file", id: "r1", args: { file_path: "/plan.md" } },
      { name: "read_file", id: "r2", args: { file_path: "/later.md" } },
    ])
    .respond(new AIMessage("looked"))
    // and it goes on from there
    .respondWithTools([
      { name: "edit_file", id: "s4", args: { file_path: "/plan.md", old_string: "step 1", new_string: "step 1b" } },
    ])
    .respond(new AIMessage("step 1b done"));
  const saver = withFileCheckpoints(postgresSaver, b);
  const agent = createDeepAgent({ model, backend: b, checkpointer: saver });
  const thread = { configurable: { thread_id: uniqueName("thread") }, durability: "sync" as const, recursionLimit: 50 };
  for (const step of ["one", "two", "three"])
    await agent.invoke({ messages: [{ role: "user", content: step }] }, thread);
  assert.is((await b.readRaw("/plan.md")).data?.content, "step 3\n");

  const step1 = await endOfTurn(agent, thread, "step 1 done");
  const resumed = await agent.invoke(
    { messages: [{ role: "user", content: "what is there?" }] },
    { ...thread, configurable: { ...step1.configurable } },
  );
  const seen = toolText(resumed.messages as BaseMessage[]);
  assert.match(seen.r1, /step 1/, "the agent sees step 1's plan");
  assert.not.match(seen.r1, /step [23]/);
  assert.match(seen.r2, /not found/, "and not the file step 2 wrote");
  assert.not.ok("s2" in seen, "the resumed thread forked after step 1");
  assert.not.ok(
    (await b.checkpoints()).some((c) => c.label?.startsWith("before rewind")),
    "the automatic rewind leaves no undo checkpoint pinning history",
  );

  // Continuing the thread (its latest checkpoint is now the resumed branch) rewinds nothing.
  await agent.invoke({ messages: [{ role: "user", content: "go on" }] }, thread);
  assert.is((await b.readRaw("/plan.md")).data?.content, "step 1b\n");

  // Nothing was lost: every step's version is in history, and so are the rewind's changes.
  const plan = await b.history("/plan.md");
  const contents = [];
  for (const v of plan.versions ?? []) contents.push((await b.readVersion("/plan.md", v.version)).content);
  assert.equal(
    contents.map((c) => String(c).trim()),
    ["step 1", "step 2", "step 3", "step 1", "step 1b"],
  );
  assert.equal(
    (await b.history("/later.md")).versions?.map((v) => v.op),
    ["create", "delete"],
  );
});

test("PostgresSaver: replaying a step's tool calls (invoke(null) from before they ran) after rewindFiles", async () => {
  const b = backend.withWorkspace(uniqueName("tt-replay"));
  const edit = { file_path: "/f.md", old_string: "v1", new_string: "v2" };
  const model = fakeModel()
    .respondWithTools([{ name: "write_file", id: "w", args: { file_path: "/f.md", content: "v1\n" } }])
    .respond(new AIMessage("written"))
    .respondWithTools([{ name: "edit_file", id: "e", args: edit }])
    .respond(new AIMessage("edited"))
    .respond(new AIMessage("edited again")); // the replay reruns the edit, then asks the model
  const saver = withFileCheckpoints(postgresSaver, b);
  const agent = createDeepAgent({ model, backend: b, checkpointer: saver });
  const thread = { configurable: { thread_id: uniqueName("thread") }, durability: "sync" as const, recursionLimit: 50 };
  await agent.invoke({ messages: [{ role: "user", content: "write" }] }, thread);
  await agent.invoke({ messages: [{ role: "user", content: "edit" }] }, thread);
  assert.is((await b.readRaw("/f.md")).data?.content, "v2\n");

  // The checkpoint saved after the model asked for the edit, before the tool ran.
  let beforeEdit: Snapshot["config"] | undefined;
  const graph = agent as unknown as { getStateHistory(config: unknown): AsyncIterable<Snapshot> };
  for await (const snapshot of graph.getStateHistory(thread)) {
    const last = (snapshot.values as { messages: BaseMessage[] }).messages.at(-1) as AIMessage | undefined;
    if (snapshot.next.length > 0 && last?.tool_calls?.[0]?.id === "e") beforeEdit = snapshot.config;
  }
  assert.ok(beforeEdit, "found the checkpoint before the edit ran");

  // A replay reruns the step's pending tool calls as soon as it starts: rewind first.
  await rewindFiles(saver, b, beforeEdit!);
  const replay = await agent.invoke(null, { ...thread, configurable: { ...beforeEdit!.configurable } });
  // Without the rewind the replayed edit would find "v2" and fail to find "v1".
  assert.match(toolText(replay.messages as BaseMessage[]).e, /Successfully replaced/);
  assert.is((await b.readRaw("/f.md")).data?.content, "v2\n");
  const versions = (await b.history("/f.md")).versions ?? [];
  const contents = [];
  for (const v of versions) contents.push(String((await b.readVersion("/f.md", v.version)).content).trim());
  assert.equal(contents, ["v1", "v2", "v1", "v2"]);
});

test("withFileCheckpoints({ rewindOnReplay: false }): resuming from the past leaves the files alone", async () => {
  const b = backend.withWorkspace(uniqueName("tt-off"));
  const model = fakeModel()
    .respondWithTools([{ name: "write_file", id: "a", args: { file_path: "/f.md", content: "one\n" } }])
    .respond(new AIMessage("first"))
    .respondWithTools([{ name: "write_file", id: "b", args: { file_path: "/f.md", content: "two\n" } }])
    .respond(new AIMessage("second"))
    .respond(new AIMessage("resumed"));
  const saver = withFileCheckpoints(postgresSaver, b, { rewindOnReplay: false });
  const agent = createDeepAgent({ model, backend: b, checkpointer: saver });
  const thread = { configurable: { thread_id: uniqueName("thread") }, durability: "sync" as const, recursionLimit: 50 };
  await agent.invoke({ messages: [{ role: "user", content: "1" }] }, thread);
  await agent.invoke({ messages: [{ role: "user", content: "2" }] }, thread);
  const first = await endOfTurn(agent, thread, "first");
  await agent.invoke(
    { messages: [{ role: "user", content: "3" }] },
    { ...thread, configurable: { ...first.configurable } },
  );
  assert.is((await b.readRaw("/f.md")).data?.content, "two\n");
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
