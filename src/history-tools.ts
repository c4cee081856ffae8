/**
 * File history as tools an application hands to its agent (`createDeepAgent({ tools })`):
 * checkpoint, list_checkpoints, rewind, diff, file_history and restore_file, over any backend
 * implementing VersionedWorkspace. Like deepagents' own file tools, each answers text and reports
 * a failure as one line starting with "Error:" rather than throwing, so the model can react.
 * Its own entry, deepagents-backends/tools (with fileTools: move_file, copy_file): it loads
 * @langchain/core, which the backends do not.
 */
import type { StructuredToolInterface } from "@langchain/core/tools";
import type { VersionedWorkspace } from "./core/history.js";
import { historyToolSpecs } from "./history-tool-specs.js";
import { langchainTool } from "./langchain-tool.js";

export { HISTORY_TOOL_OUTPUT_MAX } from "./tool-answer.js";
export { fileTools } from "./file-tools.js";

/** The history tools over `backend`'s workspace. */
export function historyTools(backend: VersionedWorkspace): StructuredToolInterface[] {
  return historyToolSpecs(backend).map(langchainTool);
}
