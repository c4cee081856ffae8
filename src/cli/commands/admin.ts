/**
 * The CLI's PostgreSQL administration commands: migrations, the change feed, workspaces and sizes,
 * and the demo behind `npm start`.
 */
import type { Command } from "commander";
import { listWorkspaces, migrationStatus, storageStats } from "../../postgres/admin.js";
import { splitCluster } from "../../postgres/cluster/split.js";
import { migrate } from "../../postgres/migrate.js";
import { action, int } from "../action.js";
import { connectionFailure } from "../context.js";
import { CliError, EXIT, formatBytes, printJson, table } from "../output.js";

export function addAdminCommands(program: Command): void {
  program
    .command("migrate")
    .description("apply (up), revert (down) or show (status) the schema migrations")
    .argument("[direction]", "up | down | status", "up")
    .option("--dry-run", "show what would run without changing anything")
    .option(
      "--partition <url>",
      "a sharded deployment: a partition's database, once per partition, in order (2^k of them); " +
        "the database given is then the PL/Proxy front (docs/CLUSTER.md)",
      (url: string, all: string[]) => [...all, url],
      [] as string[],
    )
    .option(
      "--split",
      "with --partition: double the partitions: the front's ones in order, then as many new empty ones; " +
        "half of each partition's workspaces move to its new twin (docs/CLUSTER.md)",
    )
    .action(
      action(async (ctx, direction: string, opts: { dryRun?: boolean; partition: string[]; split?: boolean }) => {
        if (!["up", "down", "status"].includes(direction))
          throw new CliError(`unknown direction '${direction}' (use up, down or status)`, EXIT.usage);
        const connectionString = await ctx.connectionString();
        const { schema, json } = ctx.options;
        if (direction === "status") {
          const { pool } = await ctx.postgres(undefined, { initialize: false });
          const status = await migrationStatus(pool, schema).catch((e) => {
            throw connectionFailure(e, ctx.source);
          });
          if (json) return printJson({ schema, ...status });
          console.log(`schema ${schema} (${ctx.source})`);
          for (const name of status.applied) console.log(`  applied  ${name}`);
          for (const name of status.pending) console.log(`  pending  ${name}`);
          return;
        }
        if (opts.split) {
          if (direction !== "up" || opts.partition.length === 0 || opts.dryRun)
            throw new CliError(
              "--split takes the partitions (--partition, in order) and no direction or --dry-run",
              EXIT.usage,
            );
          const report = await splitCluster({
            connectionString,
            schema,
            cluster: { partitions: opts.partition },
          }).catch((e) => {
            throw connectionFailure(e, ctx.source);
          });
          if (json) return printJson({ schema, split: report.moved });
          for (const m of report.moved)
            console.log(`partition ${m.from} -> ${m.to}: ${m.workspaces} workspaces moved (${m.rows} rows)`);
          return;
        }
        const applied = await migrate({
          connectionString,
          schema,
          direction: direction as "up" | "down",
          dryRun: opts.dryRun,
          cluster: opts.partition.length > 0 ? { partitions: opts.partition } : undefined,
        }).catch((e) => {
          throw connectionFailure(e, ctx.source);
        });
        if (json)
          return printJson({ schema, direction, dryRun: !!opts.dryRun, migrations: applied.map((m) => m.name) });
        const verb = opts.dryRun
          ? "would " + (direction === "up" ? "apply" : "revert")
          : direction === "up"
            ? "applied"
            : "reverted";
        console.log(
          applied.length ? applied.map((m) => `${verb} ${m.name}`).join("\n") : `schema ${schema} is up to date`,
        );
      }),
    );

  program
    .command("watch")
    .description("print changes as they are committed (Ctrl-C to stop)")
    .option("--since <id>", "start after this change id (default: from now on)", int("--since"))
    .option("--paths <glob>", "only paths matching this glob")
    .action(
      action(async (ctx, opts: { since?: number; paths?: string }) => {
        const backend = await ctx.postgres();
        const sub = await backend.watch({ since: opts.since, paths: opts.paths });
        ctx.onClose(() => sub.close());
        if (!ctx.options.json)
          console.error(
            `watching workspace ${backend.workspace} from change ${opts.since ?? sub.cursor} (${ctx.source}); Ctrl-C to stop`,
          );
        for await (const c of sub) {
          if (ctx.options.json) process.stdout.write(JSON.stringify(c) + "\n");
          else console.log(`${c.id}\t${c.at}\t${c.op.padEnd(6)}\t${c.path}\t(v${c.version}, ${formatBytes(c.size)})`);
        }
      }),
    );

  program
    .command("workspaces")
    .description("list workspaces with their file counts and sizes")
    .action(
      action(async (ctx) => {
        const backend = await ctx.postgres();
        const rows = await listWorkspaces(backend.pool, ctx.options.schema);
        if (ctx.options.json) return printJson(rows);
        console.log(
          table(
            ["workspace", "files", "size", "modified"],
            rows.map((r) => [r.workspace, r.files, formatBytes(r.bytes), r.modified_at ?? ""]),
          ),
        );
      }),
    );

  program
    .command("stats")
    .description("table and index sizes of the schema")
    .action(
      action(async (ctx) => {
        const backend = await ctx.postgres();
        const rows = await storageStats(backend.pool, ctx.options.schema);
        if (ctx.options.json) return printJson(rows);
        console.log(
          table(
            ["relation", "kind", "size", "rows (est.)"],
            rows.map((r) => [r.name, r.kind, formatBytes(r.bytes), r.estimated_rows ?? ""]),
          ),
        );
      }),
    );

  program
    .command("demo")
    .description("the guided tour behind `npm start`: import, run a deep agent, watch, grep")
    .option("--dir <dir>", "directory to import", ".")
    .action(
      action(async (ctx, opts: { dir: string }) => {
        const { runDemo } = await import("../demo.js");
        await runDemo(ctx, opts.dir);
      }),
    );
}
