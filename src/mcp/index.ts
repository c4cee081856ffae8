/**
 * deepagents-backends/mcp: a workspace as an MCP server (serve.ts), over stdio or Streamable HTTP.
 * Its own entry: it loads @modelcontextprotocol/server (and, for HTTP, @modelcontextprotocol/node),
 * optional peer dependencies the backends do not need.
 */
export {
  MCP_PATH,
  type McpHttpOptions,
  type McpServeOptions,
  type RunningMcpServer,
  serveMcpHttp,
  serveMcpStdio,
} from "./serve.js";
export { RESOURCE_LIST_MAX, uriOf } from "./resources.js";
