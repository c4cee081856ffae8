/**
 * The guided tour behind `npm start`: migrate, import a directory (this repository by default)
 * with a progress bar, watch the change feed live while a deep agent lists, reads, greps and
 * edits files through PostgresBackend, then time a server-side grep and point at the CLI.
 *
 * The agent's model is a scripted fakeModel unless DEEPAGENTS_MODEL names a real one
 * ("anthropic:claude-sonnet-4-5", "openai:gpt-4.1", ...): then its LangChain provider package
 * (@langchain/anthropic, @langchain/openai, ...) and API key (ANTHROPIC_API_KEY, OPENAI_API_KEY)
 * must be installed and set.
 */
import { migrate } from "../postgres/migrate.js";
import type { Context } from "./context.js";
import { formatBytes } from "./output.js";
import { importDir } from "./transfer.js";

const WORKSPACE = "demo";

export async function runDemo(ctx: Context, dir: string): Promise<void> {
  const started = Date.now();
  const say = (text: string) => console.log(`\n== ${text}`);

  say(`PostgreSQL: ${ctx.source}`);
  const applied = await migrate({ connectionString: await ctx.connectionString(), schema: ctx.options.schema });
  console.log(
    applied.length
      ? `applied migrations: ${applied.map((m) => m.name).join(", ")}`
      : `schema "${ctx.options.schema}" is up to date`,
  );
  const backend = await ctx.postgres(WORKSPACE);
  await backend.delete("/"); // a fresh tour every time; other workspaces are untouched

  say(`importing ${dir} into workspace "${WORKSPACE}"`);
  const report = await importDir(backend, dir);
  console.log(`${report.files} files, ${formatBytes(report.bytes)} in ${report.seconds.toFixed(1)} s`);

  say("change feed (live, while the agent works)");
  const feed = await backend.watch({
    onChange: (c) => console.log(`  [change ${c.id}] ${c.op} ${c.path} v${c.version}`),
  });
  ctx.onClose(() => feed.close());

  say("a deep agent at work");
  const { createDeepAgent } = await import("deepagents");
  const { AIMessage, ToolMessage } = await import("@langchain/core/messages");
  let model: unknown = process.env.DEEPAGENTS_MODEL;
  if (!model) {
    const { fakeModel } = await import("@langchain/core/testing");
    model = fakeModel()
      .respondWithTools([
        { name: "ls", args: { path: "/" } },
        { name: "glob", args: { pattern: "**/*.sql", path: "/migrations" } },
      ])
      .respondWithTools([
        { name: "grep", args: { pattern: "pg_notify", glob: "*.sql" } },
        { name: "read_file", args: { file_path: "/README.md", limit: 5 } },
      ])
      .respondWithTools([
        {
          name: "write_file",
          args: { file_path: "/notes/tour.md", content: "# Tour\n- files live in PostgreSQL\n- grep runs in SQL\n" },
        },
      ])
      .respondWithTools([
        {
          name: "edit_file",
          args: { file_path: "/notes/tour.md", old_string: "in SQL", new_string: "in SQL, over a trigram index" },
        },
      ])
      .respond(
        new AIMessage("I listed, globbed, grepped and read the repository, then wrote and edited /notes/tour.md."),
      );
  } else {
    console.log(`model: ${model}`);
  }
  const agent = createDeepAgent({ model: model as never, backend });
  // Stream the run so tool results print as they happen, interleaved with the change feed.
  const stream = await agent.stream(
    {
      messages: [
        {
          role: "user",
          content:
            "Look around this repository, find where change notifications are sent, and leave a short note in /notes/tour.md.",
        },
      ],
    },
    { streamMode: "updates" },
  );
  let last = "";
  for await (const update of stream) {
    for (const node of Object.values(update as Record<string, { messages?: unknown[] } | undefined>)) {
      for (const m of node?.messages ?? []) {
        if (ToolMessage.isInstance(m)) {
          const text =
            typeof m.content === "string" ? m.content : m.content.map((b) => ("text" in b ? b.text : "")).join("");
          const lines = text.split("\n");
          console.log(
            `  [${m.name}] ${lines.slice(0, 6).join("\n    ")}${lines.length > 6 ? `\n    ... (${lines.length - 6} more lines)` : ""}`,
          );
        } else if (AIMessage.isInstance(m) && typeof m.content === "string" && m.content && !m.tool_calls?.length) {
          last = m.content;
        }
      }
    }
  }
  console.log(`  [agent] ${last}`);
  await new Promise((r) => setTimeout(r, 200)); // let the last changes arrive on the feed

  say("server-side grep");
  for (const pattern of ["pg_advisory_xact_lock", "createDeepAgent"]) {
    const t = performance.now();
    const grep = await backend.grep(pattern);
    console.log(
      `grep "${pattern}": ${grep.matches?.length ?? 0} matching lines in ${(performance.now() - t).toFixed(1)} ms`,
    );
  }

  say("next");
  const cli = "npx deepagents-backends";
  console.log(
    [
      `${cli} ls / -w ${WORKSPACE}`,
      `${cli} grep createDeepAgent -w ${WORKSPACE} --max-count 5`,
      `${cli} watch -w ${WORKSPACE}        # in another terminal, then edit something`,
      `${cli} workspaces && ${cli} stats`,
    ].join("\n"),
  );
  console.log(
    `\n(done in ${((Date.now() - started) / 1000).toFixed(1)} s; data kept in ${ctx.options.dataDir} unless DATABASE_URL is set)`,
  );
}
