/**
 * `deepagents-backends mcp`: the workspace as an MCP server (src/mcp/), on stdio for a client
 * that starts it (a desktop MCP client's config), or on Streamable HTTP with --http. stdout is
 * the protocol's channel on stdio: everything else this command says goes to stderr.
 */
import { randomBytes } from "node:crypto";
import type { Command } from "commander";
import { action, int } from "../action.js";
import { CliError, EXIT } from "../output.js";

/** Where --http takes its bearer token when --token is not given. */
export const MCP_TOKEN_ENV = "DEEPAGENTS_MCP_TOKEN";

export function addMcpCommand(program: Command): void {
  program
    .command("mcp")
    .description("serve the workspace to MCP clients: stdio (default), or Streamable HTTP with --http")
    .option("--http", "serve Streamable HTTP at http://<host>:<port>/mcp instead of stdio")
    .option(
      "--host <address>",
      "address to bind with --http (other than loopback: reachable from the network)",
      "127.0.0.1",
    )
    .option("--port <n>", "port with --http (0: any free one)", int("--port"), 7331)
    .option(
      "--token <token>",
      `bearer token clients must send with --http (default: $${MCP_TOKEN_ENV}, else a new random one, printed)`,
    )
    .option("--read-only", "offer only the tools that read (resources stay readable)")
    .action(
      action(async (ctx, opts: { http?: boolean; host: string; port: number; token?: string; readOnly?: boolean }) => {
        const mcp = await import("../../mcp/index.js").catch((e: Error) => {
          throw new CliError(
            `mcp needs @modelcontextprotocol/server and @modelcontextprotocol/node (npm install them): ${e.message}`,
            EXIT.failure,
          );
        });
        const backend = await ctx.files();
        const readOnly = opts.readOnly ?? false;
        const mode = readOnly ? " (read-only)" : "";
        if (!opts.http) {
          const running = await mcp.serveMcpStdio(backend, { readOnly });
          ctx.onClose(() => running.close());
          console.error(`deepagents-backends mcp: workspace ${backend.workspace} on stdio${mode} (${ctx.source})`);
          // The client ends the session by closing our stdin.
          await new Promise<void>((resolve) => {
            process.stdin.once("end", resolve);
            process.stdin.once("close", resolve);
          });
          return;
        }
        const given = opts.token ?? process.env[MCP_TOKEN_ENV];
        const token = given || randomBytes(24).toString("base64url");
        const running = await mcp.serveMcpHttp(backend, { readOnly, token, host: opts.host, port: opts.port });
        ctx.onClose(() => running.close());
        console.error(
          `deepagents-backends mcp: workspace ${backend.workspace} at ${running.url}${mode} (${ctx.source})`,
        );
        if (!given) console.error(`bearer token: ${token}`);
        await new Promise<never>(() => {}); // until Ctrl-C or SIGTERM (action() closes everything)
      }),
    );
}
