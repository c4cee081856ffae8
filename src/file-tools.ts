/**
 * move_file and copy_file: the workspace operations deepagents' protocol has no tool for, as tools
 * an application hands to its agent (`createDeepAgent({ tools: fileTools(backend) })`), with
 * deepagents' conventions: absolute paths (`file_path`-style snake_case arguments), a one-line
 * answer, a failure as a line starting with "Error:" (tool-answer.ts).
 */
import { type StructuredToolInterface, tool } from "@langchain/core/tools";
import type { DeepAgentsBackend } from "./core/interface.js";
import { answer, failure } from "./tool-answer.js";

const paths = {
  source_path: { type: "string", description: "Absolute path of the file or directory to take" },
  destination_path: {
    type: "string",
    description: "Its new absolute path (the full name, not a directory to put it in)",
  },
  overwrite: {
    type: "boolean",
    description: "Replace files already at the paths written (default false: an existing file is an error)",
  },
} as const;

type Input = { source_path: string; destination_path: string; overwrite?: boolean };

/** move_file and copy_file over `backend`'s workspace. */
export function fileTools(backend: Pick<DeepAgentsBackend, "move" | "copy">): StructuredToolInterface[] {
  const relocate = (operation: "move" | "copy", verb: string) => (input: Input) =>
    answer(async () => {
      const r = await backend[operation](input.source_path, input.destination_path, {
        overwrite: input.overwrite ?? false,
      });
      if (r.error) return failure(r.error);
      return `${verb} ${input.source_path} to ${input.destination_path} (${r.files} file${r.files === 1 ? "" : "s"})`;
    });
  return [
    tool(relocate("move", "Moved"), {
      name: "move_file",
      description:
        "Move or rename a file or a whole directory to a new path. The destination is the new full path; a file already there is an error unless overwrite is true.",
      schema: { type: "object", properties: paths, required: ["source_path", "destination_path"] },
    }),
    tool(relocate("copy", "Copied"), {
      name: "copy_file",
      description:
        "Copy a file or a whole directory to a new path, leaving the original. The destination is the new full path; a file already there is an error unless overwrite is true.",
      schema: { type: "object", properties: paths, required: ["source_path", "destination_path"] },
    }),
  ];
}
