/**
 * The hybrid layout: deepagents' CompositeBackend with the thread's state as the default,
 * /memories/ in PostgreSQL and /assets/ in S3.
 *
 *   DATABASE_URL=postgres://... S3_ENDPOINT=http://localhost:9000 AWS_ACCESS_KEY_ID=minioadmin \
 *   AWS_SECRET_ACCESS_KEY=minioadmin S3_BUCKET=agents node --import tsx examples/composite.ts
 */
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { CompositeBackend, StateBackend, createDeepAgent } from "deepagents";
import { fakeModel } from "@langchain/core/testing";
import { AIMessage } from "@langchain/core/messages";
import { PostgresBackend, S3Backend } from "../src/index.js";

const connectionString = process.env.DATABASE_URL;
if (!connectionString) throw new Error("Set DATABASE_URL (and S3_ENDPOINT etc. for the assets route)");

const memories = new PostgresBackend({ connectionString, workspace: "memories-demo" });
const assets = new S3Backend({
  bucket: process.env.S3_BUCKET ?? "agents",
  prefix: "assets",
  workspace: "demo",
  endpoint: process.env.S3_ENDPOINT,
  accessKeyId: process.env.AWS_ACCESS_KEY_ID,
  secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
});
await assets.client.send(new CreateBucketCommand({ Bucket: assets.bucket })).catch(() => {});
await Promise.all([memories.initialize(), assets.initialize()]);

const agent = createDeepAgent({
  model: fakeModel()
    .respondWithTools([
      { name: "write_file", args: { file_path: "/memories/user.md", content: "prefers tea\n" } },
      { name: "write_file", args: { file_path: "/assets/menu.md", content: "tea, coffee\n" } },
    ])
    .respondWithTools([{ name: "grep", args: { pattern: "tea" } }])
    .respond(new AIMessage("noted")),
  // A factory: StateBackend needs the run's state; the other two instances are shared.
  backend: (runtime) => new CompositeBackend(new StateBackend(runtime), { "/memories/": memories, "/assets/": assets }),
});
const result = await agent.invoke({ messages: [{ role: "user", content: "remember I like tea" }] });
console.log(result.messages.map((m) => `${m.getType()}: ${typeof m.content === "string" ? m.content : ""}`).join("\n"));
await Promise.all([memories.close(), assets.close()]);
