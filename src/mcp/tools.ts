/**
 * The tool specs (tool-spec.ts) on an MCP server: each answers its text as one text content, a
 * failure ("Error: ...") flagged `isError` so the client shows it as one. Annotations come from
 * the spec's effect; `readOnly` leaves out every tool that is not a read.
 */
import {
  fromJsonSchema,
  type JsonSchemaType,
  type McpServer,
  type ToolAnnotations,
} from "@modelcontextprotocol/server";
import type { AnyToolSpec } from "../tool-spec.js";

const annotations = (spec: AnyToolSpec): ToolAnnotations => ({
  readOnlyHint: spec.effect === "read",
  destructiveHint: spec.effect === "change",
  idempotentHint: spec.idempotent,
  // The workspace is a closed world: no tool reaches anything outside it.
  openWorldHint: false,
});

export function registerTools(server: McpServer, specs: AnyToolSpec[], readOnly: boolean): void {
  for (const spec of specs) {
    if (readOnly && spec.effect !== "read") continue;
    server.registerTool(
      spec.name,
      {
        description: spec.description,
        inputSchema: fromJsonSchema(spec.schema as JsonSchemaType),
        annotations: annotations(spec),
      },
      async (input: unknown) => {
        const text = await spec.run(input ?? {});
        return { content: [{ type: "text" as const, text }], isError: text.startsWith("Error:") };
      },
    );
  }
}
