/**
 * The history tools as specs (tool-spec.ts): checkpoint, list_checkpoints, rewind, diff,
 * file_history and restore_file over any backend implementing VersionedWorkspace.
 * history-tools.ts hands them to LangChain, the MCP server to its clients.
 */
import type { Checkpoint, PathChange, RewindResult, VersionedWorkspace } from "./core/history.js";
import { answer, failure } from "./tool-answer.js";
import type { AnyToolSpec, ToolEffect } from "./tool-spec.js";

const side = (s: { version: number; size: number } | null): string =>
  s ? `v${s.version}, ${s.size} bytes` : "no file";

const checkpointLine = (c: Checkpoint): string =>
  `${c.id}  ${c.createdAt}${c.label ? `  ${c.label}` : ""}${c.tag ? `  [${c.tag}]` : ""}`;

const changeLines = (changes: PathChange[]): string =>
  changes
    .map((c) => {
      const head = `${c.op} ${c.path} (${side(c.before)} -> ${side(c.after)})${c.binary ? " binary" : ""}`;
      return c.patch ? `${head}\n${c.patch}` : head;
    })
    .join("\n");

const rewindLines = (r: RewindResult): string => {
  if (r.changes.length === 0) return "Nothing to rewind: the files already match the checkpoint.";
  const lines = r.changes.map((c) => `${c.op} ${c.path} (${side(c.before)} -> ${side(c.after)})`);
  const head = r.dryRun ? "A rewind would change:" : "Rewound:";
  const undo = r.undo === null ? "" : `\nUndo it with rewind to checkpoint ${r.undo}.`;
  return `${head}\n${lines.join("\n")}${undo}`;
};

const pathsSchema = {
  type: "array",
  items: { type: "string" },
  description: "Only these files or directories (a directory stands for everything below it)",
} as const;

const filePath = { type: "string", description: "Absolute path of the file" } as const;

/** A spec from the tool() form this file was first written in: body, then name, words, schema. */
const spec = (
  run: AnyToolSpec["run"],
  meta: { name: string; description: string; schema: AnyToolSpec["schema"] },
  effect: ToolEffect,
  idempotent: boolean,
): AnyToolSpec => ({ ...meta, run, effect, idempotent });

/** The history tools as specs (tool-spec.ts), for historyTools() and the MCP server. */
export function historyToolSpecs(backend: VersionedWorkspace): AnyToolSpec[] {
  return [
    spec(
      (input: { label?: string }) =>
        answer(async () => {
          const c = await backend.checkpoint({ label: input.label });
          return `Checkpoint ${c.id} taken${c.label ? ` (${c.label})` : ""}. Rewind to it to undo what follows.`;
        }),
      {
        name: "checkpoint",
        description:
          "Mark the current state of all files, to compare with (diff) or go back to (rewind) later. Cheap: take one before risky changes.",
        schema: {
          type: "object",
          properties: { label: { type: "string", description: "A short note saying what this point is" } },
        },
      },
      "add",
      false,
    ),
    spec(
      () =>
        answer(async () => {
          const list = await backend.checkpoints();
          return list.length ? `id  taken at  label\n${list.map(checkpointLine).join("\n")}` : "No checkpoints yet.";
        }),
      {
        name: "list_checkpoints",
        description: "List the checkpoints of the workspace, oldest first.",
        schema: { type: "object", properties: {} },
      },
      "read",
      true,
    ),
    spec(
      (input: { checkpoint_id: number; paths?: string[]; dry_run?: boolean }) =>
        answer(async () =>
          rewindLines(await backend.rewind(input.checkpoint_id, { paths: input.paths, dryRun: input.dry_run })),
        ),
      {
        name: "rewind",
        description:
          "Put the files (or only some paths) back as they were at a checkpoint. Undoable: it answers a checkpoint to rewind to. Use dry_run to see what would change first.",
        schema: {
          type: "object",
          properties: {
            checkpoint_id: { type: "integer", description: "A checkpoint id (from checkpoint or list_checkpoints)" },
            paths: pathsSchema,
            dry_run: { type: "boolean", description: "Only say what would change" },
          },
          required: ["checkpoint_id"],
        },
      },
      "change",
      false,
    ),
    spec(
      (input: { from_checkpoint: number; to_checkpoint?: number; paths?: string[] }) =>
        answer(async () => {
          const changes = await backend.diff(input.from_checkpoint, input.to_checkpoint ?? null, {
            paths: input.paths,
            unified: true,
          });
          return changes.length ? changeLines(changes) : "No changes.";
        }),
      {
        name: "diff",
        description:
          "What changed between a checkpoint and now (or a later checkpoint): each changed file with a unified diff of its text.",
        schema: {
          type: "object",
          properties: {
            from_checkpoint: { type: "integer", description: "The earlier checkpoint id" },
            to_checkpoint: { type: "integer", description: "The later checkpoint id (default: now)" },
            paths: pathsSchema,
          },
          required: ["from_checkpoint"],
        },
      },
      "read",
      true,
    ),
    spec(
      (input: { file_path: string }) =>
        answer(async () => {
          const result = await backend.history(input.file_path);
          if (result.error !== undefined) return failure(result.error);
          const lines = result.versions.map(
            (v) =>
              `v${v.version}  ${v.op}  ${v.size} bytes  ${v.at}${v.tag ? `  [${v.tag}]` : ""}` +
              `${v.movedFrom ? `  (moved from ${v.movedFrom})` : ""}${v.movedTo ? `  (moved to ${v.movedTo})` : ""}`,
          );
          return `Versions of ${input.file_path}, oldest first:\n${lines.join("\n")}`;
        }),
      {
        name: "file_history",
        description:
          "List the kept versions of a file (deleted files too), oldest first. read_file shows the newest; restore_file brings back an older one.",
        schema: {
          type: "object",
          properties: { file_path: filePath },
          required: ["file_path"],
        },
      },
      "read",
      true,
    ),
    spec(
      (input: { file_path: string; version: number }) =>
        answer(async () => {
          const result = await backend.restore(input.file_path, input.version);
          if (result.error) return failure(result.error);
          const as = typeof result.version === "number" ? `, as v${result.version}` : "";
          return `Restored ${input.file_path} to the content of v${input.version}${as}.`;
        }),
      {
        name: "restore_file",
        description:
          "Write an earlier version of a file back as its newest version (undeletes a deleted file). History keeps the version it replaces.",
        schema: {
          type: "object",
          properties: {
            file_path: filePath,
            version: { type: "integer", description: "A version number from file_history" },
          },
          required: ["file_path", "version"],
        },
      },
      "change",
      false,
    ),
  ];
}
