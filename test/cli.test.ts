/**
 * The built CLI (dist/cli/main.js, built by `npm test`'s pretest) driven as a subprocess against
 * the test database, and `npm start` against an embedded server of its own.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { walk } from "../src/cli/files.js";
import { bin, cliRunner, json, root, type Run } from "./helpers/cli.js";
import { databaseUrl, uniqueName, TEST_SCHEMA } from "./helpers/db.js";

const url = await databaseUrl();
const workspace = uniqueName("cli");
const scratch = await mkdtemp(path.join(tmpdir(), "cli-test-"));
await chmod(scratch, 0o755); // as root, the embedded server runs as "postgres" and must reach its data dir

const run = cliRunner(url, TEST_SCHEMA, workspace);

// A fixture tree: nested text, a binary, bytes that are not UTF-8, ignored and skipped files.
const fixture = path.join(scratch, "fixture");
const files: Record<string, Buffer> = {
  "README.md": Buffer.from("# Fixture\nneedle in the readme\n"),
  "src/app.ts": Buffer.from("export const needle = 1;\r\nconst other = 2;\n"),
  "src/lib/util.ts": Buffer.from("// no match here\n"),
  "assets/logo.png": Buffer.from("89504e470d0a1a0a0000000d49484452", "hex"),
  "data/latin1.txt": Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]),
  "empty.txt": Buffer.alloc(0),
  ".gitignore": Buffer.from("*.log\nbuild/\n"),
  "src/.gitignore": Buffer.from("secret.ts\n"),
  "debug.log": Buffer.from("needle in an ignored log\n"),
  "build/out.js": Buffer.from("needle in ignored build output\n"),
  "src/secret.ts": Buffer.from("needle in a nested-ignored file\n"),
  "node_modules/dep/index.js": Buffer.from("needle in a dependency\n"),
  ".git/HEAD": Buffer.from("ref: refs/heads/main\n"),
};
for (const [rel, bytes] of Object.entries(files)) {
  await mkdir(path.dirname(path.join(fixture, rel)), { recursive: true });
  await writeFile(path.join(fixture, rel), bytes);
}
const expected = [
  "README.md",
  "src/app.ts",
  "src/lib/util.ts",
  "assets/logo.png",
  "data/latin1.txt",
  "empty.txt",
  ".gitignore",
  "src/.gitignore",
].sort();

test.after(() => rm(scratch, { recursive: true, force: true }));

test("the directory walk sees what git would: skips .git, node_modules and .gitignore'd files", async () => {
  assert.equal((await walk(fixture)).map((f) => f.relative).sort(), expected);
});

test("import, then ls / glob / grep / read agree with the files on disk", async () => {
  const imported = await run(["--json", "import", fixture]);
  assert.is(imported.code, 0, imported.stderr);
  assert.equal(json(imported).files, expected.length);

  const globbed = await run(["--json", "glob", "**"]);
  assert.equal(
    json(globbed)
      .map((f: { path: string }) => f.path.slice(1))
      .sort(),
    expected,
  );

  const ls = await run(["--json", "ls", "/"]);
  const top = new Set(expected.map((p) => (p.includes("/") ? p.split("/")[0] + "/" : p)));
  assert.equal(
    json(ls)
      .map((f: { path: string }) => f.path.slice(1))
      .sort(),
    [...top].sort(),
  );

  // grep = a literal scan of the imported text files on disk
  const onDisk: string[] = [];
  for (const rel of expected) {
    if (rel.endsWith(".png")) continue;
    const text = files[rel].toString("utf8");
    if (!Buffer.from(text, "utf8").equals(files[rel])) continue; // not UTF-8: stored as binary
    text.split("\n").forEach((line, i) => {
      if (line.includes("needle")) onDisk.push(`/${rel}:${i + 1}:${line}`);
    });
  }
  const grep = await run(["grep", "needle"]);
  assert.is(grep.code, 0);
  assert.equal(grep.stdout.replace(/\n$/, "").split("\n").sort(), onDisk.sort());

  const regex = await run(["grep", "--regex", "-i", "^EXPORT const \\w+ = \\d;"]);
  assert.equal([regex.code, regex.stdout], [0, "/src/app.ts:1:export const needle = 1;\r\n"]);

  const read = await run(["read", "/src/app.ts"]);
  assert.is(read.stdout, files["src/app.ts"].toString());
  const window = await run(["read", "/src/app.ts", "--offset", "1", "--limit", "1"]);
  assert.is(window.stdout, "const other = 2;\n");
});

test("export round-trips byte for byte, binary and non-UTF-8 included", async () => {
  const out = path.join(scratch, "exported");
  const exported = await run(["export", out]);
  assert.is(exported.code, 0, exported.stderr);
  assert.match(exported.stdout, new RegExp(`exported ${expected.length} files`));
  for (const rel of expected) assert.ok((await readFile(path.join(out, rel))).equals(files[rel]), rel);
  assert.equal((await walk(out, { skip: [], gitignore: false })).map((f) => f.relative).sort(), expected);
});

test("grep streams: --max-count stops after n lines and says so; a reader that goes away ends it quietly", async () => {
  const lines = Array.from({ length: 5_000 }, (_, i) => `streamed ${i}`).join("\n");
  assert.is((await run(["write", "/stream/many.txt", lines])).code, 0);
  const capped = await run(["grep", "streamed", "--path", "/stream", "--max-count", "3"]);
  assert.equal(
    [capped.code, capped.stdout, capped.stderr],
    [
      0,
      "/stream/many.txt:1:streamed 0\n/stream/many.txt:2:streamed 1\n/stream/many.txt:3:streamed 2\n",
      "(stopped after 3 matches)\n",
    ],
  );
  const all = await run(["grep", "streamed", "--path", "/stream", "--max-count", "5000"]);
  assert.equal([all.code, all.stdout.split("\n").length - 1, all.stderr], [0, 5_000, ""]);
  // The CLI's grep in a shell pipeline: `"$0" "$@"` is the CLI with its arguments.
  const shell = (pipeline: string, command = ["grep", "streamed"]) =>
    new Promise<Run>((resolve) => {
      const args = ["--database-url", url, "--schema", TEST_SCHEMA, "-w", workspace, ...command];
      const child = spawn("bash", ["-c", `set -o pipefail; ${pipeline}`, process.execPath, bin, ...args], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      let [stdout, stderr] = ["", ""];
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  // `grep ... | head -n 2`: the CLI sees EPIPE, stops the stream and exits 0 without an error.
  const piped = await shell('"$0" "$@" | head -n 2');
  assert.equal(
    [piped.code, piped.stdout, piped.stderr],
    [0, "/stream/many.txt:1:streamed 0\n/stream/many.txt:2:streamed 1\n", ""],
  );
  // A reader slower than the CLI gets every line (the output is not cut off at exit).
  const slow = await shell('"$0" "$@" | (sleep 1; wc -l)');
  assert.equal([slow.code, slow.stdout.trim(), slow.stderr], [0, "5000", ""]);
  // A full disk: one line on stderr, exit 1.
  const full = await shell('"$0" "$@" > /dev/full');
  assert.equal([full.code, full.stderr.trim().split("\n").length], [1, 1], full.stderr);
  assert.match(full.stderr, /^error: cannot write the output: .*ENOSPC/);
  // Any command: a reader that goes away is not an error (no stack trace, exit 0).
  const headed = await shell('"$0" "$@" | head -c 100', ["read", "/stream/many.txt", "--limit", "5000"]);
  assert.equal([headed.code, headed.stdout.length, headed.stderr], [0, 100, ""]);
  assert.is((await run(["rm", "/stream"])).code, 0);
});

test("write, edit, stat, rm and exit code 1 for not found / no match", async () => {
  assert.is((await run(["write", "/notes/a.md", "hello world"])).code, 0);
  const edit = await run(["edit", "/notes/a.md", "world", "there"]);
  assert.is(edit.stdout.trim(), "replaced 1 occurrence(s) in /notes/a.md");
  const stat = json(await run(["--json", "stat", "/notes/a.md"]));
  assert.equal([stat.size, stat.lines, stat.version], [11, 1, 2]);
  const missing = await run(["read", "/nope.md"]);
  assert.equal([missing.code, missing.stderr.trim()], [1, "error: File '/nope.md' not found"]);
  const nomatch = await run(["grep", "zzz-nothing-zzz"]);
  assert.equal([nomatch.code, nomatch.stdout], [1, ""]);
  assert.is((await run(["rm", "/notes"])).code, 0);
  assert.is((await run(["rm", "/notes"])).code, 1);
});

test("mv and cp: a directory moved and copied, a file in the way refused (exit 1) unless --overwrite", async () => {
  assert.is((await run(["write", "/mv/a.md", "alpha"])).code, 0);
  assert.is((await run(["write", "/mv/sub/b.md", "beta"])).code, 0);
  const moved = await run(["mv", "/mv", "/moved"]);
  assert.equal([moved.code, moved.stdout.trim()], [0, "moved /mv to /moved (2 files)"]);
  const refused = await run(["cp", "/moved/a.md", "/moved/sub/b.md"]);
  assert.equal(
    [refused.code, refused.stderr.trim()],
    [1, "error: '/moved/sub/b.md' already exists (pass overwrite: true to replace it)"],
  );
  const overwritten = json(await run(["--json", "cp", "/moved/a.md", "/moved/sub/b.md", "--overwrite"]));
  assert.equal(overwritten, { path: "/moved/sub/b.md", from: "/moved/a.md", files: 1, filesUpdate: null });
  assert.is((await run(["read", "/moved/sub/b.md"])).stdout.trim(), "alpha");
  assert.is((await run(["read", "/mv/a.md"])).code, 1);
  // history links the two paths (PostgreSQL)
  assert.match((await run(["history", "/moved/a.md"])).stdout, /^ *1 +create .* from \/mv\/a\.md$/m);
  assert.match((await run(["history", "/mv/a.md"])).stdout, /^ *1 +delete .* to \/moved\/a\.md$/m);
  assert.is((await run(["rm", "/moved"])).code, 0);
});

test("mkdir: an empty directory ls lists and rm removes; -p for parents; a missing parent is exit 1", async () => {
  const missing = await run(["mkdir", "/mk/a/b"]);
  assert.equal(
    [missing.code, missing.stderr.trim()],
    [1, "error: Cannot create directory '/mk/a/b': '/mk/a' does not exist (pass parents: true to create it)"],
  );
  assert.equal((await run(["mkdir", "-p", "/mk/a/b"])).stdout.trim(), "made /mk/a/b");
  assert.equal((await run(["mkdir", "--parents", "/mk/a"])).stdout.trim(), "/mk/a exists");
  assert.equal(json(await run(["--json", "mkdir", "/mk/c"])), { path: "/mk/c", created: true });
  assert.equal(
    json(await run(["--json", "ls", "/mk"])).map((f: { path: string }) => f.path),
    ["/mk/a/", "/mk/c/"],
  );
  assert.is((await run(["rm", "/mk"])).code, 0);
  assert.is((await run(["rm", "/mk"])).code, 1);
});

test("workspaces and stats", async () => {
  const ws = json(await run(["--json", "workspaces"]));
  const mine = ws.find((w: { workspace: string }) => w.workspace === workspace);
  assert.equal([mine.files, mine.bytes], [expected.length, expected.reduce((n, rel) => n + files[rel].length, 0)]);
  const stats = json(await run(["--json", "stats"]));
  for (const name of ["files", "chunks", "chunks_content_trgm_idx", "changes"])
    assert.ok(
      stats.some((r: { name: string }) => r.name === name),
      name,
    );
});

test("migrate status before and after, on a schema of its own", async () => {
  const schema = uniqueName("cli_mig");
  const before = json(
    await run(["--database-url", url, "--schema", schema, "--json", "migrate", "status"], { base: false }),
  );
  assert.equal(before.applied, []);
  assert.ok(before.pending.length >= 2);
  const up = await run(["--database-url", url, "--schema", schema, "migrate"], { base: false });
  assert.is(up.code, 0, up.stderr);
  assert.match(up.stdout, /applied 0001_files/);
  const after = json(
    await run(["--database-url", url, "--schema", schema, "--json", "migrate", "status"], { base: false }),
  );
  assert.equal([after.applied, after.pending], [before.pending, []]);
  const down = await run(["--database-url", url, "--schema", schema, "migrate", "down"], { base: false });
  assert.match(down.stdout, /reverted 0001_files/);
});

test("usage errors exit 2; an unreachable database exits 3 with one line", async () => {
  for (const args of [["frobnicate"], ["read"], ["read", "/a", "--offset", "x"], ["migrate", "sideways"]]) {
    const r = await run(args);
    assert.is(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.ok(r.stderr.length > 0);
  }
  const help = await run(["grep", "--help"], { base: false });
  assert.is(help.code, 0);
  assert.match(help.stdout, /--max-count <n>/);
  const dead = await run(["--database-url", "postgres://nobody@127.0.0.1:1/none", "ls", "/"], { base: false });
  assert.is(dead.code, 3);
  assert.is(dead.stderr.trim().split("\n").length, 1);
  assert.match(dead.stderr, /^error: cannot connect to PostgreSQL \(--database-url\)/);
});

test("npm start runs the tour on an embedded server, stops it, and leaves the data directory reusable", async () => {
  const dataDir = path.join(scratch, "pg");
  const env = {
    DATABASE_URL: undefined,
    PGHOST: undefined,
    PGDATABASE: undefined,
    PGUSER: undefined,
    PGPORT: undefined,
  };
  const start = await new Promise<Run>((resolve) => {
    const child = spawn("npm", ["start", "--silent", "--", "--data-dir", dataDir], {
      cwd: root,
      env: { ...process.env, ...env } as NodeJS.ProcessEnv,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
  assert.is(start.code, 0, start.stderr);
  for (const text of [
    "applied migrations",
    "importing",
    "[edit_file] Successfully replaced 1 occurrence(s)",
    "server-side grep",
    "npx deepagents-backends",
  ]) {
    assert.ok(start.stdout.includes(text), `missing: ${text}`);
  }
  assert.not.ok(existsSync(path.join(dataDir, "postmaster.pid")), "the embedded server was stopped");
  const again = await run(["--data-dir", dataDir, "-w", "demo", "--json", "stat", "/notes/tour.md"], {
    base: false,
    env,
  });
  assert.is(again.code, 0, again.stderr);
  assert.is(json(again).version, 2);
  assert.not.ok(existsSync(path.join(dataDir, "postmaster.pid")));
});

/** Starts `watch` on an embedded data dir and resolves once it is watching. */
function startWatch(dataDir: string, env: Record<string, string | undefined>) {
  const child = spawn(process.execPath, [bin, "--data-dir", dataDir, "-w", "demo", "watch"], {
    env: { ...process.env, ...env } as NodeJS.ProcessEnv,
  });
  let stderr = "";
  const ready = new Promise<void>((resolve, reject) => {
    child.stderr.on("data", (d) => {
      stderr += d;
      if (stderr.includes("watching workspace")) resolve();
    });
    child.on("close", (code) => reject(new Error(`watch exited ${code}: ${stderr}`)));
  });
  const exited = new Promise<number | null>((resolve) =>
    child.on("close", (code, signal) => resolve(code ?? (signal ? -1 : null))),
  );
  return { child, ready, exited };
}

test("Ctrl-C stops the embedded server cleanly; after a kill -9 the next command adopts and stops the orphan", async () => {
  const dataDir = path.join(scratch, "pg");
  const env = {
    DATABASE_URL: undefined,
    PGHOST: undefined,
    PGDATABASE: undefined,
    PGUSER: undefined,
    PGPORT: undefined,
  };
  const pidFile = path.join(dataDir, "postmaster.pid");

  const interrupted = startWatch(dataDir, env);
  await interrupted.ready;
  assert.ok(existsSync(pidFile));
  interrupted.child.kill("SIGINT");
  assert.is(await interrupted.exited, 130);
  assert.not.ok(existsSync(pidFile), "Ctrl-C stopped the server");

  const killed = startWatch(dataDir, env);
  await killed.ready;
  killed.child.kill("SIGKILL");
  await killed.exited;
  assert.ok(existsSync(pidFile), "the orphaned server is still running");
  const orphan = Number((await readFile(pidFile, "utf8")).split("\n")[0]);
  const after = await run(["--data-dir", dataDir, "-w", "demo", "--json", "stat", "/notes/tour.md"], {
    base: false,
    env,
  });
  assert.is(after.code, 0, after.stderr);
  assert.is(json(after).version, 2); // data intact
  assert.not.ok(existsSync(pidFile), "the adopted orphan was stopped");
  assert.throws(() => process.kill(orphan, 0));
});

test.run();
