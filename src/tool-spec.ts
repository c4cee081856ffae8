/**
 * One agent tool, apart from the framework that hands it to a model: its name, words and JSON
 * Schema, what it does to the workspace, and its body (text in, text out: a failure is one line
 * starting with "Error:", tool-answer.ts). LangChain's tool() (langchain-tool.ts, for
 * createDeepAgent) and the MCP server (mcp/) each adapt the same specs, so an agent and an MCP
 * client see the same tools answer the same way.
 */

/** What a call does to the workspace (MCP's annotations are derived from it). */
export type ToolEffect =
  /** Reads only. */
  | "read"
  /** Adds (a checkpoint, a directory) and never replaces or removes anything. */
  | "add"
  /** May replace or remove what is there (write, edit, move, delete, rewind, ...). */
  | "change";

export interface ToolSpec<Input = Record<string, unknown>> {
  name: string;
  description: string;
  /** The arguments, as a JSON Schema object. */
  schema: { type: "object"; properties: Record<string, unknown>; required?: string[] };
  effect: ToolEffect;
  /** Calling it twice with the same arguments leaves what calling it once leaves. */
  idempotent: boolean;
  run(input: Input): Promise<string>;
}

/** A spec list of tools with different inputs (each one's run() checks its own). */
// biome-ignore lint/suspicious/noExplicitAny: a heterogeneous list; each spec types its own input
export type AnyToolSpec = ToolSpec<any>;
