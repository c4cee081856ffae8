/**
 * move_file and copy_file: the workspace operations deepagents' protocol has no tool for, as tools
 * an application hands to its agent (`createDeepAgent({ tools: fileTools(backend) })`), with
 * deepagents' conventions: absolute paths (`file_path`-style snake_case arguments), a one-line
 * answer, a failure as a line starting with "Error:" (tool-answer.ts). The specs also serve the
 * MCP server (mcp/).
 */
import type { StructuredToolInterface } from "@langchain/core/tools";
import type { DeepAgentsBackend } from "./core/interface.js";
import { langchainTool } from "./langchain-tool.js";
import { fileToolSpecs } from "./file-tool-specs.js";

export { fileToolSpecs };

/** move_file and copy_file over `backend`'s workspace. */
export function fileTools(backend: Pick<DeepAgentsBackend, "move" | "copy">): StructuredToolInterface[] {
  return fileToolSpecs(backend).map(langchainTool);
}
