/**
 * The CLI's history commands: history, restore, checkpoint(s), diff, rewind and fork, on PostgreSQL or
 * on S3 with bucket versioning (both implement VersionedWorkspace).
 */
import type { Command } from "commander";
import type { Checkpoint, PathChange, RewindChange, VersionedWorkspace } from "../../core/history.js";
import type { Context } from "../context.js";
import { action, positiveInt } from "../action.js";
import { historyErrors } from "../../protocol.js";
import { CliError, formatBytes, orFail, printJson, table } from "../output.js";

/** The workspace's history: PostgreSQL, or S3 with --s3-bucket (whose calls say when versioning is off). */
async function versioned(ctx: Context): Promise<VersionedWorkspace> {
  return ctx.options.s3Bucket ? ctx.s3() : ctx.postgres();
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

const side = (s: { version: number; size: number } | null) => (s ? `v${s.version} ${formatBytes(s.size)}` : "-");

const changeRows = (changes: Array<PathChange | RewindChange>) =>
  table(
    ["change", "path", "before", "after"],
    changes.map((c) => [c.op, c.path, side(c.before), side(c.after)]),
  );

const checkpointRow = (c: Checkpoint) => [c.id, c.createdAt, c.changeId ?? "", c.label ?? "", c.tag ?? ""];

export function addHistoryCommands(program: Command): void {
  program
    .command("history")
    .description("the kept versions of a file, oldest first (deleted files too)")
    .argument("<path>", "file")
    .action(
      action(async (ctx, path: string) => {
        const { versions } = orFail(await (await versioned(ctx)).history(path));
        if (ctx.options.json) return printJson(versions);
        console.log(
          table(
            ["version", "op", "size", "at", "change", "tag", "moved"],
            versions!.map((v) => [
              v.version,
              v.op,
              v.size,
              v.at,
              v.changeId ?? "",
              v.tag ?? "",
              v.movedFrom ? `from ${v.movedFrom}` : v.movedTo ? `to ${v.movedTo}` : "",
            ]),
          ),
        );
      }),
    );

  program
    .command("restore")
    .description("write an earlier version of a file back as its newest (undeletes a deleted file)")
    .argument("<path>", "file")
    .argument("<version>", "a version from `history`", positiveInt("<version>"))
    .action(
      action(async (ctx, path: string, version: number) => {
        const result = orFail(await (await versioned(ctx)).restore(path, version));
        if (ctx.options.json) return printJson({ path, restored: version, version: result.version });
        console.log(
          `restored ${path} to v${version}${typeof result.version === "number" ? ` as v${result.version}` : ""}`,
        );
      }),
    );

  program
    .command("checkpoint")
    .description("mark the workspace's current state (to diff with or rewind to later)")
    .option("--label <text>", "what this point is")
    .option("--tag <text>", "who or what took it")
    .action(
      action(async (ctx, opts: { label?: string; tag?: string }) => {
        const checkpoint = await (await versioned(ctx)).checkpoint(opts);
        if (ctx.options.json) return printJson(checkpoint);
        console.log(`checkpoint ${checkpoint.id}${checkpoint.label ? ` (${checkpoint.label})` : ""}`);
      }),
    );

  program
    .command("checkpoints")
    .description("list the workspace's checkpoints, oldest first (or delete one)")
    .option("--delete <id>", "delete this checkpoint (what it kept may then be pruned)", positiveInt("--delete"))
    .action(
      action(async (ctx, opts: { delete?: number }) => {
        const history = await versioned(ctx);
        if (opts.delete !== undefined) {
          const deleted = await history.deleteCheckpoint(opts.delete);
          if (ctx.options.json) return printJson({ id: opts.delete, deleted });
          if (!deleted) throw new CliError(historyErrors.noCheckpoint(opts.delete, ctx.options.workspace));
          return console.log(`deleted checkpoint ${opts.delete}`);
        }
        const list = await history.checkpoints();
        if (ctx.options.json) return printJson(list);
        console.log(table(["id", "taken at", "change", "label", "tag"], list.map(checkpointRow)));
      }),
    );

  program
    .command("diff")
    .description("what changed from a checkpoint to another one (or to now)")
    .argument("<from>", "checkpoint id", positiveInt("<from>"))
    .argument("[to]", "checkpoint id (default: now)", positiveInt("[to]"))
    .option("--path <path>", "only this file or directory (repeatable)", collect)
    .option("--patch", "print unified diffs of text files")
    .action(
      action(async (ctx, from: number, to: number | undefined, opts: { path?: string[]; patch?: boolean }) => {
        const changes = await (await versioned(ctx)).diff(from, to ?? null, { paths: opts.path, unified: opts.patch });
        if (ctx.options.json) return printJson(changes);
        if (!opts.patch) return changes.length ? console.log(changeRows(changes)) : undefined;
        for (const c of changes) process.stdout.write(c.patch ?? `${c.op} ${c.path}${c.binary ? " (binary)" : ""}\n`);
      }),
    );

  program
    .command("rewind")
    .description("put the workspace (or some paths) back as at a checkpoint (one transaction on PostgreSQL); undoable")
    .argument("<checkpoint>", "checkpoint id", positiveInt("<checkpoint>"))
    .option("--path <path>", "only this file or directory (repeatable)", collect)
    .option("--dry-run", "say what would change without changing anything")
    .action(
      action(async (ctx, checkpoint: number, opts: { path?: string[]; dryRun?: boolean }) => {
        const result = await (await versioned(ctx)).rewind(checkpoint, { paths: opts.path, dryRun: opts.dryRun });
        if (ctx.options.json) return printJson(result);
        if (result.changes.length === 0)
          return console.log(`nothing to rewind: the files match checkpoint ${checkpoint}`);
        console.log(changeRows(result.changes));
        if (result.dryRun) console.log(`(dry run: nothing changed)`);
        else console.log(`undo with: rewind ${result.undo}`);
      }),
    );

  program
    .command("fork")
    .description("a new workspace with this one's files (now, or as at a checkpoint); they share storage on PostgreSQL")
    .argument("<workspace>", "the new workspace (it must have no files)")
    .option("--at <checkpoint>", "fork the files as they were at this checkpoint", positiveInt("--at"))
    .option("--history", "take each file's history along (its versions; not the checkpoints)")
    .action(
      action(async (ctx, workspace: string, opts: { at?: number; history?: boolean }) => {
        const result = await (await versioned(ctx)).fork(workspace, { at: opts.at, history: opts.history === true });
        if (ctx.options.json) return printJson(result);
        const from = result.at === null ? "" : ` as at checkpoint ${result.at}`;
        const versions = opts.history ? ` with ${result.versions} versions of history` : "";
        console.log(
          `forked ${result.files} files (${formatBytes(result.bytes)})${from}${versions} into workspace ${result.workspace}`,
        );
      }),
    );
}
