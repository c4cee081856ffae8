/**
 * Mounting PostgresBackend as a route of deepagents' CompositeBackend: long-term memories in
 * PostgreSQL under /memories/, everything else in the thread's state (StateBackend).
 *
 *   DATABASE_URL=postgres://... node --import tsx examples/composite.ts
 */
import { CompositeBackend, StateBackend, createDeepAgent } from "deepagents";
import { fakeModel } from "@langchain/core/testing";
import { AIMessage } from "@langchain/core/messages";
import { PostgresBackend } from "../src/index.js";

const connectionString = process.env.DATABASE_URL;
if (!connectionString) throw new Error("Set DATABASE_URL (npm start shows the embedded default)");

const memories = new PostgresBackend({ connectionString, workspace: "memories-demo" });
await memories.initialize();

const agent = createDeepAgent({
  model: fakeModel()
    .respondWithTools([{ name: "write_file", args: { file_path: "/memories/user.md", content: "prefers tea\n" } }])
    .respondWithTools([{ name: "grep", args: { pattern: "tea" } }])
    .respond(new AIMessage("noted")),
  // A factory: StateBackend needs the run's state; the PostgresBackend instance is shared.
  backend: (runtime) => new CompositeBackend(new StateBackend(runtime), { "/memories/": memories }),
});
const result = await agent.invoke({ messages: [{ role: "user", content: "remember I like tea" }] });
console.log(result.messages.map((m) => `${m.getType()}: ${typeof m.content === "string" ? m.content : ""}`).join("\n"));
console.log(await memories.read("/user.md"));
await memories.close();
