/**
 * An MCP server over one workspace (@modelcontextprotocol/server, v2: it speaks both protocol
 * eras, the 2025 `initialize` one desktop clients use and 2026-07-28's). Tools: the workspace's
 * file operations, move/copy, and the history tools where the backend keeps history. Resources:
 * its files (resources.ts), with subscriptions driven by the change feed where the backend has
 * one (PostgreSQL): a change made by any process reaches every subscribed client.
 *
 * stdio: one connection, one instance from the factory; 2025-era subscriptions are tracked per
 * connection (resources/subscribe), 2026-era ones ride the connection's listen stream.
 * Streamable HTTP: bound to 127.0.0.1 unless told otherwise, every request must carry the bearer
 * token, Host and Origin are checked on loopback (DNS rebinding). Each request gets an instance
 * of its own, so only 2026-era clients (subscriptions/listen) receive updates over HTTP.
 */
import { timingSafeEqual } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { localhostHostValidation, localhostOriginValidation, toNodeHandler } from "@modelcontextprotocol/node";
import { createMcpHandler, McpServer } from "@modelcontextprotocol/server";
import { serveStdio } from "@modelcontextprotocol/server/stdio";
import type { Change } from "../core/changes.js";
import type { VersionedWorkspace } from "../core/history.js";
import type { DeepAgentsBackend } from "../core/interface.js";
import { fileToolSpecs } from "../file-tool-specs.js";
import { historyToolSpecs } from "../history-tool-specs.js";
import type { AnyToolSpec } from "../tool-spec.js";
import { workspaceToolSpecs } from "../workspace-tool-specs.js";
import { registerFileResources, uriOf } from "./resources.js";
import { registerTools } from "./tools.js";

export interface McpServeOptions {
  /** Only the tools that read (ls, read_file, glob, grep, search, diff, ...); resources stay. */
  readOnly?: boolean;
}

export interface McpHttpOptions extends McpServeOptions {
  /** Clients must send `Authorization: Bearer <token>`. */
  token: string;
  /** Default 127.0.0.1. Another address is reachable from the network: only the token guards it. */
  host?: string;
  /** Default 0: a free port (the answer says which). */
  port?: number;
}

export interface RunningMcpServer {
  /** The endpoint (HTTP only). */
  url?: string;
  close(): Promise<void>;
}

const SERVER_INFO = { name: "deepagents-backends", version: "0.1.0" };
/** The HTTP endpoint's path. */
export const MCP_PATH = "/mcp";

const isVersioned = (b: DeepAgentsBackend): b is DeepAgentsBackend & VersionedWorkspace =>
  typeof (b as Partial<VersionedWorkspace>).checkpoint === "function";

function toolSpecs(backend: DeepAgentsBackend): AnyToolSpec[] {
  return [
    ...workspaceToolSpecs(backend),
    ...fileToolSpecs(backend),
    ...(isVersioned(backend) ? historyToolSpecs(backend) : []),
  ];
}

function buildServer(backend: DeepAgentsBackend, options: McpServeOptions, subscribe: boolean): McpServer {
  const server = new McpServer(SERVER_INFO, { capabilities: { resources: { subscribe, listChanged: true } } });
  registerTools(server, toolSpecs(backend), options.readOnly ?? false);
  registerFileResources(server, backend);
  return server;
}

/** Calls `onChange` for each change committed to the workspace from now on (no-op without a feed). */
async function relayChanges(
  backend: DeepAgentsBackend,
  onChange: (change: Change) => void,
): Promise<() => Promise<void>> {
  if (!backend.features.watch || !backend.watch) return async () => {};
  const subscription = await backend.watch({
    onChange,
    onError: (e) => console.error(`deepagents-backends mcp: change feed: ${e.message}`),
  });
  return () => subscription.close();
}

export async function serveMcpStdio(
  backend: DeepAgentsBackend,
  options: McpServeOptions = {},
): Promise<RunningMcpServer> {
  const subscribable = backend.features.watch;
  const connections = new Set<{ server: McpServer; modern: boolean; subscribed: Set<string> }>();
  const stop = await relayChanges(backend, (change) => {
    const uri = uriOf(change.path);
    for (const c of connections) {
      // 2025-era: only to a connection that subscribed to the URI (unsolicited updates are wrong
      // there); 2026-era: the entry filters by the listen stream's own subscriptions.
      if (c.modern || c.subscribed.has(uri)) c.server.server.sendResourceUpdated({ uri }).catch(() => {});
      if (change.op !== "update") c.server.sendResourceListChanged();
    }
  });
  const handle = serveStdio((context) => {
    const server = buildServer(backend, options, subscribable);
    const connection = { server, modern: context.era === "modern", subscribed: new Set<string>() };
    if (subscribable) {
      server.server.setRequestHandler("resources/subscribe", (request) => {
        connection.subscribed.add(request.params.uri);
        return {};
      });
      server.server.setRequestHandler("resources/unsubscribe", (request) => {
        connection.subscribed.delete(request.params.uri);
        return {};
      });
    }
    connections.add(connection);
    return server;
  });
  return {
    async close() {
      await handle.close();
      await stop();
    },
  };
}

/** Whether the Authorization header carries the token (compared in constant time). */
function authorized(header: string | undefined, token: string): boolean {
  const given = Buffer.from(/^Bearer (.+)$/i.exec(header ?? "")?.[1] ?? "");
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

export async function serveMcpHttp(backend: DeepAgentsBackend, options: McpHttpOptions): Promise<RunningMcpServer> {
  if (!options.token) throw new Error("mcp over HTTP needs a bearer token");
  const host = options.host ?? "127.0.0.1";
  const subscribable = backend.features.watch;
  const handler = createMcpHandler((context) =>
    // A 2025-era request is served by a fresh instance and forgotten: it cannot keep a subscription.
    buildServer(backend, options, subscribable && context.era === "modern"),
  );
  const stop = await relayChanges(backend, (change) => {
    handler.notify.resourceUpdated(uriOf(change.path));
    if (change.op !== "update") handler.notify.resourcesChanged();
  });
  const serve = toNodeHandler(handler, {
    onerror: (e) => console.error(`deepagents-backends mcp: ${e.message}`),
  });
  const guards = LOOPBACK.has(host) ? [localhostHostValidation(), localhostOriginValidation()] : [];
  const server = http.createServer((req, res) => {
    for (const guard of guards) if (!guard(req, res)) return;
    if (!authorized(req.headers.authorization, options.token)) {
      res.writeHead(401, { "WWW-Authenticate": 'Bearer realm="deepagents-backends"', "Content-Type": "text/plain" });
      res.end("missing or wrong bearer token\n");
      return;
    }
    if (new URL(req.url ?? "/", "http://x").pathname !== MCP_PATH) {
      res.writeHead(404, { "Content-Type": "text/plain" });
      res.end(`the MCP endpoint is ${MCP_PATH}\n`);
      return;
    }
    void serve(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const shown = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port}${MCP_PATH}`,
    async close() {
      await stop();
      await handler.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
