/**
 * `deepagents-backends mcp` (issue 15, item 4), driven by the MCP SDK's own client against the
 * built CLI in a subprocess: over stdio (the 2025 handshake desktop clients use, and the
 * 2026-07-28 era) and over Streamable HTTP (bearer token, loopback Host check). Tools answer as
 * the agent tools do, with MCP's annotations; files are resources; a subscription receives a
 * change that another process (this test's own backend) commits. On PostgreSQL, and the tools
 * and resources on S3 (s3rver, or Ceph RGW in CI's S3 pass).
 */
import { spawn } from "node:child_process";
import http from "node:http";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { RESOURCE_LIST_MAX } from "../src/mcp/resources.js";
import { errors } from "../src/protocol.js";
import { bin, root } from "./helpers/cli.js";
import { databaseUrl, testBackend, uniqueName } from "./helpers/db.js";
import { startTestS3 } from "./helpers/s3.js";

const base = await testBackend();
const url = await databaseUrl();
const s3 = await startTestS3();
const clients: Client[] = [];
const stops: Array<() => void> = [];

test.after(async () => {
  for (const c of clients) await c.close().catch(() => {});
  for (const stop of stops) stop();
  await base.close();
  await s3.close();
});

const pgArgs = (workspace: string) => ["--database-url", url, "--schema", base.schema, "-w", workspace];

/** A client connected over stdio to `deepagents-backends <args> mcp <extra>`. */
async function stdioClient(
  args: string[],
  extra: string[] = [],
  era: "legacy" | "auto" = "legacy",
  s3Env: { AWS_ACCESS_KEY_ID: string; AWS_SECRET_ACCESS_KEY: string; workspace: string } | null = null,
): Promise<Client> {
  const client = new Client({ name: "test", version: "1" }, { versionNegotiation: { mode: era } });
  const { workspace, ...keys } = s3Env ?? { workspace: null };
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [bin, ...args, ...(workspace ? ["-w", workspace] : []), "mcp", ...extra],
    env: { ...(process.env as Record<string, string>), ...keys },
    cwd: root,
    stderr: "pipe",
  });
  await client.connect(transport);
  clients.push(client);
  return client;
}

const text = (r: { content?: unknown }): string => {
  const content = (r.content ?? []) as Array<{ type: string; text?: string }>;
  return content.map((c) => c.text ?? "").join("");
};

/**
 * Every URI of `notifications/resources/updated` the client receives, up to and including the
 * first for `uri` (a rejection after `ms` without it).
 */
function nextUpdate(client: Client, uri: string, ms = 15_000): Promise<string[]> {
  const seen: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no resources/updated for ${uri} within ${ms} ms`)), ms);
    client.setNotificationHandler("notifications/resources/updated", (n) => {
      seen.push(n.params.uri);
      if (n.params.uri !== uri) return;
      clearTimeout(timer);
      resolve(seen);
    });
  });
}

test("stdio: the tools, with annotations; answers and errors as the agent tools give them", async () => {
  const ws = uniqueName("mcp");
  const client = await stdioClient(pgArgs(ws));
  const { tools } = await client.listTools();
  const byName = new Map(tools.map((t) => [t.name, t]));
  for (const name of [
    "ls",
    "read_file",
    "write_file",
    "edit_file",
    "delete_file",
    "make_directory",
    "glob",
    "grep",
    "search",
    "move_file",
    "copy_file",
    "checkpoint",
    "rewind",
    "diff",
    "file_history",
    "restore_file",
  ])
    assert.ok(byName.has(name), `tool ${name}`);
  assert.equal(byName.get("read_file")?.annotations?.readOnlyHint, true);
  assert.equal(byName.get("delete_file")?.annotations?.destructiveHint, true);
  assert.equal(byName.get("make_directory")?.annotations?.destructiveHint, false);
  assert.equal(byName.get("grep")?.annotations?.openWorldHint, false);

  const call = async (name: string, args: Record<string, unknown>) => client.callTool({ name, arguments: args });
  assert.is(text(await call("write_file", { file_path: "/src/a.ts", content: "one\ntwo TODO\n" })), "Wrote /src/a.ts");
  assert.is(text(await call("read_file", { file_path: "/src/a.ts" })), "     1\tone\n     2\ttwo TODO\n     3\t");
  assert.is(text(await call("grep", { pattern: "TODO" })), "/src/a.ts:2:two TODO");
  assert.is(text(await call("search", { pattern: "^T", regex: true, ignore_case: true })), "/src/a.ts:2:two TODO");
  assert.is(
    text(await call("move_file", { source_path: "/src", destination_path: "/lib" })),
    "Moved /src to /lib (1 file)",
  );
  assert.is(text(await call("make_directory", { path: "/empty" })), "Made /empty");
  assert.is(text(await call("ls", { path: "/" })), "/empty/\n/lib/");
  assert.is(text(await call("glob", { pattern: "**/*.ts" })), "/lib/a.ts");
  const missing = await call("edit_file", { file_path: "/nope", old_string: "a", new_string: "b" });
  assert.equal([missing.isError, text(missing)], [true, errors.notFound("/nope")]);
  // the same store: the backend in this process sees what the tools wrote
  assert.is((await base.withWorkspace(ws).readRaw("/lib/a.ts")).data?.content, "one\ntwo TODO\n");
});

test("stdio: files are resources (text and base64 blobs); a subscription gets a change another process commits", async () => {
  const ws = uniqueName("mcp");
  const backend = base.withWorkspace(ws);
  await backend.write("/notes/plan.md", "# plan\n");
  await backend.uploadFiles([["/img/dot.png", Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2])]]);
  await backend.write("/with space/ü.txt", "unicode path\n");
  const client = await stdioClient(pgArgs(ws));
  const { resources } = await client.listResources();
  assert.equal(resources.map((r) => r.uri).sort(), [
    "deepagents:///img/dot.png",
    "deepagents:///notes/plan.md",
    "deepagents:///with%20space/%C3%BC.txt",
  ]);
  const plan = await client.readResource({ uri: "deepagents:///notes/plan.md" });
  assert.equal(plan.contents, [{ uri: "deepagents:///notes/plan.md", mimeType: "text/markdown", text: "# plan\n" }]);
  const png = await client.readResource({ uri: "deepagents:///img/dot.png" });
  assert.is(
    (png.contents[0] as { blob: string }).blob,
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2]).toString("base64"),
  );
  const unicode = await client.readResource({ uri: "deepagents:///with%20space/%C3%BC.txt" });
  assert.is((unicode.contents[0] as { text: string }).text, "unicode path\n");

  const uri = "deepagents:///notes/plan.md";
  const updated = nextUpdate(client, uri);
  await client.subscribeResource({ uri });
  await backend.write("/notes/other.md", "not subscribed\n");
  await backend.edit("/notes/plan.md", "# plan", "# plan, revised");
  // only the subscribed file: a 2025-era client is told of nothing it did not ask for
  assert.equal(await updated, [uri]);
  const again = await client.readResource({ uri });
  assert.is((again.contents[0] as { text: string }).text, "# plan, revised\n");
});

test("stdio, 2026-07-28 era: a listen stream receives the change another process commits", async () => {
  const ws = uniqueName("mcp");
  const backend = base.withWorkspace(ws);
  await backend.write("/a.txt", "a\n");
  const client = await stdioClient(pgArgs(ws), [], "auto");
  assert.is(client.getProtocolEra(), "modern");
  const uri = "deepagents:///a.txt";
  const updated = nextUpdate(client, uri);
  const subscription = await client.listen({ resourceSubscriptions: [uri] });
  await backend.write("/other.txt", "not listened to\n");
  await backend.write("/a.txt", "b\n");
  assert.equal(await updated, [uri]);
  await subscription.close();
});

test("stdio --read-only: only tools that read; the others do not exist", async () => {
  const ws = uniqueName("mcp");
  await base.withWorkspace(ws).write("/a.txt", "a\n");
  const client = await stdioClient(pgArgs(ws), ["--read-only"]);
  const names = (await client.listTools()).tools.map((t) => t.name).sort();
  assert.equal(names, ["diff", "file_history", "glob", "grep", "list_checkpoints", "ls", "read_file", "search"]);
  const refused = await client.callTool({ name: "write_file", arguments: { file_path: "/b.txt", content: "x" } }).then(
    (r) => `answered ${JSON.stringify(r)}`,
    (e: Error) => e.message,
  );
  assert.match(refused, /Tool write_file not found/);
  assert.equal(
    (await base.withWorkspace(ws).glob("**/*")).files?.map((f) => f.path),
    ["/a.txt"],
  );
});

/** `mcp --http` in a subprocess; resolves with its URL once it says it listens. */
async function httpServer(workspace: string, token: string | null): Promise<{ endpoint: string; said: string }> {
  const tokenArgs = token === null ? [] : ["--token", token];
  const child = spawn(process.execPath, [bin, ...pgArgs(workspace), "mcp", "--http", "--port", "0", ...tokenArgs], {
    cwd: root,
    env: { ...process.env, DEEPAGENTS_MCP_TOKEN: "" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  stops.push(() => child.kill("SIGTERM"));
  let said = "";
  return new Promise((resolve, reject) => {
    child.stderr.on("data", (d) => {
      said += d;
      const m = /at (http:\/\/\S+)/.exec(said);
      if (m && (token !== null || /bearer token: /.test(said))) resolve({ endpoint: m[1], said });
    });
    child.on("exit", (code) => reject(new Error(`mcp --http exited (${code}): ${said}`)));
  });
}

/** A raw request to the HTTP endpoint: its status. */
function status(endpoint: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(endpoint, { method: "POST", headers: { "Content-Type": "application/json", ...headers } });
    req.on("response", (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }));
  });
}

test("Streamable HTTP: bearer token required, loopback Host checked; tools and a listen subscription work", async () => {
  const ws = uniqueName("mcp");
  const backend = base.withWorkspace(ws);
  await backend.write("/a.txt", "a\n");
  const token = "t0k3n-for-this-test";
  const { endpoint } = await httpServer(ws, token);
  assert.match(endpoint, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
  assert.is(await status(endpoint, {}), 401);
  assert.is(await status(endpoint, { Authorization: "Bearer wrong" }), 401);
  assert.is(await status(endpoint, { Authorization: `Bearer ${token}`, Host: "evil.example:80" }), 403);
  assert.is(await status(endpoint, { Authorization: `Bearer ${token}`, Origin: "https://evil.example" }), 403);

  const client = new Client({ name: "test", version: "1" }, { versionNegotiation: { mode: "auto" } });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(endpoint), {
      requestInit: { headers: { Authorization: `Bearer ${token}` } },
    }),
  );
  clients.push(client);
  assert.is(
    text(await client.callTool({ name: "write_file", arguments: { file_path: "/b.txt", content: "b" } })),
    "Wrote /b.txt",
  );
  assert.is((await backend.readRaw("/b.txt")).data?.content, "b");
  const uri = "deepagents:///a.txt";
  const updated = nextUpdate(client, uri);
  const subscription = await client.listen({ resourceSubscriptions: [uri] });
  await backend.write("/a.txt", "changed\n");
  assert.equal(await updated, [uri]);
  await subscription.close();
});

test("Streamable HTTP without a token given: a random one is made and printed on stderr, and only it is let in", async () => {
  const { endpoint, said } = await httpServer(uniqueName("mcp"), null);
  const token = /bearer token: (\S+)/.exec(said)?.[1] ?? "";
  assert.ok(token.length >= 32, said);
  assert.is(await status(endpoint, {}), 401);
  assert.is.not(await status(endpoint, { Authorization: `Bearer ${token}` }), 401);
});

test(`resources/list names the first ${RESOURCE_LIST_MAX} files in path order`, async () => {
  const ws = uniqueName("mcp");
  const files = Array.from({ length: RESOURCE_LIST_MAX + 1 }, (_, i): [string, Uint8Array] => [
    `/f${String(i).padStart(5, "0")}.txt`,
    Buffer.from("x"),
  ]);
  await base.withWorkspace(ws).uploadFiles(files);
  const client = await stdioClient(pgArgs(ws));
  const { resources } = await client.listResources();
  assert.is(resources.length, RESOURCE_LIST_MAX);
  assert.is(resources[0].uri, "deepagents:///f00000.txt");
  assert.is(resources.at(-1)?.uri, `deepagents:///f${String(RESOURCE_LIST_MAX - 1).padStart(5, "0")}.txt`);
});

test(`S3 (${s3.kind}): the same tools and resources through the CLI's --s3-bucket; no subscriptions offered`, async () => {
  const b = await s3.backend();
  await b.write("/docs/readme.md", "hello s3\n");
  const client = await stdioClient(
    ["--s3-bucket", s3.bucket, "--s3-endpoint", s3.endpoint, "--s3-region", s3.region, "--s3-prefix", b.prefix],
    [],
    "legacy",
    { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, workspace: b.workspace },
  );
  assert.is(client.getServerCapabilities()?.resources?.subscribe, false);
  const call = async (name: string, args: Record<string, unknown>) =>
    text(await client.callTool({ name, arguments: args }));
  assert.is(await call("read_file", { file_path: "/docs/readme.md" }), "     1\thello s3\n     2\t");
  assert.is(await call("make_directory", { path: "/empty" }), "Made /empty");
  assert.is(
    await call("copy_file", { source_path: "/docs", destination_path: "/copy" }),
    "Copied /docs to /copy (1 file)",
  );
  assert.is(await call("ls", {}), "/copy/\n/docs/\n/empty/");
  assert.is(await call("grep", { pattern: "hello" }), "/copy/readme.md:1:hello s3\n/docs/readme.md:1:hello s3");
  const read = await client.readResource({ uri: "deepagents:///copy/readme.md" });
  assert.is((read.contents[0] as { text: string }).text, "hello s3\n");
  assert.is((await b.readRaw("/copy/readme.md")).data?.content, "hello s3\n");
});

test.run();
