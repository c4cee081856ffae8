/** move_file and copy_file as tool specs (tool-spec.ts): file-tools.ts and the MCP server adapt them. */
import type { DeepAgentsBackend } from "./core/interface.js";
import { answer, failure } from "./tool-answer.js";
import type { ToolSpec } from "./tool-spec.js";

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

export function fileToolSpecs(backend: Pick<DeepAgentsBackend, "move" | "copy">): ToolSpec<Input>[] {
  const relocate = (operation: "move" | "copy", verb: string) => (input: Input) =>
    answer(async () => {
      const r = await backend[operation](input.source_path, input.destination_path, {
        overwrite: input.overwrite ?? false,
      });
      if (r.error) return failure(r.error);
      return `${verb} ${input.source_path} to ${input.destination_path} (${r.files} file${r.files === 1 ? "" : "s"})`;
    });
  const schema = { type: "object" as const, properties: paths, required: ["source_path", "destination_path"] };
  return [
    {
      name: "move_file",
      description:
        "Move or rename a file or a whole directory to a new path. The destination is the new full path; a file already there is an error unless overwrite is true.",
      schema,
      effect: "change",
      idempotent: false,
      run: relocate("move", "Moved"),
    },
    {
      name: "copy_file",
      description:
        "Copy a file or a whole directory to a new path, leaving the original. The destination is the new full path; a file already there is an error unless overwrite is true.",
      schema,
      effect: "change",
      idempotent: true,
      run: relocate("copy", "Copied"),
    },
  ];
}
