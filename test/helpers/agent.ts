/** Running deepagents' createDeepAgent with a scripted fakeModel, and reading its tool messages. */
import { createDeepAgent } from "deepagents";
import type { fakeModel } from "@langchain/core/testing";
import { ToolMessage, type BaseMessage } from "@langchain/core/messages";

/** Tool results by tool_call_id, as text. */
export function toolText(messages: BaseMessage[]): Record<string, string> {
  return Object.fromEntries(
    messages
      .filter((m): m is ToolMessage => ToolMessage.isInstance(m))
      .map((m) => [m.tool_call_id, typeof m.content === "string" ? m.content : JSON.stringify(m.content)]),
  );
}

/** One agent run over `backend` (an instance or a factory); returns the tool results. */
export async function runAgent(model: ReturnType<typeof fakeModel>, backend: unknown): Promise<Record<string, string>> {
  const agent = createDeepAgent({ model, backend: backend as never });
  const result = await agent.invoke(
    { messages: [{ role: "user", content: "work on the files" }] },
    { recursionLimit: 50 },
  );
  return toolText(result.messages as BaseMessage[]);
}
