/**
 * fileTools(): move_file and copy_file handed to createDeepAgent, driven by a scripted fakeModel
 * so deepagents' real tool middleware calls them next to its own file tools, on PostgreSQL and on
 * S3 (s3rver, or the endpoint of CI's S3 pass).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createDeepAgent } from "deepagents";
import { fakeModel } from "@langchain/core/testing";
import { AIMessage, type BaseMessage } from "@langchain/core/messages";
import type { DeepAgentsBackend } from "../src/core/interface.js";
import { fileTools } from "../src/history-tools.js";
import { errors } from "../src/protocol.js";
import { toolText } from "./helpers/agent.js";
import { testBackend, uniqueName } from "./helpers/db.js";
import { startTestS3 } from "./helpers/s3.js";

const pg = await testBackend();
const s3 = await startTestS3();
test.after(async () => {
  await pg.close();
  await s3.close();
});

type Call = { name: string; id: string; args: Record<string, unknown> };

/** One agent turn making `calls` (all in one model response), over `b` with the file tools. */
async function turn(b: DeepAgentsBackend, calls: Call[]): Promise<Record<string, string>> {
  const model = fakeModel().respondWithTools(calls).respond(new AIMessage("done"));
  const agent = createDeepAgent({ model, backend: b, tools: fileTools(b) });
  const result = await agent.invoke({ messages: [{ role: "user", content: "go" }] }, { recursionLimit: 50 });
  return toolText(result.messages as BaseMessage[]);
}

for (const [name, fresh] of [
  ["PostgreSQL", async () => pg.withWorkspace(uniqueName("tools"))],
  [`S3 (${s3.kind})`, () => s3.backend()],
] as const) {
  test(`${name}: an agent writes, moves, copies and reads back; a file in the way is an Error line until overwrite`, async () => {
    const b: DeepAgentsBackend = await fresh();
    await turn(b, [
      { name: "write_file", id: "w1", args: { file_path: "/draft/a.md", content: "alpha\n" } },
      { name: "write_file", id: "w2", args: { file_path: "/draft/b.md", content: "beta\n" } },
    ]);
    const moved = await turn(b, [
      { name: "move_file", id: "m", args: { source_path: "/draft", destination_path: "/final" } },
    ]);
    assert.is(moved.m, "Moved /draft to /final (2 files)");
    const second = await turn(b, [
      { name: "copy_file", id: "c", args: { source_path: "/final/a.md", destination_path: "/final/b.md" } },
      { name: "ls", id: "l", args: { path: "/" } },
    ]);
    assert.is(second.c, errors.targetExists("/final/b.md"));
    assert.match(second.l, /\/final\//);
    assert.not.match(second.l, /\/draft/);
    const third = await turn(b, [
      {
        name: "copy_file",
        id: "c",
        args: { source_path: "/final/a.md", destination_path: "/final/b.md", overwrite: true },
      },
    ]);
    assert.is(third.c, "Copied /final/a.md to /final/b.md (1 file)");
    const fourth = await turn(b, [
      { name: "read_file", id: "r", args: { file_path: "/final/b.md" } },
      { name: "move_file", id: "bad", args: { source_path: "/nope", destination_path: "/x" } },
    ]);
    assert.match(fourth.r, /alpha/);
    assert.is(fourth.bad, errors.notFound("/nope"));
  });
}

test.run();
