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

/** A LangGraph state snapshot, as getStateHistory yields it. */
export type Snapshot = {
  values: unknown;
  next: string[];
  config: { configurable?: Record<string, unknown> };
  metadata?: unknown;
};
/** The graph checkpoint that ended the turn whose last model message is `text`. */
export async function endOfTurn(agent: unknown, thread: unknown, text: string) {
  // deepagents' agent type does not surface LangGraph's getStateHistory; the graph has it.
  const graph = agent as { getStateHistory(config: unknown): AsyncIterable<Snapshot> };
  for await (const snapshot of graph.getStateHistory(thread)) {
    const messages = (snapshot.values as { messages: BaseMessage[] }).messages;
    if (messages.at(-1)?.content === text && snapshot.next.length === 0) return snapshot.config;
  }
  throw new Error(`no checkpoint ends with ${JSON.stringify(text)}`);
}
