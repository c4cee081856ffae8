/**
 * `npm start`: a deep agent whose files live in PostgreSQL, with zero setup.
 *
 * Uses DATABASE_URL when set; otherwise starts an embedded PostgreSQL persisted under
 * ./.deepagents/pg (reused on the next run). Migrates, then lets a deep agent (a scripted
 * fakeModel, so no API key is needed) write, edit, list, glob and grep files through
 * PostgresBackend, and finally runs a server-side grep directly.
 */
import { createDeepAgent } from "deepagents";
import { fakeModel } from "@langchain/core/testing";
import { AIMessage, ToolMessage } from "@langchain/core/messages";
import { PostgresBackend } from "../src/index.js";
import { startEmbeddedPostgres, type EmbeddedServer } from "../src/postgres/embedded.js";

let server: EmbeddedServer | undefined;
let connectionString = process.env.DATABASE_URL;
if (!connectionString) {
  console.log("Starting embedded PostgreSQL in ./.deepagents/pg ...");
  server = await startEmbeddedPostgres({ dataDir: ".deepagents/pg" });
  connectionString = server.connectionString;
}
const stop = async () => {
  await backend.close();
  await server?.stop();
};
process.once("SIGINT", () => void stop().then(() => process.exit(130)));

const backend = new PostgresBackend({ connectionString, workspace: "quickstart" });
try {
  await backend.initialize(); // applies pending migrations into schema "deepagents"
  await backend.delete("/"); // start the demo workspace empty

  const model = fakeModel()
    .respondWithTools([
      { name: "write_file", args: { file_path: "/notes/plan.md", content: "# Plan\n- store files in Postgres\n- grep them server-side\n" } },
      { name: "write_file", args: { file_path: "/src/answer.ts", content: "export const answer = 41;\n" } },
    ])
    .respondWithTools([{ name: "edit_file", args: { file_path: "/src/answer.ts", old_string: "41", new_string: "42" } }])
    .respondWithTools([
      { name: "ls", args: { path: "/" } },
      { name: "glob", args: { pattern: "**/*.ts" } },
      { name: "grep", args: { pattern: "Postgres" } },
      { name: "read_file", args: { file_path: "/src/answer.ts" } },
    ])
    .respond(new AIMessage("Done: the plan is written and the answer is 42."));

  const agent = createDeepAgent({ model, backend });
  const result = await agent.invoke({ messages: [{ role: "user", content: "Set up the project notes." }] });
  for (const message of result.messages) {
    if (!ToolMessage.isInstance(message)) continue;
    const text = typeof message.content === "string"
      ? message.content
      : message.content.map((block) => ("text" in block ? block.text : `<${block.type}>`)).join("");
    console.log(`\n[${message.name}]\n${text}`);
  }
  console.log(`\n[agent] ${result.messages.at(-1)?.content}`);

  const started = performance.now();
  const grep = await backend.grep("answer");
  console.log(`\nServer-side grep "answer": ${grep.matches?.length} match(es) in ${(performance.now() - started).toFixed(1)} ms`);
  for (const m of grep.matches ?? []) console.log(`  ${m.path}:${m.line}: ${m.text}`);
  const stat = await backend.stat("/src/answer.ts");
  console.log(`\n/src/answer.ts is at version ${stat.data?.version} (${stat.data?.size} bytes)`);
} finally {
  await stop();
}
