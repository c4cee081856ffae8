/**
 * The CLI where the local filesystem or other processes push back (issue 11, items 7, 9, 10, 12,
 * 13): export through links planted in its target, import of names that collide or files that
 * vanish, invalid UTF-8 on standard input, and commands sharing one embedded PostgreSQL. Drives
 * the built CLI (dist/cli/main.js; CLI_BIN overrides it, to run these against another build).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import {
  chmod,
  link,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  symlink,
  truncate,
  unlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { importDir } from "../src/cli/transfer.js";
import { databaseUrl, testBackend, uniqueName, TEST_SCHEMA } from "./helpers/db.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = process.env.CLI_BIN ?? path.join(root, "dist/cli/main.js");
const url = await databaseUrl();
const scratch = await mkdtemp(path.join(tmpdir(), "cli-safety-"));
await chmod(scratch, 0o755); // as root, the embedded server runs as "postgres" and must reach its data dir
test.after(() => rm(scratch, { recursive: true, force: true }));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** No connection settings: the CLI falls back to its embedded server in --data-dir. */
const EMBEDDED_ENV = {
  DATABASE_URL: undefined,
  PGHOST: undefined,
  PGDATABASE: undefined,
  PGUSER: undefined,
  PGPORT: undefined,
};

function start(
  args: string[],
  { env = {}, input }: { env?: Record<string, string | undefined>; input?: Uint8Array } = {},
) {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, ...env } as NodeJS.ProcessEnv,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  child.stdin.end(input);
  const done = new Promise<Run>((resolve) =>
    child.on("close", (code, signal) => resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr })),
  );
  return { child, done, stderr: () => stderr };
}

function cli(workspace: string) {
  return (args: string[], input?: Uint8Array) =>
    start(["--database-url", url, "--schema", TEST_SCHEMA, "-w", workspace, ...args], { input }).done;
}

const json = (r: Run) => JSON.parse(r.stdout);

test("export never writes through a symlink or hard link already in its target: it names the refused path, exports the rest, exits 1", async () => {
  const run = cli(uniqueName("export"));
  for (const [p, text] of [
    ["/docs/evil.sh", "echo pwned\n"],
    ["/ok.md", "fine\n"],
    ["/sub/deep/x.md", "deep\n"],
    ["/link.md", "via link\n"],
    ["/hard.md", "new\n"],
  ]) {
    assert.is((await run(["write", p, text])).code, 0, p);
  }
  const out = path.join(scratch, "export-out");
  const outside = path.join(scratch, "export-outside");
  await mkdir(out);
  await mkdir(outside);
  await symlink("../export-outside", path.join(out, "docs")); // directory link: /docs/evil.sh would land in outside/
  await writeFile(path.join(outside, "victim.md"), "original\n");
  await symlink("../export-outside/victim.md", path.join(out, "link.md")); // file link
  await writeFile(path.join(outside, "h.md"), "untouched\n");
  await link(path.join(outside, "h.md"), path.join(out, "hard.md")); // hard link: writing in place would change outside/h.md

  const exported = await run(["export", out]);
  assert.is(exported.code, 1, exported.stderr);
  assert.match(exported.stderr, `failed: /docs/evil.sh: refused ${path.join(out, "docs")}: is a symbolic link`);
  assert.match(exported.stderr, `failed: /link.md: refused ${path.join(out, "link.md")}: is a symbolic link`);
  assert.match(exported.stdout, /exported 3 files .*; 2 not exported/);
  assert.equal((await readdir(outside)).sort(), ["h.md", "victim.md"]);
  assert.is(await readFile(path.join(outside, "victim.md"), "utf8"), "original\n");
  assert.is(await readFile(path.join(outside, "h.md"), "utf8"), "untouched\n");
  assert.is(await readFile(path.join(out, "hard.md"), "utf8"), "new\n"); // replaced (rename), not written through
  assert.is(await readFile(path.join(out, "ok.md"), "utf8"), "fine\n");
  assert.is(await readFile(path.join(out, "sub/deep/x.md"), "utf8"), "deep\n");
  assert.not.ok(
    (await readdir(out)).some((n) => n.endsWith(".tmp")),
    "no temporary file left behind",
  );

  // The target itself may be a link (the user named it): followed, like any path they give.
  const aliased = path.join(scratch, "export-alias");
  await symlink(out, aliased);
  const again = await run(["--json", "export", aliased, "--path", "/sub"]);
  assert.is(again.code, 0, again.stderr);
  assert.is(json(again).files, 1);
});

test("import refuses names that normalise alike (NFC/NFD, trailing space): per-file errors naming both, none counted, exit 1", async () => {
  const workspace = uniqueName("collide");
  const run = cli(workspace);
  const dir = path.join(scratch, "collide");
  await mkdir(dir);
  const nfc = "caf\u00e9.md";
  const nfd = "cafe\u0301.md";
  for (const [name, text] of [
    [nfc, "nfc\n"],
    [nfd, "nfd\n"],
    ["notes.md", "a\n"],
    ["notes.md ", "b\n"],
    ["other.md", "alone\n"],
  ]) {
    await writeFile(path.join(dir, name), text);
  }
  const imported = await run(["import", dir]);
  assert.is(imported.code, 1, imported.stderr);
  assert.match(imported.stdout, /imported 1 files .*; 4 not imported/);
  assert.match(
    imported.stderr,
    `failed: notes.md : not imported: "notes.md " and "notes.md" would both be stored as /notes.md`,
  );
  assert.match(
    imported.stderr,
    `failed: notes.md: not imported: "notes.md" and "notes.md " would both be stored as /notes.md`,
  );
  assert.match(
    imported.stderr,
    `not imported: ${JSON.stringify(nfd)} and ${JSON.stringify(nfc)} would both be stored as /${nfc}`,
  );
  const stored = json(await run(["--json", "glob", "**"])).map((f: { path: string }) => f.path);
  assert.equal(stored, ["/other.md"]);

  const report = json(await run(["--json", "import", dir]));
  assert.is(report.files, 1);
  assert.is(report.failed.length, 4);
});

test("import of a file that cannot be read reports it, imports the rest, and exits 1 with a summary", async () => {
  const workspace = uniqueName("unreadable");
  const run = cli(workspace);
  const dir = path.join(scratch, "unreadable");
  await mkdir(dir);
  await writeFile(path.join(dir, "a.md"), "a\n");
  await writeFile(path.join(dir, "z.md"), "z\n");
  // Sparse, so it costs no disk: Node refuses to read a file over 2 GiB into memory.
  await writeFile(path.join(dir, "big.bin"), "");
  await truncate(path.join(dir, "big.bin"), 3 * 2 ** 30);
  const imported = await run(["import", dir]);
  assert.is(imported.code, 1, imported.stderr);
  assert.match(imported.stdout, /imported 2 files .*; 1 not imported/);
  assert.match(imported.stderr, /^failed: big\.bin: cannot read: /m);
  assert.is(imported.stderr.trim().split("\n").length, 1, imported.stderr);
  assert.equal(
    json(await run(["--json", "glob", "**"]))
      .map((f: { path: string }) => f.path)
      .sort(),
    ["/a.md", "/z.md"],
  );
});

test("importDir: a file deleted between the walk and its read is a per-file failure; the rest is imported", async () => {
  const dir = path.join(scratch, "vanish");
  // Three batches of up to 500, two uploads in flight: the third batch is read once an upload has
  // ended, so after the first upload call has started (and removed the file).
  const count = 1020;
  await mkdir(path.join(dir, "d"), { recursive: true });
  for (let i = 0; i < count; i++) await writeFile(path.join(dir, `f${String(i).padStart(4, "0")}.md`), `${i}\n`);
  const backend = await testBackend();
  const upload = backend.uploadFiles.bind(backend);
  let calls = 0;
  backend.uploadFiles = async (files) => {
    if (calls++ === 0) await unlink(path.join(dir, `f${String(count - 1).padStart(4, "0")}.md`)); // vanishes mid-run
    return upload(files);
  };
  try {
    const report = await importDir(backend, dir, { quiet: true });
    assert.is(report.files, count - 1);
    assert.is(report.failed.length, 1);
    assert.is(report.failed[0].path, `f${String(count - 1).padStart(4, "0")}.md`);
    assert.match(report.failed[0].error, /^cannot read: ENOENT/);
    assert.is((await backend.glob("**", "/")).files?.length, count - 1);
  } finally {
    await backend.close();
  }
});

test("importDir: two uploads in flight; a storage failure lets the other finish, starts no more, and says how far it got", async () => {
  const dir = path.join(scratch, "in-flight");
  await mkdir(dir, { recursive: true });
  const count = 2100; // five batches of up to 500
  for (let i = 0; i < count; i++) await writeFile(path.join(dir, `f${String(i).padStart(4, "0")}.md`), `${i}\n`);
  const backend = await testBackend();
  const upload = backend.uploadFiles.bind(backend);
  let calls = 0;
  let inFlight = 0;
  let most = 0;
  const sizes: number[] = [];
  backend.uploadFiles = async (files) => {
    const call = calls++;
    inFlight++;
    most = Math.max(most, inFlight);
    try {
      // The first upload is slow, so the second one fails while the first is still in flight.
      if (call === 0) await new Promise((r) => setTimeout(r, 300));
      if (call === 1) throw new Error("connection lost");
      const results = await upload(files);
      sizes.push(files.length);
      return results;
    } finally {
      inFlight--;
    }
  };
  try {
    const err = await importDir(backend, dir, { quiet: true }).then(
      () => undefined,
      (e: Error) => e,
    );
    assert.is(err?.message, "connection lost (import stopped: 500 of 2100 files imported)");
    assert.is(most, 2, "two uploads were in flight at once");
    assert.is(calls, 2, "no upload started after the failure");
    assert.equal(sizes, [500], "the upload in flight finished");
    assert.is((await backend.glob("**", "/")).files?.length, 500);
  } finally {
    await backend.close();
  }
});

test("write from standard input refuses invalid UTF-8 (nothing written) and keeps valid text exactly, BOM and U+FFFD included", async () => {
  const run = cli(uniqueName("stdin"));
  const bad = await run(["write", "/bad.md"], Buffer.from([0x6f, 0x6b, 0x20, 0xff, 0xfe, 0x20, 0x65, 0x6e, 0x64]));
  assert.is(bad.code, 1);
  assert.is(
    bad.stderr.trim(),
    "error: standard input is not valid UTF-8 (first invalid byte at offset 3); nothing was written (use import for files that are not UTF-8 text)",
  );
  const missing = await run(["stat", "/bad.md"]);
  assert.is(missing.code, 1, "nothing was written");
  const truncated = await run(["write", "/cut.md"], Buffer.from("caf\u00e9", "utf8").subarray(0, 4)); // a sequence cut short
  assert.match(truncated.stderr, /offset 3\)/);

  const text = "\ufeffa real \ufffd stays\n";
  const good = await run(["write", "/good.md"], Buffer.from(text, "utf8"));
  assert.is(good.code, 0, good.stderr);
  assert.is(json(await run(["--json", "read", "/good.md"])).content, text);
});

/** The embedded server's port, from postmaster.pid, or null when none runs. */
async function embeddedPort(dataDir: string): Promise<number | null> {
  const text = await readFile(path.join(dataDir, "postmaster.pid"), "utf8").catch(() => null);
  return text ? Number(text.split("\n")[3]) : null;
}

test("three commands started at once on one embedded data directory all succeed, and the last one stops the server", async () => {
  const dataDir = path.join(scratch, "pg-race");
  const env = EMBEDDED_ENV;
  const runs = await Promise.all(
    [1, 2, 3].map((i) => start(["--data-dir", dataDir, "-w", `w${i}`, "write", "/race.md", `from ${i}`], { env }).done),
  );
  for (const r of runs) assert.equal([r.code, r.stderr], [0, ""]);
  assert.not.ok(existsSync(path.join(dataDir, "postmaster.pid")), "the server was stopped by the last command");
  // Again on the initialised directory (the start-up race without initdb), reading back each file.
  const reads = await Promise.all(
    [1, 2, 3].map((i) => start(["--data-dir", dataDir, "-w", `w${i}`, "read", "/race.md"], { env }).done),
  );
  assert.equal(
    reads.map((r) => [r.code, r.stdout, r.stderr]),
    [1, 2, 3].map((i) => [0, `from ${i}\n`, ""]),
  );
  assert.not.ok(existsSync(path.join(dataDir, "postmaster.pid")));
});

test("a lock and a client entry left by a killed command neither block nor keep the shared server alive", async () => {
  const dataDir = path.join(scratch, "pg-stale");
  const dead = spawn(process.execPath, ["-e", ""]);
  const deadPid = await new Promise<number>((resolve) => dead.on("exit", () => resolve(dead.pid!)));
  await writeFile(`${dataDir}.lock`, JSON.stringify({ pid: deadPid, start: null }));
  await writeFile(`${dataDir}.clients`, JSON.stringify([{ pid: deadPid, start: null }]));
  const r = await start(["--data-dir", dataDir, "-w", "stale", "write", "/a.md", "a"], { env: EMBEDDED_ENV }).done;
  assert.equal([r.code, r.stderr], [0, ""]);
  assert.not.ok(existsSync(path.join(dataDir, "postmaster.pid")), "stopped: the dead client does not count");
  assert.not.ok(existsSync(`${dataDir}.lock`));
});

test("Ctrl-C on a watch that started the shared server does not stop it under a running import; the import completes", async () => {
  const dataDir = path.join(scratch, "pg-shared");
  const env = EMBEDDED_ENV;
  const total = 6000;
  const dir = path.join(scratch, "bulk");
  await mkdir(dir);
  for (let i = 0; i < total; i++) await writeFile(path.join(dir, `n${i}.md`), `note ${i}\n`);

  const watch = start(["--data-dir", dataDir, "-w", "bulk", "watch"], { env });
  for (let i = 0; !watch.stderr().includes("watching workspace"); i++) {
    assert.ok(i < 600, `watch did not start: ${watch.stderr()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const importing = start(["--data-dir", dataDir, "-w", "bulk", "--json", "import", dir], { env });

  // Interrupt the watch once the import is visibly half-way: some files stored, not all.
  const port = await embeddedPort(dataDir);
  assert.ok(port, "the watch started the server");
  const client = new pg.Client({ connectionString: `postgres://postgres:postgres@127.0.0.1:${port}/postgres` });
  await client.connect();
  let stored = 0;
  for (let i = 0; stored === 0; i++) {
    assert.ok(i < 1200, "the import never stored a file");
    await new Promise((r) => setTimeout(r, 50));
    stored = Number(
      (
        await client
          .query("SELECT count(*) AS n FROM deepagents.files WHERE workspace = 'bulk'")
          .catch(() => ({ rows: [{ n: 0 }] }))
      ).rows[0].n,
    );
  }
  await client.end();
  assert.ok(stored < total, `the import finished before the interrupt (${stored}); use more files`);
  watch.child.kill("SIGINT");
  assert.is((await watch.done).code, 130);

  const imported = await importing.done;
  assert.is(imported.code, 0, imported.stderr);
  assert.is(json(imported).files, total);
  assert.not.ok(existsSync(path.join(dataDir, "postmaster.pid")), "the import, the last command, stopped the server");
  const count = await start(["--data-dir", dataDir, "-w", "bulk", "--json", "glob", "*.md"], { env }).done;
  assert.is(json(count).length, total);
});

test.run();
