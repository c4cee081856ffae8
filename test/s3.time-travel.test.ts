/**
 * LangGraph time travel that rewinds files, on S3 with bucket versioning (Ceph RGW in CI): the
 * same withFileCheckpoints over S3Backend, and deepagents' createDeepAgent with a scripted
 * fakeModel. Skipped, and said so, where the endpoint has no versioning (s3rver).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createDeepAgent } from "deepagents";
import { fakeModel } from "@langchain/core/testing";
import { AIMessage, type BaseMessage } from "@langchain/core/messages";
import { MemorySaver } from "@langchain/langgraph-checkpoint";
import { withFileCheckpoints } from "../src/index.js";
import { endOfTurn, toolText } from "./helpers/agent.js";
import { uniqueName } from "./helpers/db.js";
import { startTestS3, versionedBucket } from "./helpers/s3.js";

const s3 = await startTestS3();
const versioned = await versionedBucket(s3);
test.after(async () => {
  await versioned?.close();
  await s3.close();
});

const name = "resuming from the end of turn 1 with new input: the agent sees turn 1's files on S3";
if (!versioned) test.skip(`${name} (${s3.kind} has no bucket versioning: runs on Ceph RGW)`, () => {});
else
  test(name, async () => {
    const b = await versioned.backend();
    const model = fakeModel()
      .respondWithTools([{ name: "write_file", id: "w", args: { file_path: "/plan.md", content: "turn 1\n" } }])
      .respond(new AIMessage("turn 1 done"))
      .respondWithTools([
        { name: "edit_file", id: "e", args: { file_path: "/plan.md", old_string: "turn 1", new_string: "turn 2" } },
        { name: "write_file", id: "w2", args: { file_path: "/later.md", content: "turn 2\n" } },
      ])
      .respond(new AIMessage("turn 2 done"))
      .respondWithTools([
        { name: "read_file", id: "r1", args: { file_path: "/plan.md" } },
        { name: "read_file", id: "r2", args: { file_path: "/later.md" } },
      ])
      .respond(new AIMessage("looked"));
    const saver = withFileCheckpoints(new MemorySaver(), b);
    const agent = createDeepAgent({ model, backend: b, checkpointer: saver });
    const thread = { configurable: { thread_id: uniqueName("t") }, durability: "sync" as const, recursionLimit: 50 };
    await agent.invoke({ messages: [{ role: "user", content: "one" }] }, thread);
    await agent.invoke({ messages: [{ role: "user", content: "two" }] }, thread);
    assert.is((await b.readRaw("/plan.md")).data?.content, "turn 2\n");

    const turn1 = await endOfTurn(agent, thread, "turn 1 done");
    const resumed = await agent.invoke(
      { messages: [{ role: "user", content: "what is there?" }] },
      { ...thread, configurable: { ...turn1.configurable } },
    );
    const seen = toolText(resumed.messages as BaseMessage[]);
    assert.match(seen.r1, /turn 1/);
    assert.not.match(seen.r1, /turn 2/);
    assert.match(seen.r2, /not found/);
    // Nothing lost: turn 2's version is still in the object's versions.
    const versions = (await b.history("/plan.md")).versions ?? [];
    assert.equal(
      versions.map((v) => v.op),
      ["create", "update", "update"],
    );
    assert.match(String((await b.readVersion("/plan.md", 2)).content), /^turn 2\n?$/);
  });

test.run();
