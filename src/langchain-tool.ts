/** A ToolSpec (tool-spec.ts) as a LangChain tool, for `createDeepAgent({ tools })`. */
import { type StructuredToolInterface, tool } from "@langchain/core/tools";
import type { AnyToolSpec } from "./tool-spec.js";

export function langchainTool(spec: AnyToolSpec): StructuredToolInterface {
  return tool((input: unknown) => spec.run(input), {
    name: spec.name,
    description: spec.description,
    schema: spec.schema,
  });
}
