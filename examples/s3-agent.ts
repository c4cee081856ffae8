/**
 * A deep agent whose files live in S3 (or MinIO, R2, Ceph RGW).
 *
 *   docker compose up -d minio     # or any S3 endpoint
 *   S3_ENDPOINT=http://localhost:9000 AWS_ACCESS_KEY_ID=minioadmin AWS_SECRET_ACCESS_KEY=minioadmin \
 *   S3_BUCKET=agents node --import tsx examples/s3-agent.ts
 */
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { createDeepAgent } from "deepagents";
import { fakeModel } from "@langchain/core/testing";
import { AIMessage } from "@langchain/core/messages";
import { S3Backend } from "../src/index.js";

const backend = new S3Backend({
  bucket: process.env.S3_BUCKET ?? "agents",
  prefix: "agent-workspace",
  workspace: "demo",
  endpoint: process.env.S3_ENDPOINT,
  accessKeyId: process.env.AWS_ACCESS_KEY_ID,
  secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
  region: process.env.AWS_REGION ?? "us-east-1",
});
await backend.client.send(new CreateBucketCommand({ Bucket: backend.bucket })).catch(() => {}); // exists already: fine
await backend.initialize();
console.log("capabilities:", backend.capabilities);

const agent = createDeepAgent({
  model: fakeModel()
    .respondWithTools([{ name: "write_file", args: { file_path: "/notes.md", content: "stored in S3\n" } }])
    .respondWithTools([{ name: "grep", args: { pattern: "S3" } }])
    .respond(new AIMessage("done")),
  backend,
});
const result = await agent.invoke({ messages: [{ role: "user", content: "write a note" }] });
console.log(result.messages.map((m) => `${m.getType()}: ${typeof m.content === "string" ? m.content : ""}`).join("\n"));
await backend.close();
