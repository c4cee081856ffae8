/**
 * withShell(): deepagents' `execute` tool over a workspace in PostgreSQL and in S3 (s3rver, or
 * the endpoint of CI's S3 pass), driven by a scripted fakeModel through createDeepAgent, and the
 * shell's own guarantees: deepagents detects it as a sandbox, the file methods are the backend's,
 * limits (time, output, loops) hold, nothing escapes the workspace, every write through the shell
 * is a change in the change feed, and grep -r / find -type f run in the store.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createDeepAgent, isSandboxBackend } from "deepagents";
import { fakeModel } from "@langchain/core/testing";
import { AIMessage, type BaseMessage } from "@langchain/core/messages";
import type { Change, PostgresBackend } from "../src/index.js";
import type { DeepAgentsBackend } from "../src/core/interface.js";
import { withShell } from "../src/shell/index.js";
import { toolText } from "./helpers/agent.js";
import { testBackend, uniqueName } from "./helpers/db.js";
import { startTestS3 } from "./helpers/s3.js";

const pg = await testBackend();
const s3 = await startTestS3();
test.after(async () => {
  await pg.close();
  await s3.close();
});

const stores: Array<[string, () => Promise<DeepAgentsBackend>]> = [
  ["PostgreSQL", async () => pg.withWorkspace(uniqueName("shell"))],
  [`S3 (${s3.kind})`, () => s3.backend()],
];

type Call = { name: string; id: string; args: Record<string, unknown> };

/** One agent turn making `calls` (in one model response) over `backend`; the tool messages by id. */
async function turn(backend: unknown, calls: Call[]): Promise<Record<string, string>> {
  const model = fakeModel().respondWithTools(calls).respond(new AIMessage("done"));
  const agent = createDeepAgent({ model, backend: backend as never });
  const result = await agent.invoke({ messages: [{ role: "user", content: "go" }] }, { recursionLimit: 50 });
  return toolText(result.messages as BaseMessage[]);
}

const run = (id: string, command: string): Call => ({ name: "execute", id, args: { command } });

for (const [name, fresh] of stores) {
  test(`${name}: the agent's execute tool runs bash over the workspace (deepagents' sandbox expectations)`, async () => {
    const shell = withShell(await fresh());
    assert.ok(isSandboxBackend(shell), "deepagents detects the wrapper as a sandbox");
    const written = await turn(shell, [
      { name: "write_file", id: "w", args: { file_path: "/notes/todo.md", content: "buy milk\ncall bob\n" } },
    ]);
    assert.match(written.w, "/notes/todo.md");
    const out = await turn(shell, [
      run("cat", "cat /notes/todo.md"),
      // (the calls of one turn run at once: this one must not depend on wc's file f)
      run("mkdir", "mkdir -p d && ls -d d notes"),
      run("wc", "echo x > f && wc -l < f"),
      run("exit", "exit 42"),
      run("stderr", "echo out; echo oops >&2"),
      run("env", "export A=1; echo $A"),
      run("missing", "cat missing.txt"),
    ]);
    assert.is(out.cat, "buy milk\ncall bob\n\n[Command succeeded with exit code 0]");
    assert.is(out.mkdir, "d\nnotes\n\n[Command succeeded with exit code 0]");
    assert.is(out.wc, "1\n\n[Command succeeded with exit code 0]");
    assert.is(out.exit, "<no output>\n\nExit code: 42\n[Command failed with exit code 42]");
    assert.is(out.stderr, "out\n\n[stderr] oops\n[Command succeeded with exit code 0]");
    assert.is(out.env, "1\n\n[Command succeeded with exit code 0]");
    assert.is(
      out.missing,
      "[stderr] cat: missing.txt: No such file or directory\n\nExit code: 1\n[Command failed with exit code 1]",
    );
    // Variables and the working directory last one command; files persist.
    const next = await turn(shell, [
      run("again", 'echo "A=$A"; pwd; cat f'),
      { name: "read_file", id: "r", args: { file_path: "/f" } },
    ]);
    assert.is(next.again, "A=\n/\nx\n\n[Command succeeded with exit code 0]");
    assert.match(next.r, "x");
  });

  test(`${name}: the wrapper is the backend for every other method`, async () => {
    const backend = await fresh();
    const shell = withShell(backend);
    assert.is(shell.backend, backend);
    assert.is(shell.workspace, backend.workspace);
    assert.ok((await shell.write("/a.txt", "alpha\n")).path);
    assert.is((await shell.execute("cat a.txt")).output, "alpha\n");
    assert.is((await shell.read("/a.txt")).content, "alpha\n");
    assert.is(((await shell.ls("/")).files ?? []).map((f) => f.path).join(), "/a.txt");
    assert.is((await shell.move("/a.txt", "/b.txt")).files, 1);
    assert.is((await shell.execute("ls")).output, "b.txt\n");
    const other = shell.withWorkspace(uniqueName("other"));
    assert.ok(isSandboxBackend(other), "withWorkspace answers a shell too");
    assert.is((await other.execute("ls")).output, "<no output>");
  });

  test(`${name}: POSIX errors, binary bytes, appends and directories as bash users expect`, async () => {
    const shell = withShell(await fresh());
    const said = async (command: string) => (await shell.execute(command)).output;
    assert.is(
      await said("mkdir d; mkdir d"),
      "[stderr] mkdir: cannot create directory 'd': File exists\n\nExit code: 1",
    );
    assert.is(await said("cd d && pwd"), "/d\n");
    assert.is(
      await said("rm d/nothing"),
      "[stderr] rm: cannot remove 'd/nothing': No such file or directory\n\nExit code: 1",
    );
    assert.is(await said("echo 1 > d/a; echo 2 >> d/a; echo 3 >> d/a; cat d/a"), "1\n2\n3\n");
    assert.is(await said("rm d/a; ls"), "d\n", "removing the last file leaves its directory");
    // NUL is not text: the file is kept as bytes (uploadFiles), exactly.
    assert.is(await said("printf 'a\\x00\\x01\\x7f' > blob.txt; wc -c < blob.txt"), "4\n");
    const [download] = await shell.downloadFiles(["/blob.txt"]);
    assert.equal([...(download.content ?? [])], [0x61, 0, 1, 0x7f], "bytes stored exactly");
    assert.is(
      await said("ln -s d link"),
      "[stderr] ln: failed to create symbolic link 'link': Operation not permitted\n\nExit code: 1",
    );
    assert.is(await said("touch d/t; ls d"), "t\n", "touch creates, and succeeds on an existing file");
    assert.is(await said("touch d/t && echo ok"), "ok\n");
  });
}

test("limits: time, output size, loops, no network, no way out of the workspace", async () => {
  const backend = pg.withWorkspace(uniqueName("limits"));
  const shell = withShell(backend, { timeoutMs: 500, maxOutputBytes: 100 });
  const slow = await shell.execute("while true; do echo x > /dev/null; done");
  assert.is(slow.exitCode, 124);
  assert.is(slow.output, "Error: Command timed out after 0.5 seconds.");
  const big = await shell.execute("seq 1 1000");
  assert.ok(big.truncated);
  assert.ok(big.output.startsWith("1\n2\n3\n"));
  assert.match(big.output, "... Output truncated at 100 bytes.");
  assert.is(Buffer.byteLength(big.output.split("\n\n...")[0]), 100);
  const loops = await withShell(backend, { executionLimits: { maxLoopIterations: 50 } }).execute(
    "for i in $(seq 1 100); do :; done; echo done",
  );
  assert.is.not(loops.exitCode, 0);
  assert.not.match(loops.output, /^done/m);
  const net = await shell.execute("curl -s https://example.com");
  assert.is(net.exitCode, 127, net.output);
  await backend.write("/inside.txt", "in\n");
  assert.is((await shell.execute("cd /../../..; pwd; cat ../../inside.txt")).output, "/\nin\n");
  assert.is((await shell.execute("cat /etc/passwd")).exitCode, 1);
  assert.is((await shell.execute("ls /proc")).exitCode, 2);
  // the application's environment (its database URL, keys) is not the script's
  process.env.SHELL_TEST_SECRET = "s3cr3t-value";
  const env = (await withShell(backend).execute('env; printenv SHELL_TEST_SECRET; echo "[$SHELL_TEST_SECRET]"')).output;
  delete process.env.SHELL_TEST_SECRET;
  assert.not.match(env, /s3cr3t-value|DATABASE_URL|postgres:/);
  assert.match(env, /^\[\]$/m);
  const aborted = new AbortController();
  // Each ls waits on the store, so the abort is seen between two of them.
  const pending = withShell(backend).execute("while true; do ls > /dev/null; done", { signal: aborted.signal });
  setTimeout(() => aborted.abort(), 100);
  assert.is.not((await pending).exitCode, 0);
});

test("the caller's patterns tested in this process (grep -w, --exclude, find -path) stop at the time limit", async () => {
  const backend = pg.withWorkspace(uniqueName("redos"));
  // Each of these backtracks for years on its input unless interrupted (2^60 steps).
  await backend.write(`/${"a".repeat(60)}c.txt`, `${"a".repeat(60)}c ab\n`);
  const shell = withShell(backend, { timeoutMs: 1000 });
  // Each is interrupted when the command's time is up: the command answers its timeout.
  for (const command of [
    "grep -rwE '(a+)+b' .",
    `grep -r --exclude='${"*a".repeat(30)}b' ab .`,
    `find . -type f -path '${"*a".repeat(30)}b'`,
  ]) {
    const r = await shell.execute(command);
    assert.equal([r.exitCode, r.output], [124, "Error: Command timed out after 1.0 seconds."], command);
  }
  // the shell still answers afterwards: nothing was left running
  assert.is((await shell.execute("echo alive")).output, "alive\n");
});

test("a workspace's own bin/, usr/ and dev/ stay its files; the command stubs and /dev/null are the system's", async () => {
  const backend = pg.withWorkspace(uniqueName("sys"));
  await backend.write("/bin/deploy.sh", "echo deploying\n");
  const shell = withShell(backend);
  const said = async (command: string) => (await shell.execute(command)).output;
  assert.is(await said("cat bin/deploy.sh"), "echo deploying\n");
  assert.is(await said("ls /bin | grep -c '^deploy.sh$'; ls /bin | grep -c '^cat$'"), "1\n1\n");
  assert.is(await said("grep -rn deploying bin"), "bin/deploy.sh:1:echo deploying\n");
  assert.is(await said("echo x > bin/new.sh && cat bin/new.sh && rm bin/new.sh && echo gone"), "x\ngone\n");
  assert.is(await said("mkdir -p /usr/local/lib && ls /usr"), "bin\nlocal\n");
  assert.match(await said("echo x > /bin/cat"), /EROFS: read-only file system/);
  assert.is(await said("cat /bin/cat | head -1"), "#!/bin/bash\n");
  assert.is(await said("echo gone > /dev/null; cat /dev/null; echo ok"), "ok\n");
  assert.equal(
    ((await backend.glob("**/*")).files ?? []).map((f) => f.path),
    ["/bin/deploy.sh"],
  );
  assert.equal(
    ((await backend.ls("/usr/local")).files ?? []).map((f) => f.path),
    ["/usr/local/lib/"],
  );
});

test("appends racing on one file lose nothing (>> writes at the version it read, and retries); chmod changes nothing; a grep of more than 100,000 lines stops", async () => {
  const backend = pg.withWorkspace(uniqueName("append"));
  const appends = (tag: string) =>
    withShell(backend).execute(`for i in $(seq 1 25); do echo ${tag}$i >> log.txt; done`);
  const [a, b] = await Promise.all([appends("a"), appends("b")]);
  assert.equal([a.exitCode, b.exitCode], [0, 0], `${a.output} ${b.output}`);
  const lines = String((await backend.readRaw("/log.txt")).data?.content ?? "")
    .split("\n")
    .filter(Boolean);
  assert.is(lines.length, 50, "every append landed");
  assert.equal(
    lines.filter((l) => l.startsWith("a")),
    Array.from({ length: 25 }, (_, i) => `a${i + 1}`),
  );
  const shell = withShell(backend);
  assert.is((await shell.execute("chmod +x log.txt && echo ok")).output, "ok\n");
  assert.is((await shell.execute("chmod +x missing.txt")).exitCode, 1);
  await backend.write("/big.txt", `${Array.from({ length: 100_001 }, (_, i) => `x ${i}`).join("\n")}\n`);
  const big = await shell.execute("grep -rn x .");
  assert.equal(
    [big.exitCode, big.output],
    [2, "[stderr] grep: more than 100000 matching lines; narrow the search\n\nExit code: 2"],
  );
});

test("PostgreSQL: every write through the shell is a change in the change feed, per file", async () => {
  const backend = pg.withWorkspace(uniqueName("feed")) as PostgresBackend;
  const shell = withShell(backend);
  await backend.write("/seed.txt", "seed\n");
  const seen: Change[] = [];
  const sub = await backend.watch({ onChange: (c) => seen.push(c) });
  const script = [
    "echo one > a.txt", // open (truncate, creates) then the content
    "echo two >> a.txt",
    "mkdir -p d",
    "cp a.txt d/b.txt",
    "mv d/b.txt d/c.txt",
    "sed -i 's/one/uno/' a.txt",
    "rm seed.txt",
  ].join("; ");
  assert.is((await shell.execute(script)).exitCode, 0);
  const expected = [
    ["create", "/a.txt", 0],
    ["update", "/a.txt", 4],
    ["update", "/a.txt", 8],
    ["create", "/d/b.txt", 8],
    ["delete", "/d/b.txt", 8],
    ["create", "/d/c.txt", 8],
    ["update", "/a.txt", 8],
    ["delete", "/seed.txt", 5],
  ];
  for (let i = 0; i < 100 && seen.length < expected.length; i++) await new Promise((r) => setTimeout(r, 50));
  await sub.close();
  assert.equal(
    seen.map((c) => [c.op, c.path, c.size]),
    expected,
  );
  assert.is(seen[4].movedTo, "/d/c.txt");
  assert.is((await backend.read("/a.txt")).content, "uno\ntwo\n");
});

/** `backend` with its reads of file content counted (a view of the real backend, nothing faked). */
function countingReads(backend: DeepAgentsBackend) {
  const counts = { downloadFiles: 0, readRaw: 0, read: 0, search: 0, glob: 0 };
  const counted = new Proxy(backend, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (property in counts) counts[property as keyof typeof counts]++;
        return value.apply(target, args);
      };
    },
  });
  return { counted, counts };
}

for (const [name, fresh] of stores) {
  test(`${name}: grep -rn and find -type f run in the store (no file is read through the shell)`, async () => {
    const { counted, counts } = countingReads(await fresh());
    await counted.uploadFiles(
      Array.from({ length: 20 }, (_, i) => [
        `/src/m${i}/f${i}.ts`,
        Buffer.from(`export const v${i} = ${i};\n// TODO ${i % 3 === 0 ? "fix" : "later"}\n`),
      ]),
    );
    const shell = withShell(counted);
    const grep = await shell.execute("grep -rn 'TODO fix' .");
    assert.is(grep.exitCode, 0, grep.output);
    assert.is(grep.output.split("\n").filter(Boolean).length, 7);
    assert.match(grep.output, "./src/m0/f0.ts:2:// TODO fix\n./src/m12/f12.ts:2:// TODO fix\n");
    const find = await shell.execute("find src -type f -name 'f1*.ts' | wc -l");
    assert.is(find.output, "11\n");
    assert.equal([counts.downloadFiles, counts.readRaw, counts.read], [0, 0, 0], "no file content was read");
    assert.ok(counts.search >= 1 && counts.glob >= 1);
    // -v is not expressible in the store: just-bash's grep reads every file through the adapter.
    const inverted = await shell.execute("grep -rvc TODO src | head -1");
    assert.is(inverted.output, "src/m0/f0.ts:1\n");
    assert.ok(counts.downloadFiles >= 20);
  });
}

test.run();
